"""Fixtures: the tiny model, its model hash, and an export directory of it (fp32 + int8 image graph)."""

from __future__ import annotations

import numpy as np
import pytest

from runtime_fixtures import write_export


@pytest.fixture(scope="session")
def tiny_hash(tiny_model) -> str:
    from sigrl.runtime.torch_runner import weights_sha256

    return weights_sha256(tiny_model)


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory, tiny_model, tiny_hash):
    return write_export(tiny_model, tmp_path_factory.mktemp("export") / "tiny", tiny_hash, int8=True)


@pytest.fixture(scope="session")
def images() -> np.ndarray:
    """Five fixed uint8 images [5, 32, 32, 3]."""
    return np.random.default_rng(7).integers(0, 256, size=(5, 32, 32, 3), dtype=np.uint8)
