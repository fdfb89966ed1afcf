"""Pascal VOC 2012 reader: `ImageSets/Main/{class}_{split}.txt` + `JPEGImages/{id}.jpg`.

Each class file lists every image of the split with 1 (present), -1 (absent) or 0 (present but
only as "difficult" objects). Difficult-only labels become 0 (unknown), so they count neither as
positive nor as negative in AP. All 20 class files must list the same images.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sigrl.data.files import drop_missing_images, read_lines
from sigrl.data.manifest import Manifest, Record
from sigrl.errors import SigrlError

log = logging.getLogger(__name__)

CLASSES = (
    "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
    "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train", "tvmonitor",
)
SPLITS = ("train", "val", "trainval")


def _find_root(root: Path) -> Path:
    for candidate in (root, root / "VOC2012", root / "VOCdevkit" / "VOC2012"):
        if (candidate / "ImageSets" / "Main").is_dir():
            return candidate
    raise SigrlError(f"{root}: no ImageSets/Main folder; point the root at VOCdevkit/VOC2012")


def _read_class_file(path: Path) -> dict[str, int]:
    values: dict[str, int] = {}
    for lineno, line in enumerate(read_lines(path, "VOC class list"), start=1):
        parts = line.split()
        if len(parts) != 2 or parts[1] not in ("1", "-1", "0"):
            raise SigrlError(f"{path}:{lineno}: expected '<image id> <1|-1|0>', got {line!r}")
        values[parts[0]] = int(parts[1])
    return values


def read_voc(root: str | Path, split: str = "val", check_files: bool = True) -> Manifest:
    """A manifest of one VOC 2012 classification split."""
    if split not in SPLITS:
        raise SigrlError(f"VOC split must be one of {SPLITS}, got {split!r}")
    base = _find_root(Path(root))
    main = base / "ImageSets" / "Main"
    per_class = {cls: _read_class_file(main / f"{cls}_{split}.txt") for cls in CLASSES}
    ids = list(per_class[CLASSES[0]])
    for cls, values in per_class.items():
        if set(values) != set(ids):
            odd = sorted(set(values) ^ set(ids))[:3]
            raise SigrlError(f"{main / f'{cls}_{split}.txt'}: lists different images than {CLASSES[0]}_{split}.txt (e.g. {odd})")
    records = [
        Record(path=f"JPEGImages/{image_id}.jpg",
               targets={cls: per_class[cls][image_id] for cls in CLASSES if per_class[cls][image_id] != -1})
        for image_id in ids
    ]
    records = drop_missing_images(records, base, str(main), check_files)
    return Manifest(labels=CLASSES, unseen=(), root=base, records=records, missing=-1,
                    name=f"voc2012-{split}", meta={"source": "voc2012", "split": split, "difficult": "unknown"})
