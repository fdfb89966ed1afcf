"""Image-caption pairs for contrastive pretraining, from any caption manifest.

Accepted inputs (several may be combined):
- a sigrl manifest (.jsonl) whose records carry `captions` (the world writes three per image);
- a CSV or TSV file with a header naming an image column (`filepath`, `path` or `image`) and a
  caption column (`title`, `caption` or `text`), paths relative to the file's folder. This is the
  layout open_clip's own training scripts read.
Records without any caption are skipped and counted in the log.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from sigrl.data.manifest import load_manifest
from sigrl.errors import SigrlError

log = logging.getLogger(__name__)

_IMAGE_COLUMNS = ("filepath", "path", "image")
_CAPTION_COLUMNS = ("title", "caption", "text")


@dataclass
class CaptionSet:
    image_paths: list[Path]
    captions: list[tuple[str, ...]]  # one or more captions per image
    # What sigrl manifests add (None for caption tables): +1 labels per image and the scene's
    # object layout, used by the label loss and by hard-negative captions.
    positives: list[tuple[str, ...]] | None = None
    layouts: list[dict[str, Any]] | None = None

    def __len__(self) -> int:
        return len(self.image_paths)


def _from_manifest(path: Path, label_prompt: str | None = None) -> CaptionSet:
    manifest = load_manifest(path)
    records = manifest.records
    if label_prompt is not None:  # one more caption per positive label, in the prompt's words
        targets = manifest.targets()  # [n, L]
        extra = [tuple(label_prompt.format(label=lab) for lab, t in zip(manifest.labels, row) if t == 1)
                 for row in targets]
        captions = [tuple(rec.captions or ()) + more for rec, more in zip(records, extra)]
    else:
        captions = [tuple(rec.captions or ()) for rec in records]
    keep = [i for i, c in enumerate(captions) if c]
    skipped = len(manifest) - len(keep)
    if skipped:
        log.warning("%s: skipped %d records without captions", path, skipped)
    paths = manifest.image_paths()
    return CaptionSet([paths[i] for i in keep], [captions[i] for i in keep],
                      positives=[tuple(lab for lab, v in records[i].targets.items() if v == 1) for i in keep],
                      layouts=[records[i].meta for i in keep])


def _pick(header: Sequence[str], names: Sequence[str], path: Path, what: str) -> str:
    for name in names:
        if name in header:
            return name
    raise SigrlError(f"{path}: no {what} column; name one of {list(names)} in the header line")


def _from_table(path: Path) -> CaptionSet:
    delimiter = "\t" if path.suffix == ".tsv" else ","
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f, delimiter=delimiter)
        header = reader.fieldnames or []
        image_col = _pick(header, _IMAGE_COLUMNS, path, "image path")
        text_col = _pick(header, _CAPTION_COLUMNS, path, "caption")
        images: list[Path] = []
        captions: list[tuple[str, ...]] = []
        skipped = 0
        for row in reader:
            text = (row.get(text_col) or "").strip()
            if not row.get(image_col) or not text:
                skipped += 1
                continue
            images.append(path.parent / row[image_col])
            captions.append((text,))
    if skipped:
        log.warning("%s: skipped %d rows without an image path or caption", path, skipped)
    return CaptionSet(images, captions)


def load_captions(paths: Sequence[str | Path], label_prompt: str | None = None) -> CaptionSet:
    """All image-caption pairs of the given files, in order.

    label_prompt: for sigrl manifests, also caption each image with this template ("There is a
    {label} in the scene") once per positive label. A scene caption can be matched by colour and
    object count alone; a one-label caption cannot, which is what makes a CLIP learn shape here.
    """
    parts = []
    for raw in paths:
        path = Path(raw)
        if not path.is_file():
            raise SigrlError(f"{path}: no such caption manifest")
        parts.append(_from_table(path) if path.suffix in (".csv", ".tsv") else _from_manifest(path, label_prompt))
    annotated = all(part.positives is not None for part in parts)  # label facts only when every file has them
    out = CaptionSet(
        [p for part in parts for p in part.image_paths], [c for part in parts for c in part.captions],
        positives=[x for part in parts for x in part.positives or ()] if annotated else None,
        layouts=[x for part in parts for x in part.layouts or ()] if annotated else None,
    )
    if not out.image_paths:
        raise SigrlError(f"no image-caption pairs in {[str(p) for p in paths]}; the files need captions")
    return out
