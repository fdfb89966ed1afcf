"""`sigrl bench`: latency and throughput against mAP for every backend and precision, in one table."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import typer

from . import checks

from sigrl.errors import SigrlError


def _ints(text: Optional[str], option: str) -> Optional[tuple[int, ...]]:
    if text is None:
        return None
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise SigrlError(f"{option} {text!r}: expected comma-separated integers, e.g. 1,8,32") from None
    if not values or min(values) < 1:
        raise SigrlError(f"{option} {text!r}: expected positive integers")
    return values


def _names(text: Optional[str]) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip()) if text else ()


def bench(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Checkpoint, config name, open_clip:ARCH or export directory (default: the embedded model)."),
    data: Optional[Path] = typer.Option(None, "--data", help="Manifest to measure mAP on (default: the world's test split, synthesized once into the cache)."),
    backends: Optional[str] = typer.Option(None, "--backends", help="Comma list of torch, onnx, trt, naive (default: all)."),
    precisions: Optional[str] = typer.Option(None, "--precisions", help="Comma list of fp32, bf16, fp16, int8 (default: all)."),
    batch_sizes: Optional[str] = typer.Option(None, "--batch-sizes", help="Batch sizes for model-only throughput (default 1,4,8,16,32,64)."),
    labels_sweep: Optional[str] = typer.Option(None, "--labels-sweep", help="Label counts for head scaling (default 20,81,1006)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", callback=checks.output_folder, help="Output folder (default sigrl-bench/<machine-id>/, with --quick sigrl-bench-quick/<machine-id>/: never the committed bench/results/)."),
    reference: bool = typer.Option(False, "--reference", help="Write this machine's committed reference results, bench/results/<machine-id>/ of the checkout in the working directory (a full run only)."),
    quick: bool = typer.Option(False, "--quick", help="Small data, few repetitions: about 3 minutes on 2 busy cores, export included (CI smoke test)."),
    floor: Optional[float] = typer.Option(None, "--floor", help="Exit with code 1 if any row's mAP is below this (or a row failed)."),
) -> None:
    """Measure every backend x precision on the same model and data; write JSON, CSV, Markdown and a plot."""
    from sigrl.bench.report import PLOT_HINT, below_floor, default_out_dir, write_reports
    from sigrl.bench.run import BenchConfig, run_bench
    from sigrl.machine import machine_id

    if reference and (quick or out is not None):
        raise SigrlError("--reference writes the committed bench/results/<machine-id>/: it takes a full run "
                         "(no --quick) and no --out")
    options = dict(
        model=model, data=str(data) if data else None, backends=_names(backends), precisions=_names(precisions),
        batch_sizes=_ints(batch_sizes, "--batch-sizes"), labels_sweep=_ints(labels_sweep, "--labels-sweep"),
    )
    if quick:
        config = BenchConfig.quick_defaults(**options)
    else:
        config = BenchConfig(**{k: v for k, v in options.items() if v is not None})
    given = {"--model": model, "--data": data, "--backends": backends, "--precisions": precisions,
             "--batch-sizes": batch_sizes, "--labels-sweep": labels_sweep, "--out": out, "--floor": floor}
    command = shlex.join(["sigrl", "bench", *(["--quick"] if quick else []), *(["--reference"] if reference else []),
                          *(a for k, v in given.items() if v is not None for a in (k, str(v)))])
    result = run_bench(config, command=command)
    folder = out or default_out_dir(quick, machine_id(), reference)
    files = write_reports(result, folder)
    typer.echo(files["markdown"].read_text())
    for kind, path in files.items():
        typer.echo(f"wrote {kind}: {path}")
    if "plot" not in files:
        typer.echo(f"no plot: {PLOT_HINT}")
    if floor is not None:
        low = below_floor(result, floor)
        if low:
            typer.echo(f"mAP below the floor {floor}, or failed: {', '.join(low)}", err=True)
            raise typer.Exit(1)
