"""`sigrl merge`: join the shards of a `sigrl tag --engine ray` output folder into one file."""

from __future__ import annotations

from pathlib import Path

import typer

from . import checks


def merge(
    folder: Path = typer.Argument(..., help="Shard folder written by `sigrl tag --engine ray` (holds manifest.json)."),
    out: Path = typer.Option(..., "--out", "-o", callback=checks.output_file, help="Merged file: .jsonl, .csv or .parquet (format from the extension)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing merged file."),
    partial: bool = typer.Option(False, "--partial", help="Merge the finished shards even if some are not done yet."),
) -> None:
    """Join every shard of FOLDER, in shard order, into one file; its run metadata goes to OUT.meta.json."""
    from sigrl.tagging.outputs.merge import merge_shards

    summary = merge_shards(folder, out, overwrite=overwrite, allow_partial=partial)
    typer.echo(f"{summary.records} records ({summary.errors} errors) from {summary.shards} shards -> {summary.output}")
