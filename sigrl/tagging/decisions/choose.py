"""The decision rule a run uses, from the user's options (or the model's stored thresholds)."""

from __future__ import annotations

import os
from typing import Sequence

from sigrl.tagging.decisions.rule import DecisionRule, make_rule
from sigrl.tagging.decisions.thresholds import read_thresholds, stored_thresholds


def choose_rule(
    labels: Sequence[str],
    threshold: float | None = None,
    threshold_file: str | os.PathLike[str] | None = None,
    topk: int | None = None,
    scores_mode: str = "tags",
    model: str | os.PathLike[str] | None = None,
    default_topk: int = 5,
) -> tuple[DecisionRule, str]:
    """The decision rule from the user's options, and a phrase saying where it came from.

    With none given: the model's stored thresholds when they were fitted for exactly these labels
    (`sigrl calibrate`), else the `default_topk` best labels. Scores are relative to the label
    set, so no global threshold could be a sensible default.
    """
    per_label = read_thresholds(threshold_file, labels) if threshold_file is not None else None
    parts = []
    if threshold is None and per_label is None and topk is None:
        stored = stored_thresholds(model, labels)
        if stored is not None:
            path, per_label = stored
            parts.append(f"thresholds fitted for these labels ({path})")
        else:
            topk = min(default_topk, len(labels))
            parts.append(f"top-{topk} (default; choose with --threshold, --threshold-file or --topk)")
    else:
        if per_label is not None:
            parts.append(f"thresholds from {threshold_file} ({len(per_label)} labels)")
        if threshold is not None:
            parts.append(f"threshold {threshold:g}" + (" for the other labels" if per_label else ""))
        if topk is not None:
            parts.append(f"top-{topk}")
    return make_rule(labels, threshold, per_label, topk, scores_mode), ", ".join(parts)
