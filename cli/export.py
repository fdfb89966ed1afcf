"""`sigrl export`: ONNX graphs and TensorRT engines of a model, verified against PyTorch."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from . import checks


def export(
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Checkpoint (.safetensors), shipped config name, or open_clip:ARCH[:TAG]. Not needed for --format trt on an existing export."),
    format: str = typer.Option("onnx", "--format", "-f", help="onnx, trt, or all (onnx then trt)."),
    out: Path = typer.Option(..., "--out", "-o", callback=checks.output_folder, help="Export directory: new, empty, or a previous sigrl export."),
    precision: Optional[str] = typer.Option(None, "--precision", help="fp32 (default); int8 for onnx (dynamic quantization); fp16 for trt."),
    opset: Optional[int] = typer.Option(None, "--opset", min=1, help="ONNX opset (onnx only; default 17)."),
    batch: Optional[str] = typer.Option(None, "--batch", help="TensorRT batch range min,opt,max (trt only; default 1,8,64)."),
    labels: Optional[str] = typer.Option(None, "--labels", help="TensorRT label-count range min,opt,max (trt only; default 1,81,1024)."),
) -> None:
    """Export the image graph and the text graph; every export is checked against PyTorch."""
    from sigrl.export.exporter import export_model  # torch and onnx load only when exporting

    result = export_model(model, out, format=format, precision=precision, opset=opset, batch=batch, labels=labels)
    if result.parity is not None:
        for variant, summary in result.parity.to_dict()["variants"].items():
            state = "pass" if summary["passed"] else "FAIL"
            typer.echo(
                f"parity {variant}: {state}  max|diff| {summary['max_abs_diff']:.2e}  "
                f"mean|diff| {summary['mean_abs_diff']:.2e}  top-5 agreement {summary['top5_agreement']:.3f}"
            )
    for precision_name, engine in result.manifest.get("engines", {}).items():
        typer.echo(f"engine {precision_name}: {result.out_dir / engine['file']}")
    typer.echo(f"wrote {result.out_dir}")
