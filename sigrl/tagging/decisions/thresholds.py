"""Per-label thresholds: read (TSV or JSON), written, fitted on a labelled set, and found beside a model.

Scores are normalised over the label set being scored, so thresholds are only valid for the label
set, prompt and model they were fitted with. A file records those in `#` comment lines; `sigrl tag`
uses a model's stored thresholds by default only when they cover exactly the labels it is given.
"""

from __future__ import annotations

import json
import logging
import math
import os
from pathlib import Path
from typing import Sequence

import numpy as np

from sigrl.atomic import write_text_atomic
from sigrl.errors import SigrlError

log = logging.getLogger(__name__)

THRESHOLDS_NAME = "thresholds.tsv"


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


def thresholds_path_for(model: str | os.PathLike[str] | None) -> Path | None:
    """Where a model's fitted thresholds live: `<checkpoint stem>.thresholds.tsv` beside a
    checkpoint, `thresholds.tsv` inside an export directory; None for names and specs."""
    if model is None:
        return None
    path = Path(model)
    if path.is_dir():
        return path / THRESHOLDS_NAME
    if path.is_file():
        return path.with_name(path.stem + "." + THRESHOLDS_NAME)
    return None


def stored_thresholds(model: str | os.PathLike[str] | None, labels: Sequence[str]) -> tuple[Path, dict[str, float]] | None:
    """The model's stored thresholds if they exist and cover exactly `labels`, else None."""
    path = thresholds_path_for(model)
    if path is None or not path.is_file():
        return None
    try:
        values = read_thresholds(path, labels)
    except SigrlError as err:
        log.info("not using %s: %s", path, err)
        return None
    if set(values) != set(labels):
        log.info("not using %s: fitted for another label set", path)
        return None
    return path, values
