"""One output record per input image, whatever the output format.

    {"path": str, "tags": [{"label": str, "score": float}, ...], "scores": [float, ...] | null,
     "status": "ok" | "error", "error": str | null}

`scores` holds every label's score in label order (the order is in the run's metadata sidecar)
when the run asked for `--scores all`, else null. Scores keep 6 significant digits: enough to
rank and threshold, and it keeps files small.
"""

from __future__ import annotations

import math
import os
from typing import Sequence, TypedDict

import numpy as np

from sigrl.tagging.decisions import DecisionRule, decide


class Tag(TypedDict):
    label: str
    score: float


class Record(TypedDict):
    path: str
    tags: list[Tag]
    scores: list[float | None] | None
    status: str
    error: str | None


def round_score(value: float) -> float | None:
    """6 significant digits; None for NaN/inf, which JSON cannot hold."""
    value = float(value)
    return float(f"{value:.6g}") if math.isfinite(value) else None


def ok_record(path: str | os.PathLike[str], tags: Sequence[tuple[str, float]], scores: Sequence[float] | None = None) -> Record:
    return Record(
        path=os.fspath(path),
        tags=[Tag(label=label, score=round_score(score)) for label, score in tags],
        scores=None if scores is None else [round_score(s) for s in scores],
        status="ok",
        error=None,
    )


def error_record(path: str | os.PathLike[str], reason: str) -> Record:
    return Record(path=os.fspath(path), tags=[], scores=None, status="error", error=reason)


def batch_records(
    paths: Sequence[str | os.PathLike[str]],
    scores: np.ndarray,
    rule: DecisionRule,
    failures: Sequence[tuple[str | os.PathLike[str], str]] = (),
) -> list[Record]:
    """Records for one batch: scores [b, N] row i belongs to paths[i]; then one per failure."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(paths) != scores.shape[0]:
        raise ValueError(f"{len(paths)} paths but {scores.shape[0]} score rows")
    chosen = decide(scores, rule) if len(paths) else []
    keep_all = rule.scores_mode == "all"
    records = [ok_record(p, tags, row if keep_all else None) for p, tags, row in zip(paths, chosen, scores)]
    records.extend(error_record(p, reason) for p, reason in failures)
    return records
