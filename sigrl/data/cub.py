"""CUB-200-2011 attribute reader: 312 binary attributes per image as multi-labels.

Expected layout (the official archive): `CUB_200_2011/images.txt`, `train_test_split.txt`,
`images/<class>/<file>.jpg`, `attributes/image_attribute_labels.txt`, and the attribute names in
`attributes.txt`, which the archive places beside the CUB_200_2011 folder (also looked for inside
it and in its attributes/ folder). Each label row is `<image id> <attribute id> <is_present>
<certainty id> <time>`; a few rows of the real file carry extra columns, so only the first four
are read. `not_visible` says what a row with certainty 1 ("not visible") means: "negative" keeps
the annotator's is_present answer, "unknown" makes it 0.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from sigrl.data.files import drop_missing_images, read_lines
from sigrl.data.manifest import Manifest, Record
from sigrl.errors import SigrlError

log = logging.getLogger(__name__)

SPLITS = ("train", "test", "all")
NOT_VISIBLE = 1  # certainty id of "not visible" in certainties.txt


def _id_table(path: Path, what: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for lineno, line in enumerate(read_lines(path, what), start=1):
        parts = line.split(maxsplit=1)
        if len(parts) != 2 or not parts[0].isdigit():
            raise SigrlError(f"{path}:{lineno}: expected '<id> <value>', got {line!r}")
        out[int(parts[0])] = parts[1]
    return out


def _attributes_file(root: Path) -> Path:
    for candidate in (root.parent / "attributes.txt", root / "attributes.txt", root / "attributes" / "attributes.txt"):
        if candidate.is_file():
            return candidate
    raise SigrlError(f"{root}: attributes.txt not found beside or inside the CUB_200_2011 folder")


def _label_matrix(path: Path, image_row: dict[int, int], attr_col: dict[int, int], not_visible: str) -> np.ndarray:
    out = np.zeros((len(image_row), len(attr_col)), dtype=np.int8)  # 0 until a row says otherwise
    for lineno, line in enumerate(read_lines(path, "image attribute labels"), start=1):
        parts = line.split()
        if len(parts) < 4 or not all(p.isdigit() for p in parts[:4]):
            raise SigrlError(f"{path}:{lineno}: expected '<image id> <attribute id> <0|1> <certainty>', got {line!r}")
        image_id, attr_id, present, certainty = (int(p) for p in parts[:4])
        if image_id not in image_row:
            raise SigrlError(f"{path}:{lineno}: unknown image id {image_id} (not in images.txt)")
        if attr_id not in attr_col:
            raise SigrlError(f"{path}:{lineno}: unknown attribute id {attr_id} (not in attributes.txt)")
        value = 1 if present == 1 else -1
        if certainty == NOT_VISIBLE and not_visible == "unknown":
            value = 0
        out[image_row[image_id], attr_col[attr_id]] = value
    return out


def read_cub(root: str | Path, split: str = "test", not_visible: str = "negative", check_files: bool = True) -> Manifest:
    """A manifest of CUB-200-2011 images with their 312 attribute labels."""
    if split not in SPLITS:
        raise SigrlError(f"CUB split must be one of {SPLITS}, got {split!r}")
    if not_visible not in ("negative", "unknown"):
        raise SigrlError(f"not_visible must be 'negative' or 'unknown', got {not_visible!r}")
    root = Path(root)
    if (root / "CUB_200_2011" / "images.txt").is_file():
        root = root / "CUB_200_2011"
    images = _id_table(root / "images.txt", "image list")
    is_train = {k: v.strip() == "1" for k, v in _id_table(root / "train_test_split.txt", "train/test split").items()}
    attributes = _id_table(_attributes_file(root), "attribute list")
    attr_ids = sorted(attributes)
    image_ids = sorted(images)
    matrix = _label_matrix(root / "attributes" / "image_attribute_labels.txt",
                           {k: i for i, k in enumerate(image_ids)}, {k: j for j, k in enumerate(attr_ids)}, not_visible)
    labels = tuple(attributes[k] for k in attr_ids)
    unlabelled = 0
    records = []
    for image_id, row in zip(image_ids, matrix):
        if split != "all" and is_train.get(image_id, False) != (split == "train"):
            continue
        if not row.any():
            unlabelled += 1  # no attribute row at all: nothing is known about this image
            continue
        records.append(Record(path=f"images/{images[image_id]}",
                              targets={labels[j]: int(v) for j, v in enumerate(row) if v != -1}))
    if unlabelled:
        log.warning("%s: skipped %d images without any attribute label", root, unlabelled)
    records = drop_missing_images(records, root, f"CUB {split} ({root})", check_files)
    return Manifest(labels=labels, unseen=(), root=root, records=records, missing=-1,
                    name=f"cub-{split}", meta={"source": "cub-200-2011", "split": split, "not_visible": not_visible})
