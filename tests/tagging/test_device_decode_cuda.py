"""The device decode path on a CUDA GPU (nvJPEG): pixels and scores against the CPU decoder.

Skipped with the reason where no CUDA GPU is visible (tests/conftest.py).
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sigrl.config import PreprocessConfig
from sigrl.decode import DecodeOptions, decode
from sigrl.tagging.scoring.device_pipeline import iter_device_batches
from sigrl.tagging.decisions.rule import make_rule
from sigrl.tagging.records import batch_records
from sigrl.tagging.scoring.scorer import BatchScorer, uses_device_decode

from tagging_images import smooth_image

pytestmark = pytest.mark.gpu
LABELS = ["cat", "dog", "car", "tree", "house", "boat", "bird"]


@pytest.fixture
def photos(tmp_path):
    paths = []
    for i, (w, h) in enumerate([(640, 480), (480, 640), (1024, 768), (300, 225), (4000, 3000)]):
        exif = Image.Exif()
        exif[0x0112] = (1, 6, 3, 8, 1)[i]
        p = tmp_path / f"p{i}.jpg"
        Image.fromarray(smooth_image(w, h, seed=20 + i)).save(p, "JPEG", quality=90, exif=exif.tobytes())
        paths.append(p)
    cmyk = tmp_path / "cmyk.jpg"
    Image.fromarray(smooth_image(200, 150, seed=3)).convert("CMYK").save(cmyk, "JPEG")
    cut = tmp_path / "cut.jpg"
    cut.write_bytes(paths[0].read_bytes()[:500])
    return paths + [cmyk, cut]


def test_nvjpeg_pixels_near_the_cpu_decoder(photos):
    pre = PreprocessConfig(image_size=224, resize_size=224, interpolation="bicubic")
    (batch,) = list(iter_device_batches(photos, pre, "cuda", batch_size=len(photos)))
    assert batch.images.device.type == "cuda"
    assert [p.name for p, _ in batch.failures] == ["cut.jpg"]
    expected = np.stack([decode(p, pre, DecodeOptions(mode="exact")) for p in batch.paths])
    diff = np.abs(batch.images.cpu().numpy().astype(int) - expected.astype(int))
    print(f"nvJPEG path vs CPU exact: max abs diff {diff.max()}, mean {diff.mean():.4f}")
    assert diff.mean() < 1.0 and diff.max() <= 16


def test_gpu_decoded_scores_match_cpu_decoded(photos):
    from sigrl.model import create_model
    from sigrl.runtime.torch_runner import TorchRunner

    rule = make_rule(LABELS, topk=5)
    with TorchRunner(create_model("sigrl-tiny", seed=0), device="cuda") as runner:
        assert uses_device_decode(runner, DecodeOptions())
        assert not uses_device_decode(runner, DecodeOptions(mode="exact"))
        out = {}
        for on_device in (True, False):
            scorer = BatchScorer(runner, LABELS, rule, 4, 2, DecodeOptions(mode="exact" if not on_device else "fast"),
                                 device_decode=on_device)
            out[on_device] = [(b, s) for b, s in scorer(photos)]
    gpu = np.concatenate([s for _, s in out[True]])
    cpu = np.concatenate([s for _, s in out[False]])
    print(f"scores: max abs diff {np.abs(gpu - cpu).max():.5f}")
    assert np.abs(gpu - cpu).max() < 0.02
    records = [batch_records(b.paths, s, rule, b.failures) for b, s in out[True]]
    assert sum(r["status"] == "error" for rs in records for r in rs) == 1


def test_decoding_while_the_scoring_stream_is_busy_gives_the_same_pixels(photos):
    # pytorch/vision#9606: nvJPEG's outputs, if allocated on the scoring stream, can be blocks that
    # queued kernels there still read. Keep that stream busy and freeing memory while batches are
    # decoded; every batch must equal the one decoded with the GPU idle.
    import torch

    pre = PreprocessConfig(image_size=224, resize_size=224, interpolation="bicubic")
    inputs = photos * 4
    quiet = [b.images.cpu() for b in iter_device_batches(inputs, pre, "cuda", batch_size=3)]
    a = torch.randn(4096, 4096, device="cuda")
    busy = []
    for batch in iter_device_batches(inputs, pre, "cuda", batch_size=3, queue_depth=2):
        for _ in range(10):
            product = a @ a  # [4096, 4096], freed at once while the matmul is still queued
            del product
        busy.append(batch.images.float().sum(dim=(1, 2, 3)).cpu())
    expected = [q.float().sum(dim=(1, 2, 3)) for q in quiet]
    for got, want in zip(busy, expected):
        assert torch.equal(got, want)
