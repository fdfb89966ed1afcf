"""Metrics: agreement with scikit-learn on random data, and hand-computed small cases."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from sigrl import metrics
from sigrl.errors import SigrlError
from sigrl.metrics import (
    average_precision,
    mean_average_precision,
    precision_recall_f1_at_k,
    zsl_gzsl_report,
)

sklearn_metrics = pytest.importorskip("sklearn.metrics", reason="scikit-learn is a test dependency")


def _sklearn_ap(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Per-class AP from scikit-learn over the +1/-1 entries; NaN where a class has no positive."""
    out = np.full(scores.shape[1], np.nan)
    for j in range(scores.shape[1]):
        known = targets[:, j] != 0
        y = targets[known, j] == 1
        if y.any():
            out[j] = sklearn_metrics.average_precision_score(y, scores[known, j])
    return out


@pytest.mark.parametrize("decimals", [None, 2, 1, 0])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ap_matches_sklearn_with_ties_and_unknowns(seed: int, decimals: int | None) -> None:
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(300, 12))
    if decimals is not None:  # rounding creates many tied scores
        scores = np.round(scores, decimals)
    targets = rng.choice([-1, 0, 1], size=scores.shape, p=[0.55, 0.25, 0.2])
    targets[:, 3] = np.where(targets[:, 3] == 1, -1, targets[:, 3])  # a class without positive
    targets[:, 5] = 0  # a class with nothing known
    ref = _sklearn_ap(scores, targets)
    ours = average_precision(scores, targets, empty="nan")
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12, equal_nan=True)
    assert mean_average_precision(scores, targets) == pytest.approx(np.nanmean(ref), abs=1e-12)


def test_ap_unknown_entries_are_excluded_not_negative() -> None:
    rng = np.random.default_rng(5)
    scores = rng.random((50, 4)).astype(np.float32)
    targets = rng.choice([-1, 1], size=scores.shape)
    # Mark some of the highest-scoring negatives unknown: AP must rise exactly as sklearn says.
    targets[np.argsort(-scores, axis=0)[:5], np.arange(4)] = 0
    ours = average_precision(scores, targets)
    np.testing.assert_allclose(ours, _sklearn_ap(scores, targets), atol=1e-12)
    as_negative = average_precision(scores, np.where(targets == 0, -1, targets))
    assert (ours >= as_negative - 1e-12).all() and (ours > as_negative).any()


def test_ap_blocks_give_same_result(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(3)
    scores = np.round(rng.random((40, 9)), 1)
    targets = rng.choice([-1, 0, 1], size=scores.shape)
    whole = average_precision(scores, targets)
    monkeypatch.setattr(metrics, "_BLOCK_ELEMENTS", 40 * 2)  # two classes per block
    np.testing.assert_array_equal(average_precision(scores, targets), whole)


def test_ap_ties_hand_computed() -> None:
    # Column: the two 0.5 scores (one +, one -) form one threshold: P=1/2 at recall 1/2, then
    # P=2/3 at recall 1, so AP = 1/2*1/2 + 1/2*2/3 = 7/12 (an ordering that put the positive
    # first would give 5/6). The unknown top-scored row must change nothing.
    scores = np.array([[0.5], [0.5], [0.2], [0.9]])
    targets = np.array([[1], [-1], [1], [0]])
    assert average_precision(scores, targets)[0] == pytest.approx(7 / 12, abs=1e-15)


def test_empty_class_conventions_hand_computed() -> None:
    scores = np.array([[0.3, 0.1], [0.8, 0.9], [0.5, 0.4]])
    targets = np.array([[1, -1], [-1, -1], [1, 0]])
    # Class 0 ranks -, +, +: precisions 1/2 and 2/3 at the positives, AP = 7/12.
    # Class 1 has no positive.
    zero = average_precision(scores, targets, empty="zero")
    np.testing.assert_allclose(zero, [7 / 12, 0.0], atol=1e-15)
    for empty in ("skip", "nan"):
        ap = average_precision(scores, targets, empty=empty)
        assert ap[0] == pytest.approx(7 / 12) and math.isnan(ap[1])
    assert mean_average_precision(scores, targets, empty="zero") == pytest.approx(7 / 24)
    assert mean_average_precision(scores, targets) == pytest.approx(7 / 12)  # default "skip"
    assert math.isnan(mean_average_precision(scores[:, 1:], targets[:, 1:]))


def test_prf_at_k_hand_computed() -> None:
    scores = np.array([[0.9, 0.8, 0.1, 0.5], [0.2, 0.7, 0.6, 0.3]])
    targets = np.array([[1, 0, 1, -1], [0, 1, -1, 1]])  # 4 positives; 0 is never a hit
    # k=1: tops are labels 0 and 1, both hits -> P = 2/2, R = 2/4.
    assert precision_recall_f1_at_k(scores, targets, 1) == pytest.approx(
        {"precision": 1.0, "recall": 0.5, "f1": 2 / 3}
    )
    # k=2: image 0 gets {0: +, 1: unknown}, image 1 {1: +, 2: -} -> 2 hits of 4 picks.
    assert precision_recall_f1_at_k(scores, targets, 2) == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5}
    )
    # k=3: image 0 adds label 3 (-), image 1 adds label 3 (+) -> 3 hits of 6 picks.
    assert precision_recall_f1_at_k(scores, targets, 3) == pytest.approx(
        {"precision": 0.5, "recall": 0.75, "f1": 0.6}
    )


def test_prf_no_positive_gives_nan_recall() -> None:
    out = precision_recall_f1_at_k(np.array([[0.2, 0.1]]), np.array([[-1, 0]]), 1)
    assert out["precision"] == 0.0 and math.isnan(out["recall"]) and math.isnan(out["f1"])


def test_zsl_gzsl_report_hand_computed() -> None:
    labels = ["a", "b", "c", "d"]  # c, d unseen
    scores = np.array(
        [[0.9, 0.1, 0.8, 0.2],
         [0.2, 0.7, 0.6, 0.3],
         [0.5, 0.4, 0.1, 0.3]]
    )
    targets = np.array(
        [[1, -1, -1, 1],
         [-1, 1, 1, -1],
         [1, -1, -1, -1]]  # no unseen positive: left out of ZSL
    )
    report = zsl_gzsl_report(scores, targets, labels, ["c", "d"], ks=(1, 2))
    assert report["empty_class"] == "skip"
    zsl, gzsl = report["zsl"], report["gzsl"]
    # ZSL, images 0-1 on c, d: c ranks -,+ (AP 1/2); d ranks -,+ (AP 1/2).
    # @1 picks c, c: one hit of 2, 2 positives. @2 picks everything: 2 hits of 4.
    assert zsl == pytest.approx({
        "n_images": 2, "n_labels": 2, "n_labels_without_positive": 0, "mAP": 0.5,
        "P@1": 0.5, "R@1": 0.5, "F1@1": 0.5, "P@2": 0.5, "R@2": 1.0, "F1@2": 2 / 3,
    })
    # GZSL, all 3 images and 4 labels: AP a=1, b=1, c=1/2, d=1/3 (the positive comes after a tie
    # of two negatives at 0.3). 5 positives. @1 picks a, b, a: 3 hits. @2: 1 + 2 + 1 hits of 6.
    assert gzsl == pytest.approx({
        "n_images": 3, "n_labels": 4, "n_labels_without_positive": 0, "mAP": 17 / 24,
        "P@1": 1.0, "R@1": 0.6, "F1@1": 0.75, "P@2": 2 / 3, "R@2": 0.8, "F1@2": 8 / 11,
    })
    # Index form of the unseen set gives the same report, and it all survives JSON.
    assert zsl_gzsl_report(scores, targets, labels, [2, 3], ks=(1, 2)) == report
    assert json.loads(json.dumps(report)) == report


def test_zsl_gzsl_report_default_ks() -> None:
    rng = np.random.default_rng(0)
    scores = rng.random((20, 8))
    targets = rng.choice([-1, 1], size=scores.shape)
    report = zsl_gzsl_report(scores, targets, list("abcdefgh"), list("bcdef"))
    assert set(report["zsl"]) >= {"mAP", "P@3", "R@3", "F1@3", "P@5", "R@5", "F1@5"}
    assert report["gzsl"]["F1@5"] == pytest.approx(
        precision_recall_f1_at_k(scores, targets, 5)["f1"]
    )


@pytest.mark.parametrize(
    ("scores", "targets", "match"),
    [
        (np.zeros((3, 2)), np.zeros((3, 3)), "differ in shape"),
        (np.zeros(3), np.zeros(3), "2-D"),
        (np.zeros((0, 2)), np.zeros((0, 2)), "0 images"),
        (np.zeros((2, 2)), np.array([[1, 2], [0, -1]]), "found \\[2\\]"),
        (np.array([[np.nan, 0.0]]), np.array([[1, -1]]), "NaN"),
        (np.zeros((2, 2)), np.ones((2, 2), dtype=bool), "booleans"),
    ],
)
def test_bad_inputs_raise(scores: np.ndarray, targets: np.ndarray, match: str) -> None:
    with pytest.raises(SigrlError, match=match):
        average_precision(scores, targets)


def test_bad_arguments_raise() -> None:
    scores, targets = np.zeros((2, 3)), np.array([[1, -1, 0], [-1, 1, 1]])
    with pytest.raises(SigrlError, match="k must be"):
        precision_recall_f1_at_k(scores, targets, 4)
    with pytest.raises(SigrlError, match="k must be"):
        precision_recall_f1_at_k(scores, targets, 0)
    with pytest.raises(SigrlError, match="empty="):
        average_precision(scores, targets, empty="ignore")  # type: ignore[arg-type]
    with pytest.raises(SigrlError, match="not in the label list"):
        zsl_gzsl_report(scores, targets, ["a", "b", "c"], ["z"], ks=(1,))
    with pytest.raises(SigrlError, match="label names"):
        zsl_gzsl_report(scores, targets, ["a", "b"], ["a"], ks=(1,))
    with pytest.raises(SigrlError, match="no image has an unseen positive"):
        zsl_gzsl_report(scores, np.array([[1, -1, -1], [1, -1, 0]]), ["a", "b", "c"], ["b", "c"],
                        ks=(1,))
