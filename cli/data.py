"""`sigrl data ...`: generate the procedural world, convert real datasets, derive manifests."""

from __future__ import annotations

import json
import time
from pathlib import Path

import typer

from . import checks

from sigrl.data.manifest import load_manifest, write_manifest
from sigrl.data.sampling import single_positive as make_single_positive
from sigrl.data.world import SynthSpec, contact_sheet, synth as run_synth

app = typer.Typer(help="Datasets: the procedural world, real-dataset readers, manifests.", no_args_is_help=True)


@app.command("synth")
def synth(
    out: Path = typer.Option(..., "--out", callback=checks.output_folder, help="Output folder (images/ and one manifest per split)."),
    seed: int = typer.Option(0, "--seed"),
    train: int = typer.Option(20000, "--train", min=0, help="Training images (seen labels only)."),
    val: int = typer.Option(1000, "--val", min=0),
    test: int = typer.Option(5000, "--test", min=0),
    image_size: int = typer.Option(64, "--image-size"),
    workers: int = typer.Option(0, "--workers", min=0, help="Processes (0: one per core); the output does not depend on it."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace the world already in --out (its images/ and split manifests)."),
) -> None:
    """Generate the colour-shape world deterministically from a seed."""
    start = time.perf_counter()
    spec = SynthSpec(out=out, seed=seed, sizes={"train": train, "val": val, "test": test},
                     image_size=image_size, workers=workers, overwrite=overwrite)
    paths = run_synth(spec)
    elapsed = time.perf_counter() - start
    total = train + val + test
    for split, path in paths.items():
        typer.echo(f"{split}: {path}")
    typer.echo(f"{total} images in {elapsed:.1f} s ({total / max(elapsed, 1e-9):.0f} images/s)")


@app.command("sheet")
def sheet(
    manifest: Path = typer.Argument(..., help="A manifest whose first images to show."),
    out: Path = typer.Option(..., "--out", callback=checks.output_file, help="PNG file to write."),
    count: int = typer.Option(12, "--count", min=1),
    columns: int = typer.Option(4, "--columns", min=1),
    scale: int = typer.Option(3, "--scale", min=1),
) -> None:
    """A contact sheet of scenes with their positive labels (unseen ones marked *)."""
    contact_sheet(load_manifest(manifest, require_images=True), count=count, columns=columns, scale=scale).save(out)
    typer.echo(f"wrote {out}")


@app.command("single-positive")
def single_positive(
    manifest: Path = typer.Argument(..., help="A fully annotated manifest."),
    out: Path = typer.Option(..., "--out", callback=checks.output_file, help="Manifest to write."),
    seed: int = typer.Option(0, "--seed"),
    seen_only: bool = typer.Option(False, "--seen-only", help="Choose the positive among seen labels only."),
) -> None:
    """Keep one observed positive per image (fixed seed), all other labels unknown (SPML)."""
    src = load_manifest(manifest)
    derived = make_single_positive(src, seed, labels=src.seen if seen_only else None)
    write_manifest(derived, out)
    typer.echo(json.dumps({"images": len(derived), "dropped": len(src) - len(derived), "out": str(out)}))


@app.command("convert")
def convert(
    kind: str = typer.Argument(..., help="coco2014, voc2012, nuswide or cub."),
    root: Path = typer.Argument(..., help="The dataset folder in its official layout."),
    out: Path = typer.Option(..., "--out", callback=checks.output_file, help="Manifest to write (.jsonl)."),
    split: str = typer.Option(None, "--split", help="The dataset's own split name (e.g. val2014, val, Test, test)."),
) -> None:
    """Write a sigrl manifest for a real dataset (missing image files are skipped and counted)."""
    from sigrl.data.readers import read_dataset

    manifest = read_dataset(kind, root, split)
    write_manifest(manifest, out)
    typer.echo(json.dumps({"images": len(manifest), "labels": len(manifest.labels),
                           "unseen": len(manifest.unseen), "out": str(out)}))
