"""What is installed and usable here, without importing anything heavy unless asked.

Used by `sigrl info` and by the bench's environment header.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import platform
import sys
from typing import Any

import sigrl
from sigrl.machine import cpu_model

# import name -> (distribution name, how to get it)
_OPTIONAL = {
    "torch": ("torch", "pip install sigrl (torch is a core dependency)"),
    "open_clip": ("open_clip_torch", "pip install sigrl (open_clip_torch is a core dependency)"),
    "onnx": ("onnx", "pip install 'sigrl[onnx]'"),
    "onnxruntime": ("onnxruntime-gpu", "pip install 'sigrl[onnx]' (or 'sigrl[onnx-cpu]' on a machine without a GPU)"),
    "tensorrt": ("tensorrt", "pip install 'sigrl[trt]' on a machine with an NVIDIA GPU and driver"),
}
# The same module comes from either distribution; the first one installed names the version.
_DISTRIBUTIONS = {"onnxruntime": ("onnxruntime-gpu", "onnxruntime")}
# Optional extras that are not backends: import name -> (distribution, extra, what it enables). Found
# without importing them (importing Ray alone takes seconds).
_EXTRAS = {
    "pyarrow": ("pyarrow", "parquet", "Parquet output of sigrl tag and sigrl merge"),
    "ray": ("ray", "ray", "sigrl tag --engine ray"),
    "matplotlib": ("matplotlib", "bench", "the PNG plot of sigrl bench"),
}


def _component(module: str) -> dict[str, Any]:
    dist, how = _OPTIONAL[module]
    try:
        importlib.import_module(module)
    except Exception as err:  # any import failure (missing, broken CUDA libs) means unavailable
        return {"available": False, "version": None, "reason": f"{type(err).__name__}: {err}; install: {how}"}
    version = None
    for name in _DISTRIBUTIONS.get(module, (dist,)):
        try:
            version = importlib.metadata.version(name)
            break
        except importlib.metadata.PackageNotFoundError:
            continue
    return {"available": True, "version": version or getattr(sys.modules[module], "__version__", "unknown"), "reason": ""}


def _extras() -> dict[str, dict[str, Any]]:
    import importlib.util

    out = {}
    for module, (dist, extra, use) in _EXTRAS.items():
        found = importlib.util.find_spec(module) is not None
        try:
            version = importlib.metadata.version(dist) if found else None
        except importlib.metadata.PackageNotFoundError:
            version = "unknown"
        out[module] = {"available": found, "version": version, "extra": extra, "for": use,
                       "reason": "" if found else f"not installed; install: pip install 'sigrl[{extra}]'"}
    return out


def _backends(components: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What open_runner goes by (sigrl.runtime.backend_status), with the details `sigrl info` shows.

    A backend whose module is installed but fails to import is unavailable, with the import error.
    """
    from sigrl.runtime import backend_status

    backends: dict[str, dict[str, Any]] = {}
    for backend, module in (("torch", "torch"), ("onnx", "onnxruntime"), ("trt", "tensorrt")):
        status = backend_status(backend)
        if not components[module]["available"]:
            backends[backend] = {"available": False, "detail": components[module]["reason"]}
        elif not status.available:
            backends[backend] = {"available": False, "detail": status.detail}
        else:
            backends[backend] = {"available": True, "detail": _backend_detail(backend, status.devices)}
    return backends


def _backend_detail(backend: str, devices: tuple[str, ...]) -> str:
    if backend == "torch":
        import torch

        return "cpu; cuda: " + (torch.cuda.get_device_name(0) if "cuda" in devices else "no CUDA device")
    if backend == "onnx":
        import onnxruntime

        return "providers: " + ", ".join(onnxruntime.get_available_providers())
    return "TensorRT with a CUDA device"


def describe_environment() -> dict[str, Any]:
    """Versions of sigrl and its dependencies, and which inference backends can run here."""
    components = {name: _component(name) for name in _OPTIONAL}
    return {
        "sigrl": sigrl.__version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "components": components,
        "extras": _extras(),
        "backends": _backends(components),
    }


def portable(value: Any) -> Any:
    """A JSON-ready value with this machine's absolute paths made portable, for committed results.

    In every string, the checkout sigrl runs from becomes a relative path, and the sigrl cache,
    site-packages, the temporary folder and the home folder become $SIGRL_CACHE, <site-packages>,
    $TMPDIR and ~: a results file says what was measured, not where one machine kept it.
    """
    if isinstance(value, str):
        for prefix, name in _path_prefixes():
            value = value.replace(prefix, name)
        return value
    if isinstance(value, dict):
        return {k: portable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v) for v in value]
    return value


def _path_prefixes() -> list[tuple[str, str]]:
    import sysconfig
    import tempfile
    from pathlib import Path

    home = str(Path.home())
    cache = os.environ.get("SIGRL_CACHE") or os.path.join(home, ".cache", "sigrl")
    checkout = Path(sigrl.__file__).resolve().parent.parent
    pairs = [(str(checkout) + os.sep, ""), (os.path.expanduser(cache), "$SIGRL_CACHE")]
    pairs += [(sysconfig.get_paths()[key], "<site-packages>") for key in ("purelib", "platlib")]
    pairs += [(tempfile.gettempdir() + os.sep, "$TMPDIR/"), (home + os.sep, "~/")]
    # Longest first, so that a path inside another (the cache inside home) gets its own name.
    return sorted({p: n for p, n in pairs if len(p) > 1}.items(), key=lambda pair: -len(pair[0]))
