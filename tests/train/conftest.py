"""A tiny generated world (32 px) shared by the training and evaluation tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from sigrl.data.world import SynthSpec, synth


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("world")
    return synth(SynthSpec(out=out, seed=3, sizes={"train": 48, "val": 16, "test": 40}, image_size=32, workers=1))
