"""Backend selection: which runner (PyTorch, ONNX Runtime, TensorRT) can run here and which
`open_runner` builds for a model reference, and why.

Asking is cheap: choosing ONNX Runtime or TensorRT never imports torch, and the runner modules are
imported only when one is created.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from sigrl.errors import SigrlError
from sigrl.runtime.base import Runner
from sigrl.runtime.label_cache import LabelCache
from sigrl.runtime.manifest import is_export_dir, read_manifest

BACKENDS = ("torch", "onnx", "trt")
DEFAULT_PRECISION = {"torch": "fp32", "onnx": "fp32", "trt": "fp16"}
ENGINE_SUFFIXES = (".plan", ".engine")


@dataclass(frozen=True)
class BackendStatus:
    available: bool
    detail: str
    devices: tuple[str, ...] = ()  # where it can run here: "cpu", "cuda"


@dataclass(frozen=True)
class Choice:
    """What open_runner will build, and why (`sigrl tag` prints the reason)."""

    backend: str
    device: str
    precision: str
    target: str
    reason: str


def _installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def nvidia_driver_visible() -> bool:
    """Whether the NVIDIA driver exposes a GPU to this process; imports nothing."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return False
    if sys.platform.startswith("linux"):
        gpus = Path("/proc/driver/nvidia/gpus")
        # /dev/dxg: WSL 2, where the Windows driver serves CUDA and /proc/driver/nvidia is absent.
        return (gpus.is_dir() and any(gpus.iterdir())) or Path("/dev/dxg").exists()
    return True  # no cheap check elsewhere: the runtimes themselves decide


def gpu_visible() -> bool:
    """Whether PyTorch can use a CUDA GPU (imports torch only where a driver is present)."""
    if not _installed("torch"):
        return False
    if "torch" not in sys.modules and not nvidia_driver_visible():
        return False  # no driver: no need to load torch to find out
    import torch

    return torch.cuda.is_available()


def _onnx_has_cuda() -> bool:
    """Whether the installed onnxruntime build has the CUDA provider (the CPU-only wheel does not)."""
    import onnxruntime

    return "CUDAExecutionProvider" in onnxruntime.get_available_providers()


def backend_status(backend: str) -> BackendStatus:
    """Whether `backend` can run here, on which devices, and why not where it cannot.

    Each backend is asked on its own terms, so choosing ONNX Runtime or TensorRT never imports
    torch: only the torch backend's status asks torch about CUDA.
    """
    if backend == "torch":
        if not _installed("torch"):
            return BackendStatus(False, "torch is not installed: pip install sigrl")
        devices = ("cpu", "cuda") if gpu_visible() else ("cpu",)
        return BackendStatus(True, ", ".join(devices), devices)
    if backend == "onnx":
        if not _installed("onnxruntime"):
            return BackendStatus(False, "onnxruntime is not installed: pip install 'sigrl[onnx]'")
        if not nvidia_driver_visible():
            return BackendStatus(True, "cpu", ("cpu",))
        if not _onnx_has_cuda():  # a GPU, but the CPU-only onnxruntime wheel
            return BackendStatus(
                True, "cpu (this onnxruntime has no CUDA provider: pip install onnxruntime-gpu to run on the GPU)", ("cpu",))
        return BackendStatus(True, "cpu, cuda", ("cpu", "cuda"))
    if backend == "trt":
        if not _installed("tensorrt"):
            return BackendStatus(False, "TensorRT is not installed: pip install 'sigrl[trt]' on a GPU machine")
        if not nvidia_driver_visible():
            return BackendStatus(False, "TensorRT is installed but no CUDA GPU is visible")
        return BackendStatus(True, "cuda", ("cuda",))
    raise SigrlError(f"backend must be one of {BACKENDS}, got {backend!r}")


def available_backends() -> dict[str, BackendStatus]:
    """Every backend's status (`sigrl info`, the bench); imports torch to ask about CUDA."""
    return {backend: backend_status(backend) for backend in BACKENDS}


def _is_engine(path: Path) -> bool:
    return path.suffix in ENGINE_SUFFIXES and path.is_file()


def choose_backend(
    model: str | Path | None, backend: str = "auto", device: str = "auto", precision: str | None = None
) -> Choice:
    """Pick backend, device and precision for a model reference, without loading anything heavy.

    auto: TensorRT if the reference is an export with an engine and TensorRT + a GPU are here, else
    ONNX Runtime for an export directory, else PyTorch for a checkpoint, config or open_clip spec.
    """
    if backend not in ("auto", *BACKENDS):
        raise SigrlError(f"backend must be auto or one of {BACKENDS}, got {backend!r}")
    if model is None:
        raise SigrlError("no model given; pass --model with an export directory, a checkpoint or a config name")
    target = Path(model)
    if backend == "auto":
        backend, reason = _auto(target, precision)
        reason = _default_model_note(target, backend) or reason
    else:
        reason = f"--backend {backend} was asked for"
        _check_fits(target, backend)
    status = backend_status(backend)
    if not status.available:
        raise SigrlError(f"backend {backend} cannot run here: {status.detail}")
    precision = precision or DEFAULT_PRECISION[backend]
    if device == "auto":
        device = "cuda" if "cuda" in status.devices else "cpu"
    return Choice(backend=backend, device=device, precision=precision, target=str(model), reason=reason)


def _auto(target: Path, precision: str | None) -> tuple[str, str]:
    if _is_engine(target):
        return "trt", f"{target} is a TensorRT engine"
    if not is_export_dir(target):
        return "torch", f"{target} is not an export directory, so PyTorch runs it (export it for ONNX/TensorRT)"
    engines = read_manifest(target).engines()
    wanted = precision or DEFAULT_PRECISION["trt"]
    trt = backend_status("trt") if wanted in engines else None
    if trt is not None and trt.available:
        return "trt", f"export has a {wanted} TensorRT engine and TensorRT + a CUDA GPU are available"
    why = f"no {wanted} TensorRT engine in the export" if trt is None else trt.detail
    onnx = backend_status("onnx")
    if not onnx.available:
        raise SigrlError(f"{target}: an export directory needs onnxruntime ({onnx.detail})")
    return "onnx", f"export directory, run on ONNX Runtime ({why})"


def _default_model_note(target: Path, backend: str) -> str | None:
    """Why the embedded default model runs in the form it does (None for any other model)."""
    from sigrl import default_model

    if not default_model.is_default(target):
        return None
    if backend == "onnx":
        return "no --model: the embedded default model's shipped export on ONNX Runtime (--backend torch runs its checkpoint)"
    if backend == "torch":
        why = ("onnxruntime is not installed: pip install 'sigrl[onnx]' (or onnx-cpu) to start in about a second"
               if not _installed("onnxruntime") else "this install ships no export of it")
        return f"no --model: the embedded default model's checkpoint on PyTorch ({why})"
    return None


def _check_fits(target: Path, backend: str) -> None:
    if backend == "onnx" and not is_export_dir(target):
        raise SigrlError(f"{target}: the onnx backend needs an export directory; create one with `sigrl export`")
    if backend == "trt" and not (is_export_dir(target) or _is_engine(target)):
        raise SigrlError(f"{target}: the trt backend needs an export with an engine (`sigrl export --format trt`)")


def _torch_target(target: Path) -> str:
    if not is_export_dir(target):
        return str(target)
    source = read_manifest(target).data["model"].get("source")
    if source and Path(source).is_file():
        return str(source)
    raise SigrlError(f"{target}: export's source model {source!r} is not available to run with --backend torch")


def open_runner(
    model: str | Path | None,
    backend: str = "auto",
    device: str = "auto",
    precision: str | None = None,
    label_cache: LabelCache | str | Path | None = None,
    shared_cpu: bool = False,
) -> Runner:
    """A ready runner for a model reference; `runner.reason` says why that backend was chosen.

    shared_cpu: other busy threads share the CPU with inference (a decode pool); ONNX Runtime's
    threads then sleep between calls instead of spin-waiting (see sigrl.runtime.onnx_runner).
    """
    choice = choose_backend(model, backend, device, precision)
    cache = label_cache if isinstance(label_cache, LabelCache) or label_cache is None else LabelCache(label_cache)
    if choice.backend == "torch":
        from sigrl.runtime.torch_runner import TorchRunner

        runner: Runner = TorchRunner(_torch_target(Path(choice.target)), choice.device, choice.precision, cache)
    elif choice.backend == "onnx":
        from sigrl.runtime.onnx_runner import OnnxRunner

        runner = OnnxRunner(choice.target, choice.precision, choice.device, cache, shared_cpu=shared_cpu)
    else:
        from sigrl.runtime.trt_runner import TrtRunner

        runner = TrtRunner(choice.target, choice.precision, cache)
    runner.reason = choice.reason
    return runner
