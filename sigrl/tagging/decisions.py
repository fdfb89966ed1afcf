"""From a score matrix to tags: thresholds (global and per label), top-k, and fitted thresholds.

A label is chosen for an image when its score reaches its threshold (the label's own, else the
global one) and, with top-k, when it is also among the k highest of the labels that passed.
With top-k and no threshold at all, the k highest labels are chosen.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from sigrl.atomic import write_text_atomic
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


def read_thresholds(path: str | os.PathLike[str], labels: Sequence[str]) -> dict[str, float]:
    """Per-label thresholds from `label<TAB>threshold` lines or a JSON object {label: threshold}
    (optionally under a "thresholds" key, as `write_thresholds` stores them)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise SigrlError(f"{path}: threshold file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise SigrlError(f"{path}: cannot read threshold file ({err})") from None
    if path.suffix.lower() == ".json" or text.lstrip().startswith("{"):
        values, where = _thresholds_json(path, text), {}
    else:
        values, where = _thresholds_tsv(path, text)
    known = set(labels)
    unknown = [name for name in values if name not in known]
    if unknown:
        listed = ", ".join(repr(n) + (f" (line {where[n]})" if n in where else "") for n in unknown[:10])
        raise SigrlError(
            f"{path}: labels not in the label set: {listed}. Fix the names or remove those entries"
        )
    return values


def _thresholds_json(path: Path, text: str) -> dict[str, float]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        raise SigrlError(f"{path}: not valid JSON ({err})") from None
    if isinstance(data, dict) and isinstance(data.get("thresholds"), dict):
        data = data["thresholds"]
    if not isinstance(data, dict):
        raise SigrlError(f'{path}: expected a JSON object {{"label": threshold, ...}}')
    out = {}
    for name, value in data.items():
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            raise SigrlError(f"{path}: threshold for {name!r} must be a finite number, got {value!r}")
        out[name] = float(value)
    return out


def _thresholds_tsv(path: Path, text: str) -> tuple[dict[str, float], dict[str, int]]:
    out: dict[str, float] = {}
    where: dict[str, int] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        name, tab, value = line.rstrip("\r\n").rpartition("\t")
        name = name.strip()
        try:
            threshold = float(value)
        except ValueError:
            threshold = math.nan
        if not tab or not name or not math.isfinite(threshold):
            raise SigrlError(f"{path}: line {number}: expected 'label<TAB>threshold', got {line!r}")
        if name in out:
            raise SigrlError(f"{path}: label {name!r} appears on lines {where[name]} and {number}; keep one")
        out[name], where[name] = threshold, number
    return out, where


def write_thresholds(
    path: str | os.PathLike[str], labels: Sequence[str], thresholds: np.ndarray, /, **metadata: object
) -> Path:
    """Stores thresholds as JSON ({"thresholds": {...}, **metadata}) or TSV by the extension; in a
    TSV file the metadata become `# key: value` comment lines above the `label<TAB>threshold` lines."""
    path = Path(path)
    pairs = {label: float(t) for label, t in zip(labels, np.asarray(thresholds, dtype=np.float64))}
    if path.suffix.lower() == ".json":
        text = json.dumps({"thresholds": pairs, **metadata}, indent=1, ensure_ascii=False) + "\n"
    else:
        text = "".join(f"# {key}: {value}\n" for key, value in metadata.items())
        text += "".join(f"{label}\t{t!r}\n" for label, t in pairs.items())
    return write_text_atomic(path, text)


def fit_thresholds(scores: np.ndarray, targets: np.ndarray, known: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-label thresholds maximising each label's F1 on a labelled set.

    scores [M, N]; targets [M, N] (nonzero = positive); known [M, N] bool, False where the label
    is unknown for that image (ignored). Returns (thresholds [N], best F1 [N]). Cuts are placed
    only between distinct scores, at the midpoint, so ties are never split. A label with no
    positives gets a threshold above its highest score (it is never chosen) and F1 0.
    """
    scores = np.asarray(scores, dtype=np.float64)
    positive = np.asarray(targets) > 0
    if scores.shape != positive.shape or scores.ndim != 2:
        raise ValueError(f"scores and targets must both be [M, N], got {scores.shape} and {positive.shape}")
    known = np.ones_like(positive) if known is None else np.asarray(known, dtype=bool)
    n_images, _ = scores.shape
    # Unknown entries sort last (-inf) and cuts reaching them are disallowed below.
    ranked = np.where(known, scores, -np.inf)
    order = np.argsort(-ranked, axis=0, kind="stable")  # [M, N], descending per label
    s = np.take_along_axis(ranked, order, axis=0)  # [M, N]
    tp = np.cumsum(np.take_along_axis(positive & known, order, axis=0), axis=0)  # [M, N]
    n_pos = tp[-1]  # [N]
    predicted = np.arange(1, n_images + 1)[:, None]  # [M, 1]: cut after row i keeps i+1 images
    f1 = 2.0 * tp / (predicted + n_pos[None, :])  # [M, N]
    next_s = np.vstack([s[1:], np.full((1, s.shape[1]), -np.inf)])  # [M, N]
    valid = (s > next_s) & (predicted <= known.sum(axis=0)[None, :])
    f1 = np.where(valid, f1, -1.0)
    best = np.argmax(f1, axis=0)  # [N], first (highest threshold) on ties
    cols = np.arange(s.shape[1])
    here, after = s[best, cols], next_s[best, cols]
    thresholds = np.where(np.isfinite(after), (here + after) / 2.0, here)
    best_f1 = f1[best, cols]
    none = n_pos == 0
    if none.any():
        top = np.where(known, scores, -np.inf).max(axis=0)
        thresholds[none] = np.nextafter(np.where(np.isfinite(top), top, 0.0), np.inf)[none]
        best_f1[none] = 0.0
    return thresholds, best_f1
