"""Per-label thresholds fitted on a labelled manifest, and where a model keeps them.

Scores are normalised over the label set being scored (see DESIGN: local and global scores are
L2-normalised across the N labels), so thresholds are only valid for the label set, prompt and
model they were fitted with. The file records those in `#` comment lines; `sigrl tag` uses a
model's stored thresholds by default only when they cover exactly the labels it is given.

Images are scored through the same runner, decoder and preprocessing as `sigrl tag`, so the fitted
thresholds apply to what tagging will see (same backend and precision).
"""

from __future__ import annotations

import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sigrl.decode import DecodeOptions
from sigrl.errors import SigrlError
from sigrl.tagging.decisions.thresholds import fit_thresholds, thresholds_path_for, write_thresholds
from sigrl.tagging.scoring.pipeline import iter_batches

log = logging.getLogger(__name__)


@dataclass
class Calibration:
    labels: list[str]
    thresholds: np.ndarray  # [N]
    f1: np.ndarray  # [N] best F1 per label on the manifest
    positives: np.ndarray  # [N] positive images per label
    n_images: int
    failures: list[tuple[str, str]]  # images that could not be decoded (left out of the fit)

    @property
    def macro_f1(self) -> float:
        has = self.positives > 0
        return float(self.f1[has].mean()) if has.any() else 0.0


def default_thresholds_path(model: str | os.PathLike[str]) -> Path:
    """Where `sigrl calibrate` writes without --out: next to the model, but only where that place is
    the user's. Thresholds beside the embedded model would change `sigrl tag`'s default for every
    user of the install, so they (and unwritable places) need an explicit --out."""
    path = thresholds_path_for(model)
    if path is None:
        raise SigrlError(f"{model} is not a file or export directory, so there is no place next to it; pass --out FILE.tsv")
    package = Path(__file__).resolve().parents[1]
    if path.resolve().is_relative_to(package):
        raise SigrlError(
            f"{model} belongs to the sigrl install: thresholds next to it would change `sigrl tag`'s default "
            "for every user of this install. Pass --out FILE.tsv, then tag with --threshold-file FILE.tsv"
        )
    if not os.access(path.parent, os.W_OK):
        raise SigrlError(f"{path.parent} is not writable; pass --out FILE.tsv somewhere you can write")
    return path


def score_images(
    runner: Any, paths: Sequence[Path], labels: Sequence[str], batch_size: int = 8, workers: int = 2,
    decoding: DecodeOptions = DecodeOptions(),
) -> tuple[np.ndarray, np.ndarray, list[tuple[str, str]]]:
    """Scores [M, N] (NaN rows for failed images), an ok mask [M], and the failures."""
    rows: dict[str, list[int]] = defaultdict(list)
    for i, p in enumerate(paths):
        rows[os.fspath(p)].append(i)
    scores = np.full((len(paths), len(labels)), np.nan, dtype=np.float32)  # [M, N]
    ok = np.zeros(len(paths), dtype=bool)
    failures: list[tuple[str, str]] = []
    step = max(1, min(batch_size, runner.max_batch(len(labels))))
    for batch in iter_batches(paths, runner.preprocess, batch_size=step, workers=workers, decoding=decoding):
        if batch.paths:
            out = runner.infer(batch.images, list(labels))  # [b, N]
            for p, row in zip(batch.paths, out):
                i = rows[os.fspath(p)].pop(0)
                scores[i], ok[i] = row, True
        for p, reason in batch.failures:
            rows[os.fspath(p)].pop(0)
            failures.append((os.fspath(p), reason))
    return scores, ok, failures


def calibrate(
    runner: Any, manifest: Any, labels: Sequence[str] | None = None, batch_size: int = 8, workers: int = 2,
) -> Calibration:
    """Fits one threshold per label maximising that label's F1 over the manifest's images.

    Targets of 0 (unknown) are ignored; images that fail to decode are left out and reported.
    """
    labels = list(labels) if labels is not None else list(manifest.labels)
    targets = manifest.targets(labels)  # [M, N] in {+1, -1, 0}
    scores, ok, failures = score_images(runner, manifest.image_paths(), labels, batch_size, workers)
    if not ok.any():
        raise SigrlError(f"manifest {manifest.name!r}: none of its {len(ok)} images could be read; check its root folder")
    known = (targets != 0) & ok[:, None]
    thresholds, f1 = fit_thresholds(np.nan_to_num(scores, nan=-np.inf), targets > 0, known)
    positives = ((targets > 0) & known).sum(axis=0)
    return Calibration(labels, thresholds, f1, positives, int(ok.sum()), failures)


def write_calibration(path: str | os.PathLike[str], result: Calibration, about: dict[str, Any]) -> Path:
    """`label<TAB>threshold` lines (what --threshold-file reads) under `# key: value` comments."""
    summary = f"{result.n_images}, macro F1 over labels with positives: {result.macro_f1:.4f}"
    return write_thresholds(path, result.labels, result.thresholds, **about, images=summary)
