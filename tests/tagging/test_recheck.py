"""--decode checked: near-tied reduced-scale images are decoded in full and rescored, in input order."""

from __future__ import annotations

import numpy as np
import pytest

from sigrl.config import PreprocessConfig
from sigrl.tagging.decisions.rule import make_rule
from sigrl.tagging.decode import DecodeOptions, decode
from sigrl.tagging.scoring.pipeline import Batch, iter_batches
from sigrl.tagging.scoring.recheck import GAP_MARGIN, Rechecker

from tagging_images import save, smooth_image

LABELS = ["red", "green", "blue"]
CHECKED = DecodeOptions(mode="checked")


class ChannelMeans:
    """Scores = mean of each colour channel / 255; remembers every batch it scored."""

    preprocess = PreprocessConfig(image_size=16, resize_size=16, interpolation="bicubic")

    def __init__(self):
        self.seen: list[np.ndarray] = []

    def infer(self, images: np.ndarray, labels) -> np.ndarray:
        self.seen.append(images.copy())
        return images.reshape(images.shape[0], -1, 3).mean(axis=1) / 255.0  # [B, 3]


@pytest.fixture
def photos(tmp_path):
    """Two camera-size JPEGs (decoded at reduced scale): one far from a tie, one with red = green."""
    far = np.zeros((1200, 1600, 3), np.uint8)
    far[..., 0] = 230
    tied = smooth_image(1600, 1200, seed=3)
    tied[..., 1] = tied[..., 0]  # red and green means equal: the top-1 label is a tie
    save(tmp_path / "far.jpg", far, quality=95)
    save(tmp_path / "tied.jpg", tied, quality=95)
    return [tmp_path / "far.jpg", tmp_path / "tied.jpg"]


def decoded(paths, options=CHECKED) -> Batch:
    (batch,) = iter_batches(paths, ChannelMeans.preprocess, batch_size=8, workers=1, decoding=options)
    assert batch.reduced.all()
    return batch


def test_only_near_ties_are_decoded_again_and_get_the_full_decode_scores(photos):
    runner, rule = ChannelMeans(), make_rule(LABELS, topk=1)
    batch = decoded(photos)
    scores = runner.infer(batch.images, LABELS)
    with Rechecker(runner, LABELS, rule, CHECKED, workers=2, lag=0) as rechecker:
        ((out_batch, final),) = rechecker.push(batch, scores)
    assert out_batch is batch and rechecker.rechecked == 1
    full = decode(photos[1], runner.preprocess, DecodeOptions(mode="exact"))
    np.testing.assert_array_equal(runner.seen[-1], full[None])  # the tied photo, decoded in full
    np.testing.assert_array_equal(final[0], scores[0])  # the other keeps its scores
    np.testing.assert_allclose(final[1], runner.infer(full[None], LABELS)[0])
    assert abs(scores[1, 0] - scores[1, 1]) <= GAP_MARGIN  # the premise: a near-tie


def test_held_batches_come_back_in_input_order(photos):
    runner, rule = ChannelMeans(), make_rule(LABELS, topk=1)
    tied, far = decoded(photos[1:]), decoded(photos[:1])
    with Rechecker(runner, LABELS, rule, CHECKED, workers=1, lag=1) as rechecker:
        assert rechecker.push(tied, runner.infer(tied.images, LABELS)) == []  # held: its full decode runs
        done = rechecker.push(far, runner.infer(far.images, LABELS))
        assert [b for b, _ in done] == [tied, far]
        assert rechecker.push(far, runner.infer(far.images, LABELS))[0][0] is far  # nothing held: final at once
        assert rechecker.finish() == []


def test_other_modes_pass_scores_through(photos):
    runner = ChannelMeans()
    batch = decoded(photos, DecodeOptions(mode="fast"))
    scores = runner.infer(batch.images, LABELS)
    with Rechecker(runner, LABELS, make_rule(LABELS, topk=1), DecodeOptions(mode="fast"), workers=2) as rechecker:
        ((_, final),) = rechecker.push(batch, scores)
    assert final is scores and rechecker.rechecked == 0 and len(runner.seen) == 1


def test_a_failing_full_decode_keeps_the_reduced_scale_scores(photos, caplog):
    runner, rule = ChannelMeans(), make_rule(LABELS, topk=1)
    batch = decoded(photos)
    scores = runner.infer(batch.images, LABELS)
    photos[1].unlink()  # gone between the two decodes
    with Rechecker(runner, LABELS, rule, CHECKED, workers=2, lag=0) as rechecker:
        ((_, final),) = rechecker.push(batch, scores)
    np.testing.assert_array_equal(final, scores)
    assert rechecker.rechecked == 1 and "full decode failed (no such file)" in caplog.text
