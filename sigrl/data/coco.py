"""MS-COCO 2014 reader: `annotations/instances_{train,val}2014.json` + `{train,val}2014/*.jpg`.

Labels are the 80 category names in category-id order; an image is positive for every category
with at least one instance annotation (crowd regions included) and negative for the rest. Images
without any annotation stay in, all negative (about 1% of COCO), and are counted in the log.
Annotations naming an unknown image or category id raise a SigrlError: they mean a damaged or
mismatched annotation file, and guessing would corrupt the labels silently.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

from sigrl.data.files import drop_missing_images
from sigrl.data.manifest import Manifest, Record
from sigrl.errors import SigrlError

log = logging.getLogger(__name__)

SPLITS = ("train2014", "val2014")


def _load_json(path: Path) -> dict:
    if not path.is_file():
        raise SigrlError(f"{path}: missing COCO annotation file; extract annotations_trainval2014.zip into the root")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise SigrlError(f"{path}: not valid JSON ({err}); re-extract the annotation file") from None
    for key in ("images", "annotations", "categories"):
        if not isinstance(data.get(key), list):
            raise SigrlError(f"{path}: no '{key}' list; this is not a COCO instances file")
    return data


def read_coco(root: str | Path, split: str = "val2014", check_files: bool = True) -> Manifest:
    """A manifest of one COCO 2014 split (`root` holds `annotations/` and the image folders)."""
    if split not in SPLITS:
        raise SigrlError(f"COCO split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    ann_path = root / "annotations" / f"instances_{split}.json"
    data = _load_json(ann_path)
    categories = sorted(data["categories"], key=lambda c: c["id"])
    name_of = {c["id"]: c["name"] for c in categories}
    file_of = {img["id"]: img["file_name"] for img in data["images"]}
    positives: dict[int, set[str]] = {image_id: set() for image_id in file_of}
    for k, ann in enumerate(data["annotations"]):
        cat, image_id = ann.get("category_id"), ann.get("image_id")
        if cat not in name_of:
            raise SigrlError(f"{ann_path}: annotation #{k} (id {ann.get('id')}) has unknown category_id {cat!r}")
        if image_id not in positives:
            raise SigrlError(f"{ann_path}: annotation #{k} (id {ann.get('id')}) refers to unknown image_id {image_id!r}")
        positives[image_id].add(name_of[cat])
    empty = sum(1 for labs in positives.values() if not labs)
    if empty:
        log.info("%s: %d images have no annotation and are all-negative", ann_path, empty)
    records = [
        Record(path=f"{split}/{file_of[image_id]}", targets={lab: 1 for lab in sorted(labs)}, meta={"coco_id": image_id})
        for image_id, labs in sorted(positives.items())
    ]
    records = drop_missing_images(records, root, str(ann_path), check_files)
    return Manifest(labels=tuple(name_of[c["id"]] for c in categories), unseen=(), root=root,
                    records=records, missing=-1, name=f"coco-{split}", meta={"source": "coco2014", "split": split})
