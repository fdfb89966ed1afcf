"""`sigrl tag`: tag image folders, WebDataset tar shards and Parquet tables into JSON Lines, CSV
or Parquet, resumable after any crash. Parses the options into a TagJob and prints; the work is
sigrl.tagging's (the local engine through the Python API's Tagger, or the Ray engine).

Exit status: 0 every image tagged, 1 some images got error records, 2 a usage error (nothing or
only part of the job done; the message says what to fix).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

from . import checks


def tag(
    inputs: List[str] = typer.Argument(..., help="Image folders (walked recursively), image files, text files listing paths, WebDataset tar shards (brace patterns like 'shards/{00000..00099}.tar' are expanded by sigrl; quote them), Parquet files or folders of them."),
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
    gpu_decode: bool = typer.Option(True, "--gpu-decode/--cpu-decode", help="With the torch backend on CUDA, decode and resize JPEGs on the GPU (other files, and JPEGs the GPU rejects, on the CPU); --cpu-decode keeps every image on the CPU. --decode exact always decodes on the CPU."),
    progress: Optional[bool] = typer.Option(None, "--progress/--quiet", help="Progress bar on stderr; default: on when stderr is a terminal. --quiet also hides the backend line."),
    label_cache: Optional[Path] = typer.Option(None, "--label-cache", callback=checks.output_folder, help="Folder for cached label-side tensors (default $SIGRL_CACHE/labels or ~/.cache/sigrl/labels)."),
    engine: str = typer.Option("local", "--engine", help="local, or ray: Ray Data with one model replica per GPU/CPU slot; --out is then a folder of shards (join them with `sigrl merge`)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster for --engine ray: auto or ray://host:port; default: a local Ray instance."),
    replicas: Optional[int] = typer.Option(None, "--replicas", min=1, help="Model replicas for --engine ray (default: one per GPU, else one per 2 CPUs)."),
    shard_size: int = typer.Option(1000, "--shard-size", min=1, help="Images per output shard for --engine ray (the unit of retry and resume); each tar shard or Parquet file is a shard of its own."),
    keep_meta: bool = typer.Option(False, "--keep-meta", help="Carry each tar sample's other members (.json parsed, text as text) and the name of the image member into its record (\"meta\"); .jsonl or .parquet output."),
    image_ext: Optional[str] = typer.Option(None, "--image-ext", help="Tar samples: the image member's extensions by preference, e.g. jpg,png,depth.png; default: jpg,jpeg,png,webp,bmp,tif,tiff,gif, then any image extension."),
    image_column: Optional[str] = typer.Option(None, "--image-column", help="Parquet inputs: the column of image bytes (binary, or a Hugging Face {bytes, path} struct); default: 'image', else the only such column."),
) -> None:
    """Tag every image under INPUTS; every image gets exactly one record, failures included.

    Without --threshold, --threshold-file or --topk, the model's calibrated thresholds are used when
    `sigrl calibrate` stored some for this exact label set, else the 5 best-scoring labels.
    """
    from sigrl.tagging.inputs.plan import plan_inputs
    from sigrl.tagging.spec import build_job

    job = build_job(
        inputs, labels, out, model=model, backend=backend, device=device, precision=precision, prompt=prompt,
        label_cache=label_cache, threshold=threshold, threshold_file=threshold_file, topk=topk, scores=scores,
        resume=resume, overwrite=overwrite, batch_size=batch_size, workers=workers, decode=decode, gpu_decode=gpu_decode,
        max_pixels=max_pixels, keep_meta=keep_meta, image_column=image_column, image_ext=image_ext, engine=engine, address=address,
        replicas=replicas, shard_size=shard_size,
    )
    bar = _Bar() if (sys.stderr.isatty() if progress is None else progress) else None
    echo = None if progress is False else (lambda message: typer.echo(message, err=True))
    if job.engine.kind == "ray":
        from sigrl.tagging.engines.ray_engine import require_ray, run_job_ray

        require_ray()
    plan = plan_inputs(job.inputs, job.reading.image_column)  # input mistakes surface before the model loads
    if echo is not None and plan.containers:
        echo(f"inputs: {plan.describe()}")
    if job.engine.kind == "ray":
        _finish(run_job_ray(job, plan, bar, echo), out)
        return
    from sigrl.tagging.api import Tagger

    with Tagger.from_job(job) as tagger:
        if echo is not None:
            echo(f"backend: {tagger.description}")
            echo(f"decision: {job.rule_source}")
        try:
            summary = tagger.run_job(job, plan, bar)
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
