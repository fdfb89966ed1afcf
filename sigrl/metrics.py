"""Multi-label ranking metrics: per-class AP, mAP, overall P/R/F1@k and ZSL/GZSL reports.

Conventions shared by every function here:

- ``scores`` is a float array ``[n_images, n_labels]``; larger means "more likely present".
- ``targets`` is an integer array of the same shape with ``+1`` (positive), ``-1`` (negative) and
  ``0`` (unknown). Unknown entries are left out of AP entirely and never count as positives
  for the @k metrics.
- Results are fractions in [0, 1] (papers usually print them as percentages).

Everything is vectorised over classes and images with numpy; no scikit-learn at runtime (the tests
compare against it).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Literal

import numpy as np

from sigrl.errors import SigrlError

logger = logging.getLogger(__name__)

EmptyClass = Literal["zero", "skip", "nan"]

# What the project reports when nothing else is asked for: classes without any positive have no
# defined AP, so they are left out of the mean. The reference code counts them as AP 0 instead
# (`empty="zero"`), which lowers mAP whenever a split has such classes.
DEFAULT_EMPTY: EmptyClass = "skip"
_EMPTY_CHOICES = ("zero", "skip", "nan")
# Entries per block of classes in `average_precision` (about 32 MB per float64 temporary).
_BLOCK_ELEMENTS = 1 << 22


def _check_inputs(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert to float64 scores and int8 targets, both [n_images, n_labels]."""
    scores = np.asarray(scores)
    targets = np.asarray(targets)
    if scores.ndim != 2 or targets.ndim != 2:
        raise SigrlError(
            f"metrics need 2-D arrays [n_images, n_labels]; got scores {scores.shape} and targets "
            f"{targets.shape}. Stack per-image rows into one matrix first."
        )
    if scores.shape != targets.shape:
        raise SigrlError(
            f"scores {scores.shape} and targets {targets.shape} differ in shape; both must be "
            "[n_images, n_labels] with the same label order."
        )
    if scores.shape[0] == 0:
        raise SigrlError("metrics got 0 images; evaluate on a non-empty set of images.")
    if not np.issubdtype(scores.dtype, np.number) or np.iscomplexobj(scores):
        raise SigrlError(f"scores must be real numbers, got dtype {scores.dtype}.")
    scores = scores.astype(np.float64, copy=False)
    if np.isnan(scores).any():
        raise SigrlError(
            "scores contain NaN; check the model output (e.g. a diverged checkpoint)."
        )
    if targets.dtype == bool or not np.issubdtype(targets.dtype, np.number):
        raise SigrlError(
            f"targets must be numbers in {{-1, 0, +1}}, got dtype {targets.dtype}; map booleans "
            "with `np.where(t, 1, -1)`."
        )
    bad = ~np.isin(targets, (-1, 0, 1))
    if bad.any():
        found = np.unique(targets[bad])[:5].tolist()
        raise SigrlError(
            f"targets may only hold +1 (positive), -1 (negative) or 0 (unknown); found {found}. "
            "Convert 0/1 label matrices with `2 * t - 1`."
        )
    return scores, targets.astype(np.int8)


def _check_empty(empty: str) -> None:
    if empty not in _EMPTY_CHOICES:
        raise SigrlError(f"empty={empty!r} is not one of {_EMPTY_CHOICES}.")


def average_precision(
    scores: np.ndarray, targets: np.ndarray, empty: EmptyClass = "zero"
) -> np.ndarray:
    """Per-class non-interpolated average precision, shape [n_labels].

    For each class only images labelled +1 or -1 take part; 0 (unknown) entries are dropped.
    Tied scores form one threshold, exactly as scikit-learn's ``average_precision_score``:
    AP = sum over distinct thresholds of (recall gain) * (precision at that threshold).

    ``empty`` decides the AP of a class with no positive image:
    ``"zero"`` gives 0.0 (the reference implementation's convention, hence this function's
    default, so it reproduces reference tables); ``"skip"`` and ``"nan"`` (synonyms) give NaN
    so that :func:`mean_average_precision` leaves the class out. The project reports
    ``"skip"`` by default (see :data:`DEFAULT_EMPTY`).
    """
    _check_empty(empty)
    scores, targets = _check_inputs(scores, targets)
    n_images, n_labels = scores.shape
    gain = np.empty(n_labels)  # [L]
    n_pos = np.empty(n_labels)  # [L]
    # Work on blocks of classes so that the temporaries stay near _BLOCK_ELEMENTS entries
    # (a full NUS-WIDE test matrix would otherwise need several GB at once).
    step = max(1, _BLOCK_ELEMENTS // n_images)
    for lo in range(0, n_labels, step):
        hi = min(lo + step, n_labels)
        # Rows are classes here: sorting along the contiguous axis is much faster.
        block_s = np.ascontiguousarray(scores[:, lo:hi].T)  # [c, n]
        block_t = np.ascontiguousarray(targets[:, lo:hi].T)  # [c, n]
        gain[lo:hi], n_pos[lo:hi] = _ap_terms(block_s, block_t)
    fill = 0.0 if empty == "zero" else np.nan
    return np.divide(gain, n_pos, out=np.full_like(gain, fill), where=n_pos > 0)


def _ap_terms(scores: np.ndarray, targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For classes as rows [c, n]: per class, the sum of each positive's threshold precision
    and the number of positives."""
    n_images = scores.shape[1]
    # Sort each class by descending score; stable so that the order is reproducible.
    order = np.argsort(-scores, axis=1, kind="stable")  # [c, n]
    s = np.take_along_axis(scores, order, axis=1)  # [c, n]
    t = np.take_along_axis(targets, order, axis=1)  # [c, n]
    pos = t == 1  # [c, n]
    # Unknown entries add to neither count, so wherever they sit in the order they change nothing.
    tp = np.cumsum(pos, axis=1, dtype=np.float64)  # [c, n]
    seen = np.cumsum(t != 0, axis=1, dtype=np.float64)  # [c, n]
    precision = np.divide(tp, seen, out=np.zeros_like(tp), where=seen > 0)  # [c, n]

    # An entry ends a threshold group when the next score of its class differs (or it is last).
    group_end = np.ones(s.shape, dtype=bool)  # [c, n]
    group_end[:, :-1] = s[:, 1:] != s[:, :-1]
    # Index of the end of each entry's group: reverse running minimum over the end indices.
    end_idx = np.where(group_end, np.arange(n_images), n_images - 1)  # [c, n]
    end_idx = np.minimum.accumulate(end_idx[:, ::-1], axis=1)[:, ::-1]  # [c, n]
    # Each positive earns the precision of its whole tie group: that is the threshold-based AP.
    prec_at_group = np.take_along_axis(precision, end_idx, axis=1)  # [c, n]
    gain = np.where(pos, prec_at_group, 0.0).sum(axis=1)  # [c]
    return gain, tp[:, -1]


def mean_average_precision(
    scores: np.ndarray, targets: np.ndarray, empty: EmptyClass = DEFAULT_EMPTY
) -> float:
    """Mean of :func:`average_precision` over classes.

    With ``empty="skip"`` (default) or ``"nan"``, classes without any positive are left out of the
    mean; with ``"zero"`` they count as AP 0 as in the reference code. Returns NaN (and logs a
    warning) when no class has a positive under ``"skip"``/``"nan"``.
    """
    ap = average_precision(scores, targets, empty=empty)
    kept = ap[~np.isnan(ap)]
    if kept.size == 0:
        logger.warning("no class has a positive image; mAP is undefined (NaN)")
        return float("nan")
    if kept.size < ap.size:
        logger.info("mAP over %d of %d classes (%d have no positive)", kept.size, ap.size,
                    ap.size - kept.size)
    return float(kept.mean())


def precision_recall_f1_at_k(
    scores: np.ndarray, targets: np.ndarray, k: int
) -> dict[str, float]:
    """Overall (micro) precision, recall and F1 of each image's k highest-scoring labels.

    precision = hits / (n_images * k); recall = hits / (number of +1 entries in ``targets``);
    f1 = harmonic mean (0 when both are 0). A hit is a top-k label whose target is +1: labels
    marked 0 (unknown) or -1 count as misses, and unknowns are not part of the recall
    denominator. Ties in score are broken by the lower label index. Recall is NaN when
    ``targets`` has no positive at all.
    """
    scores, targets = _check_inputs(scores, targets)
    n_images, n_labels = scores.shape
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k <= n_labels:
        raise SigrlError(
            f"k must be an integer in [1, {n_labels}] (the number of labels); got {k!r}."
        )
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]  # [n, k]
    hits = float((np.take_along_axis(targets, top, axis=1) == 1).sum())
    n_pos = float((targets == 1).sum())
    precision = hits / (n_images * k)
    recall = hits / n_pos if n_pos > 0 else float("nan")
    denom = precision + recall
    f1 = 2 * precision * recall / denom if denom > 0 else 0.0
    if np.isnan(recall):
        f1 = float("nan")
    return {"precision": precision, "recall": recall, "f1": f1}


def _summary(
    scores: np.ndarray, targets: np.ndarray, ks: Sequence[int], empty: EmptyClass
) -> dict[str, float | int]:
    """mAP plus P/R/F1@k for each k, as plain floats keyed like the papers' tables."""
    out: dict[str, float | int] = {
        "n_images": int(scores.shape[0]),
        "n_labels": int(scores.shape[1]),
        "n_labels_without_positive": int((~(targets == 1).any(axis=0)).sum()),
        "mAP": mean_average_precision(scores, targets, empty=empty),
    }
    for k in ks:
        prf = precision_recall_f1_at_k(scores, targets, k)
        out[f"P@{k}"] = prf["precision"]
        out[f"R@{k}"] = prf["recall"]
        out[f"F1@{k}"] = prf["f1"]
    return out


def _unseen_columns(labels: Sequence[str], unseen: Sequence[str | int]) -> np.ndarray:
    """Column indices of the unseen labels, given by name or by index."""
    index = {name: i for i, name in enumerate(labels)}
    cols = []
    for u in unseen:
        if isinstance(u, (int, np.integer)) and not isinstance(u, bool):
            if not 0 <= u < len(labels):
                raise SigrlError(f"unseen label index {u} is outside 0..{len(labels) - 1}.")
            cols.append(int(u))
        elif u in index:
            cols.append(index[u])
        else:
            raise SigrlError(
                f"unseen label {u!r} is not in the label list; pass names exactly as in `labels`."
            )
    if not cols:
        raise SigrlError("the unseen label set is empty; ZSL needs at least one unseen label.")
    if len(set(cols)) != len(cols):
        raise SigrlError("the unseen label set names a label twice; list each unseen label once.")
    return np.asarray(sorted(cols))


def zsl_gzsl_report(
    scores_all: np.ndarray,
    targets_all: np.ndarray,
    labels: Sequence[str],
    unseen: Sequence[str | int],
    ks: Sequence[int] = (3, 5),
    empty: EmptyClass = DEFAULT_EMPTY,
) -> dict[str, object]:
    """Zero-shot (ZSL) and generalised zero-shot (GZSL) metrics as a JSON-ready dict.

    ``scores_all``/``targets_all`` are [n_images, len(labels)] over seen + unseen labels, columns
    in the order of ``labels``; ``unseen`` names the unseen labels (names or column indices).

    - ZSL: only the unseen columns, and only images with at least one unseen positive (as in the
      zero-shot multi-label literature, e.g. the NUS-WIDE 81-concept protocol).
    - GZSL: all columns and all images given; the caller's test set defines the image set.

    Each part holds ``mAP``, ``P@k``, ``R@k``, ``F1@k`` for k in ``ks`` plus image and label
    counts; ``"empty_class"`` records the AP convention used for classes without positives.
    """
    scores_all, targets_all = _check_inputs(scores_all, targets_all)
    if len(labels) != scores_all.shape[1]:
        raise SigrlError(
            f"{len(labels)} label names but scores have {scores_all.shape[1]} columns; pass the "
            "label list in the model's output order."
        )
    if len(set(labels)) != len(labels):
        raise SigrlError("label names must be unique to identify the unseen columns.")
    _check_empty(empty)
    cols = _unseen_columns(labels, unseen)
    zs_scores = scores_all[:, cols]  # [n, U]
    zs_targets = targets_all[:, cols]  # [n, U]
    keep = (zs_targets == 1).any(axis=1)  # [n]
    if not keep.any():
        raise SigrlError("no image has an unseen positive label; ZSL metrics are undefined here.")
    return {
        "empty_class": empty,
        "zsl": _summary(zs_scores[keep], zs_targets[keep], ks, empty),
        "gzsl": _summary(scores_all, targets_all, ks, empty),
    }
