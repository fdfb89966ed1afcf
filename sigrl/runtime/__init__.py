"""Runners: one interface (`infer(images, labels) -> scores`) over PyTorch, ONNX Runtime and TensorRT.

    with open_runner("exports/vit-b32", label_cache=LabelCache()) as runner:
        log.info(runner.reason)                   # why this backend was chosen
        scores = runner.infer(images, labels)     # uint8 [B, S, S, 3] -> float32 [B, N]

Importing this package is light: torch, onnxruntime and tensorrt are imported by the runner that
needs them, when it is created (the ONNX path never imports torch).
"""

from sigrl.runtime.backends import (
    BackendStatus, Choice, available_backends, backend_status, choose_backend, gpu_visible, nvidia_driver_visible,
    open_runner,
)
from sigrl.runtime.base import Runner
from sigrl.runtime.label_cache import LabelArrays, LabelCache

__all__ = [
    "BackendStatus", "Choice", "LabelArrays", "LabelCache", "Runner", "available_backends", "backend_status",
    "choose_backend", "gpu_visible", "nvidia_driver_visible", "open_runner",
]
