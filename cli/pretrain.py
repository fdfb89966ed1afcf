"""`sigrl pretrain`: contrastive CLIP pretraining on caption manifests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from . import checks


def pretrain(
    data: List[Path] = typer.Option(..., "--data", help="Caption manifest(s): sigrl .jsonl with captions, or CSV/TSV (filepath,title)."),
    arch: str = typer.Option("clip-world-stem", "--arch", help="CLIP architecture: a name in sigrl/model_configs/clip/ or an open_clip model name."),
    out: Path = typer.Option(..., "--out", callback=checks.output_file, help="Checkpoint to write (.safetensors)."),
    minutes: Optional[float] = typer.Option(None, "--minutes", callback=checks.positive_float, help="Wall-clock training budget (default 20 unless --steps is given)."),
    steps: Optional[int] = typer.Option(None, "--steps", min=1, help="Stop after this many steps (with or instead of --minutes)."),
    seed: int = typer.Option(0, "--seed"),
    batch_size: int = typer.Option(128, "--batch-size", min=1),
    lr: float = typer.Option(1e-3, "--lr", callback=checks.positive_float),
    threads: int = typer.Option(0, "--threads", min=0, help="torch threads (0: torch's default)."),
    eval_manifest: Optional[Path] = typer.Option(None, "--eval", help="Manifest for a zero-shot report after training."),
    label_captions: bool = typer.Option(False, "--label-captions", help="Also caption each image once per positive label with the zero-shot prompt."),
    label_loss: float = typer.Option(0.0, "--label-loss", min=0.0, help="Weight of a multi-positive sigmoid loss over the training labels' prompts (0: off; sigrl manifests)."),
    word_loss: float = typer.Option(0.0, "--word-loss", min=0.0, help="Weight of the same sigmoid loss over the words of the training labels ('red', 'star'; 0: off; sigrl manifests)."),
    patch_loss: float = typer.Option(0.0, "--patch-loss", min=0.0, help="Weight of the label loss scored on patch tokens, each label the mean of its words' prompts (0: off; sigrl manifests)."),
    precision: str = typer.Option("fp32", "--precision", help="fp32, or bf16 (autocast; about twice as fast on CPUs with bf16 units)."),
    hard_negatives: int = typer.Option(0, "--hard-negatives", min=0, help="False captions per image by a shape or colour swap, scored against the image (0: off; world manifests)."),
) -> None:
    """Pretrain a CLIP on image-caption pairs and write a checkpoint that `load_clip` accepts."""
    from sigrl.train.pretrain import PretrainConfig, pretrain as run_pretrain  # torch + open_clip: only when run

    if out.suffix != ".safetensors":
        raise typer.BadParameter("--out must end in .safetensors")
    cfg = PretrainConfig(
        arch=arch, minutes=20.0 if minutes is None and steps is None else minutes, steps=steps, seed=seed,
        batch_size=batch_size, lr=lr, threads=threads, eval_manifest=str(eval_manifest) if eval_manifest else None,
        label_captions=label_captions, label_loss=label_loss, word_loss=word_loss, patch_loss=patch_loss,
        hard_negatives=hard_negatives,
        precision=precision,
    )
    summary = run_pretrain(data, out, cfg)
    typer.echo(json.dumps({k: summary[k] for k in ("steps", "train_seconds", "images_per_second", "loss_first", "loss_last")}))
    if "zero_shot" in summary:
        typer.echo(json.dumps(summary["zero_shot"], indent=2))
    typer.echo(f"wrote {out}")
