"""The generic multi-label manifest: one record per image, its labels, the seen/unseen split.

On disk a manifest is a JSON Lines file (UTF-8, one JSON object per line):

    line 1, the header:
      {"format": "sigrl-manifest", "version": 1,
       "labels": ["red circle", ...],      # the label vocabulary, in column order
       "unseen": ["blue star", ...],       # subset of labels held out of training; seen = the rest
       "missing": -1,                      # target of a label that a record does not list
       "root": ".",                        # image paths are relative to this folder, which is
                                           # itself relative to the manifest file's folder
       "name": "world-train", "meta": {...}}
    every further line, one image:
      {"path": "train/000001.png",
       "targets": {"red circle": 1, "blue star": 0},   # +1 positive, -1 negative, 0 unknown
       "captions": ["a red circle and a blue star"],   # optional, for contrastive pretraining
       "meta": {...}}                                  # optional, free-form (e.g. object layout)

Only labels whose target differs from the header's `missing` value need to be listed, so a fully
annotated dataset lists its positives (missing = -1) and a single-positive one lists one label
per image (missing = 0). Targets are dense int8 rows once loaded: `Manifest.targets()`.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from sigrl.errors import SigrlError

log = logging.getLogger(__name__)

FORMAT = "sigrl-manifest"
VERSION = 1
_VALID_TARGETS = (-1, 0, 1)


@dataclass(frozen=True)
class Record:
    """One image: its path relative to the manifest root and its explicitly listed targets."""

    path: str
    targets: dict[str, int] = field(default_factory=dict)
    captions: tuple[str, ...] = ()
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Manifest:
    labels: tuple[str, ...]
    unseen: tuple[str, ...]
    root: Path
    records: list[Record]
    missing: int = -1
    name: str = ""
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.labels = tuple(self.labels)
        self.unseen = tuple(self.unseen)
        self.root = Path(self.root)
        if len(set(self.labels)) != len(self.labels):
            dupes = sorted({lab for lab in self.labels if self.labels.count(lab) > 1})
            raise SigrlError(f"manifest {self.name!r}: duplicate labels {dupes[:5]}")
        stray = set(self.unseen) - set(self.labels)
        if stray:
            raise SigrlError(f"manifest {self.name!r}: unseen labels not in the label list: {sorted(stray)[:5]}")
        if self.missing not in _VALID_TARGETS:
            raise SigrlError(f"manifest {self.name!r}: 'missing' must be -1, 0 or 1, got {self.missing!r}")

    def __len__(self) -> int:
        return len(self.records)

    @property
    def seen(self) -> tuple[str, ...]:
        unseen = set(self.unseen)
        return tuple(lab for lab in self.labels if lab not in unseen)

    def targets(self, labels: Sequence[str] | None = None) -> np.ndarray:
        """Dense targets [n_images, n_labels] int8 in {+1, -1, 0}, columns in `labels` order."""
        labels = self.labels if labels is None else tuple(labels)
        unknown = set(labels) - set(self.labels)
        if unknown:
            raise SigrlError(f"manifest {self.name!r} has no labels {sorted(unknown)[:5]}")
        column = {lab: j for j, lab in enumerate(labels)}
        out = np.full((len(self.records), len(labels)), self.missing, dtype=np.int8)
        for i, rec in enumerate(self.records):
            for lab, value in rec.targets.items():
                j = column.get(lab)
                if j is not None:
                    out[i, j] = value
        return out

    def image_paths(self) -> list[Path]:
        return [self.root / rec.path for rec in self.records]

    def subset(self, indices: Iterable[int], name: str | None = None) -> "Manifest":
        """The same vocabulary over the records at `indices` (in that order)."""
        records = [self.records[i] for i in indices]
        return replace(self, records=records, name=self.name if name is None else name)


def _record_to_json(rec: Record) -> dict[str, Any]:
    out: dict[str, Any] = {"path": rec.path, "targets": rec.targets}
    if rec.captions:
        out["captions"] = list(rec.captions)
    if rec.meta:
        out["meta"] = rec.meta
    return out


def write_manifest(manifest: Manifest, path: str | Path) -> None:
    """Write JSON Lines with sorted keys and fixed separators, so equal manifests give equal bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        root = Path(manifest.root).resolve().relative_to(path.parent.resolve()).as_posix()
    except ValueError:
        root = str(Path(manifest.root).resolve())  # outside the manifest's folder: keep absolute
    header = {
        "format": FORMAT,
        "version": VERSION,
        "labels": list(manifest.labels),
        "unseen": list(manifest.unseen),
        "missing": manifest.missing,
        "root": root,
        "name": manifest.name,
        "meta": manifest.meta,
    }
    dump = lambda obj: json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False)  # noqa: E731
    with path.open("w", encoding="utf-8", newline="\n") as f:
        f.write(dump(header) + "\n")
        for rec in manifest.records:
            f.write(dump(_record_to_json(rec)) + "\n")


def _parse_header(line: str, path: Path) -> dict[str, Any]:
    try:
        header = json.loads(line)
    except json.JSONDecodeError as err:
        raise SigrlError(f"{path}:1: header is not valid JSON ({err})") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SigrlError(f"{path}:1: not a sigrl manifest (the first line must be a header with format={FORMAT!r})")
    if header.get("version") != VERSION:
        raise SigrlError(f"{path}: manifest version {header.get('version')!r} is not supported (expected {VERSION})")
    if not isinstance(header.get("labels"), list):
        raise SigrlError(f"{path}:1: header needs a 'labels' list")
    return header


def _parse_record(line: str, where: str, labels: set[str]) -> Record:
    try:
        obj = json.loads(line)
    except json.JSONDecodeError as err:
        raise SigrlError(f"{where}: not valid JSON ({err})") from None
    if not isinstance(obj, dict) or not isinstance(obj.get("path"), str):
        raise SigrlError(f"{where}: a record needs a string 'path'")
    targets = obj.get("targets", {})
    if not isinstance(targets, dict):
        raise SigrlError(f"{where}: 'targets' must map label names to +1/-1/0")
    for lab, value in targets.items():
        if lab not in labels:
            raise SigrlError(f"{where}: label {lab!r} is not in the header's label list")
        if value not in _VALID_TARGETS:
            raise SigrlError(f"{where}: target of {lab!r} must be 1, -1 or 0, got {value!r}")
    captions = obj.get("captions", [])
    if isinstance(captions, str):
        captions = [captions]
    return Record(path=obj["path"], targets=dict(targets), captions=tuple(captions), meta=obj.get("meta", {}))


def load_manifest(path: str | Path, require_images: bool = False) -> Manifest:
    """Read a manifest written by `write_manifest` (or by hand in the same format).

    `require_images` refuses a manifest with a header and no images (nothing to evaluate or fit).
    """
    path = Path(path)
    if not path.is_file():
        raise SigrlError(f"{path}: no such manifest file")
    with path.open(encoding="utf-8") as f:
        first = f.readline()
        if not first.strip():
            raise SigrlError(f"{path}: empty file; a manifest starts with a header line")
        header = _parse_header(first, path)
        labels = set(header["labels"])
        records = [
            _parse_record(line, f"{path}:{lineno}", labels)
            for lineno, line in enumerate(f, start=2)
            if line.strip()
        ]
    if require_images and not records:
        raise SigrlError(f"{path}: holds a header but no images; add image lines (one JSON object each) or pass another manifest")
    root = Path(header.get("root", "."))
    if not root.is_absolute():
        root = path.parent / root
    return Manifest(
        labels=tuple(header["labels"]),
        unseen=tuple(header.get("unseen", ())),
        root=root,
        records=records,
        missing=header.get("missing", -1),
        name=header.get("name", path.stem),
        meta=header.get("meta", {}),
    )
