"""`export_model`: the one entry point behind `sigrl export`.

Order of work: validate the options against the format table, check that TensorRT imports when a
trt step is planned, then (onnx) open the model, write the graphs and the manifest, verify them
against PyTorch, and (trt) build engines from the ONNX files in the directory. A `--format trt`
run on its own builds from an existing export directory and never touches the PyTorch model.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from sigrl.errors import SigrlError
from sigrl.export.formats import ExportPlan, plan_export
from sigrl.export.manifest import MANIFEST, prepare_out_dir, read_manifest, write_json
from sigrl.export.parity import ParityReport

log = logging.getLogger(__name__)


@dataclass
class ExportResult:
    out_dir: Path
    plan: ExportPlan
    manifest: dict[str, Any]
    parity: ParityReport | None


def _source(spec: str) -> tuple[str, str | None, list[str] | None]:
    """(source description, sha256 of the file or None, labels recorded in a checkpoint or None)."""
    from sigrl.checkpoint import read_metadata
    from sigrl.checkpoint import file_sha256

    path = Path(spec)
    if spec.endswith(".safetensors"):
        return str(path), file_sha256(path), read_metadata(path).get("labels")
    if path.suffix == ".json" and path.is_file():
        return str(path), file_sha256(path), None
    return spec, None, None


def export_model(
    model: str | None,
    out_dir: str | Path,
    format: str = "onnx",
    precision: str | None = None,
    opset: int | None = None,
    batch: str | Sequence[int] | None = None,
    labels: str | Sequence[int] | None = None,
) -> ExportResult:
    """Export `model` (checkpoint, config name or open_clip spec) into out_dir; see formats.py."""
    plan = plan_export(format, precision, opset, batch, labels)
    if plan.step("trt") is not None:
        from sigrl.export.tensorrt import tensorrt_module

        tensorrt_module()  # fail in one line before any work when TensorRT is missing
    out = Path(out_dir)
    parity = None
    onnx_step = plan.step("onnx")
    if onnx_step is not None:
        if not model:
            raise SigrlError("--model is required to export ONNX graphs (a checkpoint, config name or open_clip:ARCH)")
        from sigrl.export.onnx import export_onnx
        from sigrl.export.parity import check_parity
        from sigrl.model.factory import open_model

        out = prepare_out_dir(out)
        torch_model = open_model(model)
        source, sha, ckpt_labels = _source(model)
        manifest = export_onnx(
            torch_model, out, source=source, source_sha256=sha, labels=ckpt_labels,
            opset=onnx_step.opset, int8=onnx_step.precision == "int8",
        )
        write_json(out / MANIFEST, manifest)  # before verification: a failed export can be redone in place
        parity = check_parity(torch_model, out, manifest)
    else:
        manifest = read_manifest(out)
    trt_step = plan.step("trt")
    if trt_step is not None:
        from sigrl.export.tensorrt import build_engines

        manifest = build_engines(out, manifest, trt_step)
        write_json(out / MANIFEST, manifest)
    return ExportResult(out, plan, manifest, parity)
