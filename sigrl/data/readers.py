"""One entry point over the real-dataset readers, for the CLI and for scripts."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

from sigrl.data.manifest import Manifest
from sigrl.errors import SigrlError


def _coco(root: Path, split: str | None) -> Manifest:
    from sigrl.data.coco import read_coco
    return read_coco(root, split or "val2014")


def _voc(root: Path, split: str | None) -> Manifest:
    from sigrl.data.voc import read_voc
    return read_voc(root, split or "val")


def _nuswide(root: Path, split: str | None) -> Manifest:
    from sigrl.data.nuswide import read_nuswide
    return read_nuswide(root, split or "Test")


def _cub(root: Path, split: str | None) -> Manifest:
    from sigrl.data.cub import read_cub
    return read_cub(root, split or "test")


READERS: dict[str, Callable[[Path, str | None], Manifest]] = {
    "coco2014": _coco, "voc2012": _voc, "nuswide": _nuswide, "cub": _cub,
}


def read_dataset(kind: str, root: str | Path, split: str | None = None) -> Manifest:
    """A manifest of a real dataset in its on-disk layout (split: the reader's own split names)."""
    if kind not in READERS:
        raise SigrlError(f"unknown dataset kind {kind!r}; choose one of {', '.join(READERS)}")
    return READERS[kind](Path(root), split)
