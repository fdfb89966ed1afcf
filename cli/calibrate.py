"""`sigrl calibrate`: per-label thresholds maximising each label's F1 on a labelled manifest."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from . import checks


def calibrate(
    data: Path = typer.Option(..., "--data", help="Labelled manifest (sigrl-manifest JSON Lines)."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Checkpoint, export directory, config name or open_clip spec. Default: the embedded model."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", callback=checks.output_file, help="Thresholds file (.tsv). Default: next to the model, where `sigrl tag` finds it (required for the embedded model)."),
    labels: Optional[Path] = typer.Option(None, "--labels", "-l", help="Label file to calibrate for (default: the manifest's labels). Thresholds hold for this exact label set."),
    backend: str = typer.Option("auto", "--backend", help="auto, torch, onnx or trt: calibrate with the backend you will tag with."),
    device: str = typer.Option("auto", "--device"),
    precision: Optional[str] = typer.Option(None, "--precision"),
    prompt: Optional[str] = typer.Option(None, "--prompt", callback=checks.prompt_template, help="Prompt template with {label}; default: the model's own."),
    batch_size: int = typer.Option(8, "--batch-size", "-b", min=1),
    workers: int = typer.Option(2, "--workers", "-j", min=0),
    label_cache: Optional[Path] = typer.Option(None, "--label-cache", callback=checks.output_folder, help="Folder for cached label-side tensors."),
) -> None:
    """Fit one threshold per label (best F1 on DATA) for use with `sigrl tag --threshold-file`."""
    from sigrl.data.manifest import load_manifest
    from sigrl.tagging.calibrate import calibrate as fit, default_thresholds_path, write_calibration
    from sigrl.tagging.decisions.labels import read_labels
    from sigrl.tagging.runs.sidecar import label_hash
    from sigrl.tagging.spec import ModelSpec, resolve_model

    target = resolve_model(model, backend)
    path = out or default_thresholds_path(target)
    manifest = load_manifest(data, require_images=True)
    names = read_labels(labels) if labels is not None else list(manifest.labels)
    spec = ModelSpec(target, backend, device, precision, None if label_cache is None else os.fspath(label_cache), prompt)
    with spec.open(shared_cpu=True) as runner:
        typer.echo(f"backend: {runner.backend} ({runner.device}, {runner.precision}): {runner.reason}", err=True)
        result = fit(runner, manifest, names, batch_size=batch_size, workers=workers)
        about = {
            "model": runner.name, "model_hash": runner.model_hash, "backend": runner.backend,
            "precision": runner.precision, "manifest": str(data), "labels": len(names),
            "label_hash": label_hash(names, runner.prompt), "prompt": runner.prompt,
        }
    write_calibration(path, result, about)
    for p, reason in result.failures[:5]:
        typer.echo(f"skipped {p}: {reason}", err=True)
    typer.echo(
        f"{len(names)} thresholds from {result.n_images} images; macro F1 {result.macro_f1:.4f} "
        f"({int((result.positives > 0).sum())} labels with positives) -> {path}"
    )
