"""`sigrl train`: open-vocabulary (ov) or single-positive (spml) SigRL training."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from . import checks

from sigrl.train.recipe import TrainConfig


def train(
    out: Path = typer.Option(..., "--out", callback=checks.output_folder, help="Run folder (config, metrics.jsonl, last/best/state checkpoints)."),
    setting: str = typer.Option("ov", "--setting", help="ov (ranking + distillation) or spml (single positive)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Training manifest (seen labels are trained)."),
    init: Optional[str] = typer.Option(None, "--init", help="CLIP checkpoint from `sigrl pretrain`, a model config (sigrl-tiny) or open_clip:ARCH:TAG."),
    val: Optional[Path] = typer.Option(None, "--val", help="Validation manifest: best checkpoint by mAP over the training labels."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out with its saved config."),
    variant: str = typer.Option("sigrl", "--variant", help="Head: sigrl, mkt, clip (global score) or patch (best patch)."),
    compose: Optional[str] = typer.Option(None, "--compose", help="Label embeddings from prompts or words (each label the mean of its words; heads without GMC and SVFR). Default: the model config's."),
    no_gmc: bool = typer.Option(False, "--no-gmc", help="Ablation: SigRL without GMC."),
    no_svfr: bool = typer.Option(False, "--no-svfr", help="Ablation: SigRL without SVFR."),
    reference_gmc: bool = typer.Option(False, "--reference-gmc", help="GMC without its residual (the reference form; it collapses)."),
    head_steps: Optional[int] = typer.Option(None, "--head-steps", min=0, help="Head-only steps on cached backbone features before the epochs (default 1000; 0: none)."),
    head_lr: Optional[float] = typer.Option(None, "--head-lr", callback=checks.positive_float, help="Peak rate of the fresh heads (default 1e-3)."),
    compile_head: bool = typer.Option(False, "--compile/--no-compile", help="torch.compile the head-only step (measure first: slower than eager on a 2-core CPU; eager where it cannot compile)."),
    margin: float = typer.Option(1.0, "--margin", help="OV ranking margin."),
    rank_scale: str = typer.Option("sqrt_n", "--rank-scale", help="OV: rank sqrt(N)-scaled scores (sqrt_n) or raw ones (none, the reference)."),
    topk: Optional[int] = typer.Option(None, "--topk", min=1, help="Patches in the local score (default: the model config's)."),
    loss: str = typer.Option("em", "--loss", help="SPML loss: an, em or em_pl."),
    epochs: Optional[int] = typer.Option(None, "--epochs", min=0, help="End-to-end epochs; default 20 (ov) / 10 (spml); 0 with --head-steps: heads only."),
    batch_size: int = typer.Option(32, "--batch-size", min=1),
    lr: Optional[float] = typer.Option(None, "--lr", callback=checks.positive_float, help="Default 1e-4 (ov, AdamW) / 1e-5 (spml, Adam)."),
    warmup_epochs: Optional[float] = typer.Option(None, "--warmup-epochs", min=0.0),
    trainable_blocks: Optional[int] = typer.Option(None, "--trainable-blocks", help="Last K ViT blocks train; -1: all."),
    alpha: float = typer.Option(0.1, "--alpha", help="EM entropy weight."),
    beta: float = typer.Option(0.7, "--beta", help="EM+PL: smoothed target of pseudo-positives."),
    pl_threshold: float = typer.Option(0.3, "--pl-threshold", help="EM+PL: zero-shot softmax threshold."),
    pl_temperature: Optional[float] = typer.Option(None, "--pl-temperature", help="EM+PL: softmax temperature (default: the CLIP's logit scale)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Train on a seeded random subset of this many images."),
    val_limit: Optional[int] = typer.Option(None, "--val-limit", min=1),
    seed: int = typer.Option(0, "--seed"),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda[:i]."),
    precision: str = typer.Option("auto", "--precision", help="auto (bf16 autocast on CUDA), bf16 (also on CPU) or fp32."),
    threads: int = typer.Option(0, "--threads", min=0, help="torch threads (0: torch's default)."),
    stop_after: Optional[int] = typer.Option(None, "--stop-after", min=1, help="Stop after this many epochs (resume later)."),
) -> None:
    """Train SigRL (or an ablation / the MKT-style head) and write checkpoints to --out."""
    if not resume and (data is None or init is None):
        raise typer.BadParameter("--data and --init are required unless --resume is given")
    cfg = TrainConfig(
        setting=setting, data=str(data), init=str(init), out=str(out), val=str(val) if val else None,
        variant=variant, gmc=not no_gmc, gmc_residual=not reference_gmc, svfr=not no_svfr, topk=topk, compose=compose,
        head_steps=head_steps, head_lr=head_lr, compile=compile_head, margin=margin, rank_scale=rank_scale, loss=loss, epochs=epochs,
        batch_size=batch_size, lr=lr, warmup_epochs=warmup_epochs, trainable_blocks=trainable_blocks,
        alpha=alpha, beta=beta, pl_threshold=pl_threshold, pl_temperature=pl_temperature, limit=limit, val_limit=val_limit, seed=seed, device=device, threads=threads, precision=precision,
    )
    progress = train_run(cfg, resume=resume, stop_after=stop_after)
    typer.echo(json.dumps(progress))
    typer.echo(f"best: {out / 'best.safetensors'}")


def train_run(cfg: TrainConfig, resume: bool, stop_after: Optional[int]) -> dict:
    from sigrl.train.loop import train as run  # torch-heavy import only when the command runs

    return run(cfg, resume=resume, stop_after=stop_after)
