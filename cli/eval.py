"""`sigrl eval`: OV (ZSL/GZSL mAP, F1@3, F1@5) or SPML (mAP) figures for several heads at once."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer

from . import checks

from sigrl.data.manifest import load_manifest


def eval_command(
    checkpoint: List[str] = typer.Option(..., "--checkpoint", help="Model checkpoint, CLIP checkpoint, config name or open_clip spec; repeatable."),
    data: Path = typer.Option(..., "--data", help="Test manifest (fully annotated)."),
    variants: str = typer.Option("clip,mkt,own", "--variants", help="Heads on the same backbone: clip, mkt, patch-words (labels as the mean of their words, best patch), own, no-gmc, no-svfr."),
    setting: Optional[str] = typer.Option(None, "--setting", help="ov or spml (default: the checkpoint's)."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Evaluate the first N images only."),
    batch_size: int = typer.Option(128, "--batch-size", min=1),
    json_out: Optional[Path] = typer.Option(None, "--json", callback=checks.output_file, help="Also write the full report here."),
) -> None:
    """Evaluate checkpoints on a manifest and print a table (JSON with --json)."""
    from sigrl.evaluate import evaluate, format_table, open_for_eval

    manifest = load_manifest(data, require_images=True)
    names = [v.strip() for v in variants.split(",") if v.strip()]
    reports = {}
    for spec in checkpoint:
        model, summary = open_for_eval(spec)
        chosen = setting or summary.get("setting") or ("ov" if manifest.unseen else "spml")
        labels = (summary.get("train_labels") or manifest.seen) if chosen == "spml" else None
        report = evaluate(model, manifest, chosen, names, labels=labels, limit=limit, batch_size=batch_size)
        report["checkpoint"] = spec
        reports[spec] = report
        typer.echo(f"{spec} ({report['head']}, {chosen}, {report['n_images']} images, {report['seconds']} s)")
        typer.echo(format_table(report))
    if json_out:
        json_out.parent.mkdir(parents=True, exist_ok=True)
        json_out.write_text(json.dumps(reports, indent=2, sort_keys=True))
        typer.echo(f"wrote {json_out}")
