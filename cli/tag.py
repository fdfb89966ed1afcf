"""`sigrl tag`: tag image folders into JSON Lines, CSV or Parquet, resumable after any crash.

Exit status: 0 every image tagged, 1 some images got error records, 2 a usage error (nothing or
only part of the job done; the message says what to fix).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import checks

DEFAULT_TOPK = 5


def tag(
    inputs: List[Path] = typer.Argument(..., help="Image folders (walked recursively), image files, or text files listing paths."),
    labels: Path = typer.Option(..., "--labels", "-l", help="Label file: one label per line; blank lines and # comments ignored."),
    out: Path = typer.Option(..., "--out", "-o", callback=checks.output_path, help="Output: .jsonl (default format), .csv or .parquet; run metadata goes to OUT.meta.json."),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Checkpoint (.safetensors), export directory, config name or open_clip:ARCH[:TAG]. Default: the embedded model."),
    backend: str = typer.Option("auto", "--backend", help="auto, torch, onnx or trt; auto picks the fastest that can run the model and says why."),
    device: str = typer.Option("auto", "--device", help="auto, cpu or cuda."),
    batch_size: int = typer.Option(8, "--batch-size", "-b", min=1, help="Images per inference call (capped to bound the head's memory)."),
    workers: Optional[int] = typer.Option(None, "--workers", "-j", min=0, help="Decoding threads (default: one per usable core); 0 decodes in the main thread."),
    precision: Optional[str] = typer.Option(None, "--precision", help="fp32, bf16 (torch, CPU), int8 (onnx, CPU) or fp16 (GPU). Default: the backend's fp32 (fp16 for trt)."),
    prompt: Optional[str] = typer.Option(None, "--prompt", callback=checks.prompt_template, help="Prompt template with {label}; default: the model's own."),
    threshold: Optional[float] = typer.Option(None, "--threshold", min=-1.0, max=1.0, help="Global score threshold (scores lie in [-1, 1])."),
    threshold_file: Optional[Path] = typer.Option(None, "--threshold-file", help="Per-label thresholds (label<TAB>threshold lines or JSON), e.g. from `sigrl calibrate`."),
    topk: Optional[int] = typer.Option(None, "--topk", min=1, help="At most K tags per image (with thresholds: the K best that pass)."),
    scores: str = typer.Option("tags", "--scores", help="tags: scores of the chosen tags; all: every label's score too."),
    resume: bool = typer.Option(False, "--resume", help="Continue an interrupted run: skip recorded images, append the rest."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
    max_pixels: Optional[int] = typer.Option(None, "--max-pixels", min=1, help="Refuse images with more pixels than this (decompression bombs); default ~179 million."),
    decode: str = typer.Option("fast", "--decode", help="fast: JPEGs much larger than the model input are decoded at reduced scale (several times faster on camera photos, pixels within a few levels); exact: full decode, pixel-identical to PIL + torchvision preprocessing; checked: fast, then images whose tags hinge on a near-tie are decoded in full and rescored (the tags of exact at most of the speed of fast)."),
    progress: Optional[bool] = typer.Option(None, "--progress/--quiet", help="Progress bar on stderr; default: on when stderr is a terminal. --quiet also hides the backend line."),
    label_cache: Optional[Path] = typer.Option(None, "--label-cache", callback=checks.output_folder, help="Folder for cached label-side tensors (default $SIGRL_CACHE/labels or ~/.cache/sigrl/labels)."),
    engine: str = typer.Option("local", "--engine", help="local, or ray: Ray Data with one model replica per GPU/CPU slot; --out is then a folder of shards (join them with `sigrl merge`)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster for --engine ray: auto or ray://host:port; default: a local Ray instance."),
    replicas: Optional[int] = typer.Option(None, "--replicas", min=1, help="Model replicas for --engine ray (default: one per GPU, else one per 2 CPUs)."),
    shard_size: int = typer.Option(1000, "--shard-size", min=1, help="Images per output shard for --engine ray (the unit of retry and resume)."),
) -> None:
    """Tag every image under INPUTS; every image gets exactly one record, failures included.

    Without --threshold, --threshold-file or --topk, the model's calibrated thresholds are used when
    `sigrl calibrate` stored some for this exact label set, else the 5 best-scoring labels.
    """
    from sigrl.runtime import LabelCache, open_runner
    from sigrl.decode import DecodeOptions
    from sigrl.tagging.job import apply_prompt, choose_rule, resolve_model, run_tagging
    from sigrl.tagging.labels import read_labels
    from sigrl.tagging.sources import discover

    names = read_labels(labels)
    decoding = DecodeOptions.from_options(decode, max_pixels)
    target = resolve_model(model)
    show = sys.stderr.isatty() if progress is None else progress
    cache = LabelCache(label_cache) if label_cache is not None else LabelCache()
    if engine != "local":
        from sigrl.tagging.ray_engine import run_with_ray

        rule, rule_source = choose_rule(names, threshold, threshold_file, topk, scores, target, DEFAULT_TOPK)
        summary = run_with_ray(engine, [os.fspath(p) for p in inputs], target, backend, device, precision, cache.directory, prompt,
                               names, rule, rule_source, out, resume, overwrite, batch_size, workers, decoding,
                               _Bar() if show else None, address, replicas, shard_size, echo=None if progress is False else lambda m: typer.echo(m, err=True))
        _finish(summary, out)
        return
    found = discover([os.fspath(p) for p in inputs])  # input mistakes surface before the model loads
    with open_runner(target, backend=backend, device=device, precision=precision, label_cache=cache, shared_cpu=True) as runner:
        if progress is not False:
            typer.echo(f"backend: {runner.backend} ({runner.device}, {runner.precision}): {runner.reason}", err=True)
        apply_prompt(runner, prompt)
        rule, rule_source = choose_rule(names, threshold, threshold_file, topk, scores, target, DEFAULT_TOPK)
        if progress is not False:
            typer.echo(f"decision: {rule_source}", err=True)
        try:
            summary = run_tagging(
                found, runner, names, rule, out, resume=resume, overwrite=overwrite,
                batch_size=batch_size, workers=_default_workers() if workers is None else workers,
                decoding=decoding, progress=_Bar() if show else None,
                extra_meta={"decision_source": rule_source},
            )
        except KeyboardInterrupt:
            typer.echo(f"interrupted; every record written so far is complete: add --resume to continue {out}", err=True)
            raise typer.Exit(130) from None
    _finish(summary, out)


def _finish(summary, out: Path) -> None:
    for path, reason in summary.problems:
        typer.echo(f"note: {path}: {reason}", err=True)
    typer.echo(summary.line())
    if summary.failed:
        typer.echo(f"{summary.errors} image(s) failed: see the records with \"status\": \"error\" in {out}", err=True)
        raise typer.Exit(1)


def _default_workers() -> int:
    from sigrl.environment import usable_cores

    return max(2, min(usable_cores(), 16))  # decoding releases the GIL; 2 already overlaps on one core


class _Bar:
    """tqdm progress bar: images/s and the error count."""

    def __init__(self) -> None:
        self._bar = None

    def start(self, total: int, skipped: int) -> None:
        from tqdm import tqdm

        desc = f"tagging ({skipped} already done)" if skipped else "tagging"
        self._bar = tqdm(total=total, desc=desc, unit="img", dynamic_ncols=True, file=sys.stderr, smoothing=0.1)
        self._bar.set_postfix(errors=0)

    def update(self, images: int, errors: int) -> None:
        if self._bar is not None:
            self._bar.set_postfix(errors=errors, refresh=False)
            self._bar.update(images)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None
