"""Large label sets: the PyTorch runner encodes in blocks with a progress bar, exactly (issue 14)."""

from __future__ import annotations

import numpy as np
import torch

from sigrl.model.graphs import TextGraph, tokenize_labels
from sigrl.runtime.onnx_runner import OnnxRunner
from sigrl.runtime.progress import PROGRESS_MIN_LABELS
from sigrl.runtime.torch_runner import TorchRunner


def _labels(n: int) -> list[str]:
    return [f"thing {i}" for i in range(n)]


def test_torch_runner_blocks_equal_one_pass(tiny_model, monkeypatch):
    labels = _labels(45)
    runner = TorchRunner(tiny_model)
    monkeypatch.setattr(runner.model, "config", tiny_model.config.replace(text={"batch_size": 8}))  # 6 blocks
    side = runner._encode_labels(labels)
    with torch.no_grad():
        h, ctx = TextGraph(tiny_model)(tokenize_labels(tiny_model, labels))
    np.testing.assert_allclose(side.embeddings, h.numpy(), atol=1e-5, rtol=0)
    np.testing.assert_allclose(side.context, ctx.numpy(), atol=1e-5, rtol=0)


def test_large_label_set_shows_progress(tiny_model, tiny_export, capsys):
    labels = _labels(PROGRESS_MIN_LABELS)
    for runner in (TorchRunner(tiny_model), OnnxRunner(tiny_export)):
        runner.progress = True  # forced: stderr is not a terminal under pytest
        with runner:
            runner.label_side(labels)
        err = capsys.readouterr().err
        assert f"encoding {PROGRESS_MIN_LABELS:,} labels" in err, (runner, err)


def test_small_label_set_and_hidden_progress_print_nothing(tiny_model, capsys):
    runner = TorchRunner(tiny_model)
    runner.progress = True
    runner.label_side(_labels(5))
    runner.progress = False
    runner.label_side(_labels(PROGRESS_MIN_LABELS))
    assert capsys.readouterr().err == ""
