"""`sigrl tag --device cuda` through the real entry point: the same tags as on the CPU.

Skipped with the reason where no CUDA GPU is visible (tests/conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest

from sigrl.tagging.runs.metafile import read_meta
from sigrl.tagging.outputs.writer import read_records

from cli_helpers import jpeg_inputs, sigrl, tag_args

pytestmark = pytest.mark.gpu


@pytest.fixture
def inputs(tmp_path):
    return jpeg_inputs(tmp_path, 12, quality=90)


def _scores(out) -> np.ndarray:
    return np.array([r["scores"] for r in sorted(read_records(out), key=lambda r: r["path"])])  # [n, N]


@pytest.mark.parametrize("precision", ["fp32", "fp16", "bf16"])
def test_tag_on_cuda_matches_cpu(tmp_path, capsys, inputs, precision):
    folder, labels = inputs
    cache = tmp_path / "cache"
    runs = {}
    for device, prec in (("cpu", "fp32"), ("cuda", precision)):
        out = tmp_path / f"{device}-{prec}.jsonl"
        result = sigrl(capsys, *tag_args(folder, labels, out, cache, "--backend", "torch", "--device", device,
                                         "--precision", prec, "--batch-size", 5, "--scores", "all"))
        assert result.code == 0, result.err
        meta = read_meta(out)
        assert (meta["device"], meta["precision"]) == (device, prec)
        assert meta["runs"][-1]["tagged"] == 12 and meta["runs"][-1]["errors"] == 0
        runs[device] = _scores(out)
    tolerance = 2e-3 if precision == "fp32" else 0.05  # fp32: TF32 convolutions at most
    assert np.abs(runs["cuda"] - runs["cpu"]).max() < tolerance
    assert (runs["cuda"].argmax(1) == runs["cpu"].argmax(1)).mean() >= (1.0 if precision == "fp32" else 0.8)
