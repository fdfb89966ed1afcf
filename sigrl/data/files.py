"""Shared checks of the dataset readers: readable text files and image files that exist."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Sequence

from sigrl.data.manifest import Record
from sigrl.errors import SigrlError

log = logging.getLogger(__name__)


def read_lines(path: Path, what: str) -> list[str]:
    """Non-empty stripped lines of a text file, or a SigrlError naming the file and its role."""
    if not path.is_file():
        raise SigrlError(f"{path}: missing {what}; check that the dataset root points at the extracted archive")
    return [line.strip() for line in path.read_text(encoding="utf-8", errors="replace").splitlines() if line.strip()]


def drop_missing_images(records: Sequence[Record], root: Path, source: str, check: bool = True) -> list[Record]:
    """Records whose image file exists under `root`; the others are skipped with a logged count."""
    if not check:
        return list(records)
    kept = [rec for rec in records if (root / rec.path).is_file()]
    missing = len(records) - len(kept)
    if missing:
        example = next(rec.path for rec in records if not (root / rec.path).is_file())
        log.warning("%s: skipped %d of %d images whose file is missing (e.g. %s)", source, missing, len(records), root / example)
    if records and not kept:
        raise SigrlError(f"{source}: none of the {len(records)} image files exist under {root}; check the image folder")
    return kept
