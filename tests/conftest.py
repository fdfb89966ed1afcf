"""Shared fixtures and the markers' skip rules.

`gpu` and `trt` tests are skipped with the reason where the machine lacks a CUDA GPU or TensorRT,
so they never pass silently.
"""

from __future__ import annotations

import importlib.util

import pytest


def _has_cuda() -> bool:
    try:
        import torch

        return torch.cuda.is_available()
    except Exception:
        return False


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    cuda = _has_cuda()
    trt = importlib.util.find_spec("tensorrt") is not None
    for item in items:
        if "gpu" in item.keywords and not cuda:
            item.add_marker(pytest.mark.skip(reason="needs a CUDA GPU; none is visible on this machine"))
        if "trt" in item.keywords and not (cuda and trt):
            why = "TensorRT is not installed" if not trt else "no CUDA GPU is visible"
            item.add_marker(pytest.mark.skip(reason=f"needs TensorRT and a CUDA GPU: {why}"))


@pytest.fixture(scope="session")
def tiny_model():
    from sigrl.model import create_model

    model = create_model("sigrl-tiny", seed=0)
    model.eval()
    return model


@pytest.fixture(scope="session")
def tiny_images():
    """Three fixed uint8 images [3, 32, 32, 3] from a portable RNG."""
    import numpy as np
    import torch

    rng = np.random.default_rng(1234)
    return torch.from_numpy(rng.integers(0, 256, size=(3, 32, 32, 3), dtype=np.uint8))
