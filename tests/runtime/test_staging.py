"""The pinned staging buffer of the torch runner (sigrl.runtime.staging).

On the CPU the buffer is ordinary memory (pinning needs CUDA) and the same code runs: values,
growth and reuse, and the runner's scores identical with and without it. The pinned CUDA case is
gpu-marked (skipped with the reason where no CUDA GPU is visible).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from runtime_fixtures import LABELS

from sigrl.runtime.staging import HostStaging
from sigrl.runtime.torch_runner import TorchRunner


def batch(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, size=(n, 8, 8, 3), dtype=np.uint8)


def test_upload_reuses_one_buffer_and_grows_only_when_needed():
    staging = HostStaging("cpu", pin=False)
    for n, seed, allocations in [(4, 0, 1), (2, 1, 1), (4, 2, 1), (6, 3, 2), (1, 4, 2)]:
        images = batch(n, seed)
        x = staging.upload(images)
        assert x.dtype == torch.uint8 and tuple(x.shape) == images.shape
        np.testing.assert_array_equal(x.numpy(), images)
        assert staging.allocations == allocations
    read_only = batch(3, 5)
    read_only.flags.writeable = False  # np.asarray(PIL image) arrays are read-only; the copy takes them
    np.testing.assert_array_equal(staging.upload(read_only).numpy(), read_only)
    staging.close()


def test_runner_scores_are_identical_through_the_staging_buffer(tiny_model, images):
    with TorchRunner(tiny_model) as runner:
        assert runner._staging is None  # the CPU runner copies nothing
        plain = [runner.infer(images[:k], LABELS) for k in (5, 2, 5)]
        runner._staging = HostStaging("cpu", pin=False)
        staged = [runner.infer(images[:k], LABELS) for k in (5, 2, 5)]
        assert runner._staging.allocations == 1
    for a, b in zip(plain, staged):
        np.testing.assert_array_equal(a, b)


@pytest.mark.gpu
def test_pinned_staging_on_cuda_gives_the_same_scores(images):
    from sigrl.model import create_model

    with TorchRunner(create_model("sigrl-tiny", seed=0), device="cuda") as runner:
        assert runner._staging is not None and runner._staging.pin
        staged = [runner.infer(images[:k], LABELS) for k in (5, 3, 5)]
        assert runner._staging._buffer.is_pinned()
        runner._staging = None
        plain = [runner.infer(images[:k], LABELS) for k in (5, 3, 5)]
    for a, b in zip(plain, staged):
        np.testing.assert_array_equal(a, b)
