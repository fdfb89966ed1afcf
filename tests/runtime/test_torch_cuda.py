"""The PyTorch runner on a CUDA GPU: the CPU's scores within each precision's tolerance, the label
side in fp32 whatever the precision, and the weights and activations on the device.

Skipped with the reason where no CUDA GPU is visible (tests/conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from runtime_fixtures import LABELS

from sigrl.runtime.torch_runner import TorchRunner

pytestmark = pytest.mark.gpu


@pytest.fixture(scope="module")
def cuda_model():
    # Its own copy: TorchRunner moves the model it is given, and the session's tiny_model stays on the CPU.
    from sigrl.model import create_model

    return create_model("sigrl-tiny", seed=0).eval()


@pytest.fixture(scope="module")
def cpu_scores(images):
    from sigrl.model import create_model

    with TorchRunner(create_model("sigrl-tiny", seed=0)) as runner:
        return runner.infer(images, LABELS)  # [5, N]


def test_fp32_on_cuda_matches_cpu(cuda_model, images, cpu_scores):
    import torch

    with TorchRunner(cuda_model, device="cuda") as runner:
        assert runner.device == "cuda"
        assert all(p.device.type == "cuda" for p in runner.model.parameters())
        torch.cuda.reset_peak_memory_stats()
        got = runner.infer(images, LABELS)
        assert torch.cuda.max_memory_allocated() > 0
    assert isinstance(got, np.ndarray) and got.dtype == np.float32 and got.shape == cpu_scores.shape
    # cuDNN convolutions (the patch embedding) may run in TF32 on Ampere and later; scores span about +-0.2.
    np.testing.assert_allclose(got, cpu_scores, atol=2e-3, rtol=0)
    assert (got.argmax(1) == cpu_scores.argmax(1)).all()


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_reduced_precision_on_cuda_close_to_cpu_fp32(cuda_model, images, cpu_scores, precision):
    with TorchRunner(cuda_model, device="cuda", precision=precision) as runner:
        got = runner.infer(images, LABELS)
        batched = np.concatenate([runner.infer(images[i:i + 1], LABELS) for i in range(len(images))])
    assert got.dtype == np.float32 and np.isfinite(got).all()
    assert np.abs(got - cpu_scores).max() < 0.05
    assert (got.argmax(1) == cpu_scores.argmax(1)).mean() >= 0.8
    np.testing.assert_allclose(batched, got, atol=0.02)  # one image at a time: no coupling across the batch


def test_label_side_stays_fp32_under_autocast(cuda_model, tiny_model):
    expected = tiny_model.encode_labels(LABELS)
    with TorchRunner(cuda_model, device="cuda", precision="fp16") as runner:
        side = runner.label_side(LABELS)
    assert side.embeddings.dtype == np.float32 and side.context.dtype == np.float32
    np.testing.assert_allclose(side.embeddings, expected.embeddings.detach().numpy(), atol=1e-3)
    np.testing.assert_allclose(side.context, expected.context.detach().numpy(), atol=1e-3)
