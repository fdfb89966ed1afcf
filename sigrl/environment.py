"""What is installed and usable here, without importing anything heavy unless asked.

Used by `sigrl info` and by the bench's environment header.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import sys
from typing import Any

import sigrl

# import name -> (distribution name, how to get it)
_OPTIONAL = {
    "torch": ("torch", "pip install sigrl (torch is a core dependency)"),
    "open_clip": ("open_clip_torch", "pip install sigrl (open_clip_torch is a core dependency)"),
    "onnx": ("onnx", "pip install 'sigrl[onnx]'"),
    "onnxruntime": ("onnxruntime-gpu", "pip install 'sigrl[onnx]'"),
    "tensorrt": ("tensorrt", "pip install 'sigrl[trt]' on a machine with an NVIDIA GPU and driver"),
}


def _component(module: str) -> dict[str, Any]:
    dist, how = _OPTIONAL[module]
    try:
        importlib.import_module(module)
    except Exception as err:  # any import failure (missing, broken CUDA libs) means unavailable
        return {"available": False, "version": None, "reason": f"{type(err).__name__}: {err}; install: {how}"}
    try:
        version = importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        version = getattr(sys.modules[module], "__version__", "unknown")
    return {"available": True, "version": version, "reason": ""}


def _backends(components: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    backends: dict[str, dict[str, Any]] = {}
    cuda = False
    if components["torch"]["available"]:
        import torch

        cuda = torch.cuda.is_available()
        name = torch.cuda.get_device_name(0) if cuda else "no CUDA device"
        backends["torch"] = {"available": True, "detail": f"cpu; cuda: {name}"}
    else:
        backends["torch"] = {"available": False, "detail": components["torch"]["reason"]}
    if components["onnxruntime"]["available"]:
        import onnxruntime

        providers = onnxruntime.get_available_providers()
        backends["onnx"] = {"available": True, "detail": "providers: " + ", ".join(providers)}
    else:
        backends["onnx"] = {"available": False, "detail": components["onnxruntime"]["reason"]}
    if components["tensorrt"]["available"] and cuda:
        backends["trt"] = {"available": True, "detail": "TensorRT with a CUDA device"}
    else:
        reason = components["tensorrt"]["reason"] or "TensorRT is installed but no CUDA device is visible"
        backends["trt"] = {"available": False, "detail": reason}
    return backends


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_id() -> str:
    """A stable, readable name for this kind of machine, for results folders: cpu-slug + cores (+ GPU)."""
    import os
    import re

    slug = re.sub(r"[^a-z0-9]+", "-", cpu_model().lower()).strip("-")
    slug = re.sub(r"-(processor|cpu)\b.*$", "", slug)[:40].strip("-")
    name = f"{slug}-{os.cpu_count()}c"
    try:
        import sys

        torch = sys.modules.get("torch")  # only if already loaded: this must stay cheap
        if torch is not None and torch.cuda.is_available():
            gpu = re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(0).lower()).strip("-")
            name += f"-{gpu}"
    except Exception:
        pass
    return name


def describe_environment() -> dict[str, Any]:
    """Versions of sigrl and its dependencies, and which inference backends can run here."""
    components = {name: _component(name) for name in _OPTIONAL}
    return {
        "sigrl": sigrl.__version__,
        "python": platform.python_version(),
        "platform": f"{platform.system()} {platform.machine()}",
        "cpu": cpu_model(),
        "cores": __import__("os").cpu_count(),
        "components": components,
        "backends": _backends(components),
    }
