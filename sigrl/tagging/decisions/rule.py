"""From a score matrix to tags: thresholds (global and per label) and top-k.

A label is chosen for an image when its score reaches its threshold (the label's own, else the
global one) and, with top-k, when it is also among the k highest of the labels that passed.
With top-k and no threshold at all, the k highest labels are chosen.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np

from sigrl.errors import SigrlError

SCORES_MODES = ("tags", "all")


@dataclass(frozen=True)
class DecisionRule:
    labels: tuple[str, ...]
    thresholds: np.ndarray  # [N] float64; -inf where only top-k limits the label
    topk: int | None = None
    scores_mode: str = "tags"  # "tags": scores of chosen tags only; "all": every label's score

    def to_dict(self) -> dict:
        """For the run's metadata sidecar."""
        return {
            "thresholds": {l: (None if math.isinf(t) else float(t)) for l, t in zip(self.labels, self.thresholds)},
            "topk": self.topk,
            "scores": self.scores_mode,
        }


def make_rule(
    labels: Sequence[str],
    threshold: float | None = None,
    per_label: Mapping[str, float] | None = None,
    topk: int | None = None,
    scores_mode: str = "tags",
) -> DecisionRule:
    """Combines the user's choices; labels missing from `per_label` use `threshold`.

    Labels with neither are limited by top-k only, which therefore becomes required.
    """
    if scores_mode not in SCORES_MODES:
        raise SigrlError(f"scores mode must be one of {SCORES_MODES}, got {scores_mode!r}")
    if topk is not None and topk < 1:
        raise SigrlError(f"--topk must be >= 1, got {topk}")
    if threshold is not None and not math.isfinite(threshold):
        raise SigrlError(f"--threshold must be a finite number, got {threshold}")
    per_label = dict(per_label or {})
    unknown = sorted(set(per_label) - set(labels))
    if unknown:
        raise SigrlError(f"thresholds given for labels not in the label set: {unknown}")
    default = -math.inf if threshold is None else float(threshold)
    values = np.array([per_label.get(label, default) for label in labels], dtype=np.float64)  # [N]
    if topk is None and np.isinf(values).any():
        missing = [l for l, v in zip(labels, values) if math.isinf(v)]
        shown = ", ".join(missing[:10]) + (" ..." if len(missing) > 10 else "")
        raise SigrlError(
            f"no threshold for {len(missing)} label(s) ({shown}); give --threshold, a threshold "
            "file covering every label, or --topk"
        )
    return DecisionRule(labels=tuple(labels), thresholds=values, topk=topk, scores_mode=scores_mode)


def select(scores: np.ndarray, rule: DecisionRule) -> np.ndarray:
    """Boolean mask [B, N] of the chosen labels for scores [B, N]."""
    scores = np.asarray(scores)
    if scores.ndim != 2 or scores.shape[1] != len(rule.labels):
        raise ValueError(f"scores must be [B, {len(rule.labels)}], got {scores.shape}")
    chosen = scores >= rule.thresholds[None, :]  # NaN never passes
    if rule.topk is not None and rule.topk < scores.shape[1]:
        ranked = np.where(chosen, scores, -np.inf)  # [B, N]
        # Stable sort: ties at the k-th place go to the earlier label, the same on every run.
        order = np.argsort(-ranked, axis=1, kind="stable")[:, : rule.topk]  # [B, k]
        top = np.zeros_like(chosen)
        np.put_along_axis(top, order, True, axis=1)
        chosen &= top
    return chosen


def near_ties(scores: np.ndarray, rule: DecisionRule, score_margin: float, gap_margin: float) -> np.ndarray:
    """Boolean [B]: images whose chosen labels could change if their scores [B, N] moved slightly.

    An image is near a tie when a score lies within `score_margin` of its label's threshold, or,
    with top-k, when the k-th and (k+1)-th highest of the labels that pass lie within
    `gap_margin` of each other.
    """
    scores = np.asarray(scores, dtype=np.float64)
    thresholds = rule.thresholds[None, :]  # [1, N]
    near = (np.abs(scores - thresholds) <= score_margin) & np.isfinite(thresholds)  # [B, N]
    out = near.any(axis=1)
    k = rule.topk
    if k is not None and k < scores.shape[1]:
        ranked = np.where(scores >= thresholds, scores, -np.inf)  # [B, N]
        kth, after = (-np.sort(-ranked, axis=1)[:, k - 1 : k + 1]).T  # [B] each
        with np.errstate(invalid="ignore"):  # -inf - -inf where fewer than k labels pass
            out |= np.isfinite(after) & (kth - after <= gap_margin)
    return out


def decide(scores: np.ndarray, rule: DecisionRule) -> list[list[tuple[str, float]]]:
    """Per image, the chosen (label, score) pairs, highest score first (ties: label order)."""
    scores = np.asarray(scores, dtype=np.float64)
    mask = select(scores, rule)
    out = []
    for row, keep in zip(scores, mask):
        idx = np.flatnonzero(keep)
        idx = idx[np.argsort(-row[idx], kind="stable")]
        out.append([(rule.labels[i], float(row[i])) for i in idx])
    return out
