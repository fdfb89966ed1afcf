"""Derived manifests: single-positive annotations (SPML) and seeded random splits."""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Sequence

import numpy as np

from sigrl.data.manifest import Manifest, Record
from sigrl.errors import SigrlError

log = logging.getLogger(__name__)


def single_positive(manifest: Manifest, seed: int, labels: Sequence[str] | None = None) -> Manifest:
    """Keep one positive per image, chosen uniformly with a fixed seed; every other label unknown.

    `labels` restricts the choice (e.g. to the seen labels); by default all labels count. Images
    without any positive among them cannot be annotated this way and are dropped (logged).
    """
    labels = manifest.labels if labels is None else tuple(labels)
    dense = manifest.targets(labels)  # [n, L]
    rng = np.random.default_rng(seed)
    records: list[Record] = []
    dropped = 0
    for rec, row in zip(manifest.records, dense):
        pos = np.flatnonzero(row == 1)
        if pos.size == 0:
            dropped += 1
            continue
        keep = labels[int(pos[rng.integers(pos.size)])]
        records.append(replace(rec, targets={keep: 1}))
    if dropped:
        log.warning("single_positive: dropped %d of %d images with no positive label", dropped, len(manifest))
    meta = dict(manifest.meta, single_positive_seed=seed, dropped_without_positive=dropped)
    return replace(manifest, records=records, missing=0, name=f"{manifest.name}-spml", meta=meta)


def random_split(manifest: Manifest, fractions: Sequence[float], seed: int) -> list[Manifest]:
    """Disjoint seeded random parts with the given fractions (e.g. (0.8, 0.2) for train/val)."""
    if not fractions or any(f <= 0 for f in fractions) or abs(sum(fractions) - 1.0) > 1e-6:
        raise SigrlError(f"split fractions must be positive and sum to 1, got {list(fractions)}")
    order = np.random.default_rng(seed).permutation(len(manifest))
    bounds = np.round(np.cumsum([0.0, *fractions]) * len(manifest)).astype(int)
    return [
        manifest.subset(sorted(order[a:b].tolist()), name=f"{manifest.name}-part{i}")
        for i, (a, b) in enumerate(zip(bounds[:-1], bounds[1:]))
    ]
