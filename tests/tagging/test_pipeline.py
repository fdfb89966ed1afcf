import threading
import time

import numpy as np
import pytest
from PIL import Image

from sigrl.errors import SigrlError
from sigrl.tagging.scoring import pipeline
from sigrl.tagging.decode import DecodeOptions, decode
from sigrl.tagging.scoring.pipeline import iter_batches

from tagging_images import save, smooth_image


def make_inputs(tmp_path, n: int, bad: set[int]) -> list:
    paths = []
    for i in range(n):
        p = tmp_path / f"{i:03d}.png"
        if i in bad:
            p.write_bytes(b"")
        else:
            Image.new("RGB", (40, 30), (i, 255 - i, 7)).save(p)
        paths.append(p)
    return paths


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_order_and_failures(tmp_path, preprocess, workers):
    paths = make_inputs(tmp_path, 11, bad={2, 7, 8})
    batches = list(iter_batches(paths, preprocess, batch_size=4, workers=workers, queue_depth=2))
    assert [len(b) for b in batches] == [4, 4, 3]
    ok = [p for b in batches for p in b.paths]
    assert ok == [p for i, p in enumerate(paths) if i not in {2, 7, 8}]
    assert [(f[0].name, f[1]) for b in batches for f in b.failures] == [
        ("002.png", "zero-byte file"), ("007.png", "zero-byte file"), ("008.png", "zero-byte file")]
    for b in batches:
        assert b.images.shape == (len(b.paths), 32, 32, 3) and b.images.dtype == np.uint8
        for p, img in zip(b.paths, b.images):
            np.testing.assert_array_equal(img, decode(p, preprocess))  # row i belongs to paths[i]


def test_unexpected_exception_becomes_failure(tmp_path, preprocess, monkeypatch):
    paths = make_inputs(tmp_path, 3, bad=set())
    real = pipeline.decode_noting_scale

    def flaky(path, *args):
        if path.name == "001.png":
            raise RuntimeError("boom")
        return real(path, *args)

    monkeypatch.setattr(pipeline, "decode_noting_scale", flaky)
    (batch,) = iter_batches(paths, preprocess, batch_size=8, workers=2)
    assert [p.name for p in batch.paths] == ["000.png", "002.png"]
    assert batch.failures == [(paths[1], "unexpected error: RuntimeError: boom")]


def test_bounded_lookahead_and_early_close(tmp_path, preprocess, monkeypatch):
    paths = make_inputs(tmp_path, 4, bad=set())
    started = []
    lock = threading.Lock()
    real = pipeline.decode_noting_scale

    def counting(path, *args):
        with lock:
            started.append(path)
        time.sleep(0.01)
        return real(path, *args)

    monkeypatch.setattr(pipeline, "decode_noting_scale", counting)
    consumed = []

    def lazy_source():
        for i in range(10_000):
            consumed.append(i)
            yield paths[i % 4]

    gen = iter_batches(lazy_source(), preprocess, batch_size=2, workers=2, queue_depth=3)
    first = next(gen)
    assert len(first.paths) == 2
    # After the first batch: 3 batches in flight (queue_depth) plus the one handed over.
    assert len(consumed) <= 2 * 4 + 1
    gen.close()
    settled = len(started)
    time.sleep(0.1)
    assert len(started) == settled <= 8  # nothing keeps decoding after close
    assert not [t for t in threading.enumerate() if t.name.startswith("sigrl-decode")]


def test_consumer_exception_shuts_pool_down(tmp_path, preprocess):
    paths = make_inputs(tmp_path, 20, bad=set())
    with pytest.raises(KeyboardInterrupt):
        for _ in iter_batches(paths, preprocess, batch_size=2, workers=2):
            raise KeyboardInterrupt
    assert not [t for t in threading.enumerate() if t.name.startswith("sigrl-decode")]


def test_bad_arguments_fail_at_call(preprocess):
    with pytest.raises(SigrlError, match="batch size"):
        iter_batches([], preprocess, batch_size=0)
    assert list(iter_batches([], preprocess)) == []


def test_batches_say_which_images_were_decoded_at_reduced_scale(tmp_path, preprocess):
    save(tmp_path / "0-big.jpg", smooth_image(1600, 1200, seed=1), quality=90)  # drafted
    (tmp_path / "1-empty.jpg").write_bytes(b"")
    save(tmp_path / "2-small.jpg", smooth_image(48, 40, seed=2), quality=90)  # too small to draft
    save(tmp_path / "3-big.png", smooth_image(1600, 1200, seed=3))  # not a JPEG
    save(tmp_path / "4-big.jpg", smooth_image(1200, 1600, seed=4), quality=90)
    paths = sorted(tmp_path.iterdir())
    (batch,) = iter_batches(paths, preprocess, batch_size=8, workers=2)
    assert [p.name for p in batch.paths] == ["0-big.jpg", "2-small.jpg", "3-big.png", "4-big.jpg"]
    assert batch.reduced.tolist() == [True, False, False, True]
    (batch,) = iter_batches(paths, preprocess, batch_size=8, workers=2, decoding=DecodeOptions(mode="exact"))
    assert batch.reduced.tolist() == [False] * 4
