"""The rows of the bench: every backend x precision (and the device it is meant for), with the
reason a row cannot run here decided up front, so unavailable rows are shown rather than dropped.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from sigrl.errors import SigrlError
from sigrl.runtime import available_backends
from sigrl.runtime import gpu_visible

NAIVE = "naive"  # the user loop of PIL + PyTorch, batches of 32, one process


@dataclass(frozen=True)
class RowSpec:
    backend: str  # torch | onnx | trt | naive
    precision: str
    device: str  # cpu | cuda

    @property
    def name(self) -> str:
        if self.backend == NAIVE:
            return "naive loop (PyTorch fp32)"
        return f"{self.backend} {self.precision} ({self.device})"


# The published matrix: CPU precisions on CPU, reduced GPU precisions on the GPU.
MATRIX: tuple[RowSpec, ...] = (
    RowSpec("torch", "fp32", "cpu"),
    RowSpec("torch", "bf16", "cpu"),
    RowSpec("torch", "fp16", "cuda"),
    RowSpec("onnx", "fp32", "cpu"),
    RowSpec("onnx", "int8", "cpu"),
    RowSpec("onnx", "fp16", "cuda"),
    RowSpec("trt", "fp16", "cuda"),
)
# Added where a GPU is visible, so the GPU rows have their own fp32 reference point.
GPU_FP32: tuple[RowSpec, ...] = (RowSpec("torch", "fp32", "cuda"), RowSpec("onnx", "fp32", "cuda"))
BACKENDS = ("torch", "onnx", "trt", NAIVE)
PRECISIONS = ("fp32", "bf16", "fp16", "int8")
REFERENCE = RowSpec("torch", "fp32", "cpu")


def select_rows(backends: Sequence[str] | None, precisions: Sequence[str] | None, gpu: bool | None = None) -> list[RowSpec]:
    """The matrix filtered by --backends / --precisions; the naive loop is a backend named `naive`."""
    for value, allowed, option in ((backends, BACKENDS, "--backends"), (precisions, PRECISIONS, "--precisions")):
        unknown = sorted(set(value or ()) - set(allowed))
        if unknown:
            raise SigrlError(f"{option}: unknown {unknown}; choose from {', '.join(allowed)}")
    gpu = gpu_visible() if gpu is None else gpu
    rows = list(MATRIX) + (list(GPU_FP32) if gpu else [])
    rows.append(RowSpec(NAIVE, "fp32", "cpu"))
    keep = [
        r for r in rows
        if (not backends or r.backend in backends) and (not precisions or r.precision in precisions)
    ]
    if not keep:
        raise SigrlError("--backends and --precisions leave no row to run; widen one of them")
    return keep


def unavailable_reason(row: RowSpec, gpu: bool, export_error: str, export_precisions: Sequence[str]) -> str:
    """Why `row` cannot run on this machine, or "" when it can."""
    status = available_backends()
    backend = "torch" if row.backend == NAIVE else row.backend
    if not status[backend].available:
        return status[backend].detail
    if row.device == "cuda" and not gpu:
        return "needs a CUDA GPU; none is visible"
    if row.backend in ("onnx", "trt") and export_error:
        return export_error
    if row.backend == "onnx" and row.precision not in export_precisions:
        if row.precision == "fp16":
            return "no fp16 ONNX graph: sigrl exports fp16 as a TensorRT engine (`sigrl export --format trt`)"
        return f"the export has no {row.precision} image graph"
    if row.device not in status[backend].devices:  # e.g. a GPU, but the CPU-only onnxruntime
        return status[backend].detail
    return ""
