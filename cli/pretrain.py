"""`sigrl pretrain`: contrastive CLIP pretraining on caption manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from . import checks


def pretrain(
    data: List[Path] = typer.Option(..., "--data", help="Caption manifest(s): sigrl .jsonl with captions, or CSV/TSV (filepath,title)."),
    arch: str = typer.Option("clip-world-tiny", "--arch", help="CLIP architecture: a name in sigrl/model_configs/clip/ or an open_clip model name."),
    out: Path = typer.Option(..., "--out", callback=checks.output_file, help="Checkpoint to write (.safetensors)."),
    minutes: Optional[float] = typer.Option(None, "--minutes", callback=checks.positive_float, help="Wall-clock training budget (default 20 unless --steps is given)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Stop after this many steps (with or instead of --minutes)."),
    seed: int = typer.Option(0, "--seed"),
    batch_size: int = typer.Option(128, "--batch-size", min=1),
    lr: float = typer.Option(1e-3, "--lr", callback=checks.positive_float),
    threads: int = typer.Option(0, "--threads", min=0, help="torch threads (0: torch's default)."),
    eval_manifest: Optional[Path] = typer.Option(None, "--eval", help="Manifest for a zero-shot report after training."),
    label_captions: bool = typer.Option(False, "--label-captions", help="Also caption each image once per positive label with the zero-shot prompt."),
) -> None:
    """Pretrain a CLIP on image-caption pairs and write a checkpoint that `load_clip` accepts."""
    from sigrl.train.pretrain import PretrainConfig, pretrain as run_pretrain  # torch + open_clip: only when run

    if out.suffix != ".safetensors":
        raise typer.BadParameter("--out must end in .safetensors")
    cfg = PretrainConfig(
        arch=arch, minutes=20.0 if minutes is None and steps is None else minutes, steps=steps, seed=seed,
        batch_size=batch_size, lr=lr, threads=threads, eval_manifest=str(eval_manifest) if eval_manifest else None,
        label_captions=label_captions,
    )
    summary = run_pretrain(data, out, cfg)
    typer.echo(json.dumps({k: summary[k] for k in ("steps", "train_seconds", "images_per_second", "loss_first", "loss_last")}))
    if "zero_shot" in summary:
        typer.echo(json.dumps(summary["zero_shot"], indent=2))
    typer.echo(f"wrote {out}")
