"""NUS-WIDE reader in the layout of the zero-shot multi-label reference code (925 / 81 / 1006).

Expected under the root (the official NUS-WIDE downloads, extracted side by side):

    Concepts81.txt                                   the 81 human-verified concepts (unseen)
    NUS_WID_Tags/TagList1k.txt                       the 1000 most frequent Flickr tags
    NUS_WID_Tags/{Train,Test}_Tags1k.dat             one row per image, 1000 tab-separated 0/1
    ImageList/{Train,Test}Imagelist.txt              image paths such as actor\\0001_2124494179.jpg
    Groundtruth/TrainTestLabels/Labels_{concept}_{Train,Test}.txt   one 0/1 per image
    Flickr/<category>/<file>.jpg                     the images (folder name configurable)

Seen labels are the 1000 tags minus those that are also concepts (925 on the real data), in
TagList1k order; unseen labels are the 81 concepts, in Concepts81 order; together 1006 labels.
Seen targets come from the tag matrix, unseen targets from the concept ground truth; 1 becomes +1,
0 becomes -1. All files of a split must have one row per listed image.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from sigrl.data.files import drop_missing_images, read_lines
from sigrl.data.manifest import Manifest, Record
from sigrl.errors import SigrlError

log = logging.getLogger(__name__)

SPLITS = ("Train", "Test")
REFERENCE_COUNTS = (925, 81)


def _binary_rows(path: Path, width: int, rows: int) -> np.ndarray:
    """A 0/1 matrix [rows, width] from whitespace-separated text, with file:line errors."""
    lines = read_lines(path, "NUS-WIDE label file")
    if len(lines) != rows:
        raise SigrlError(f"{path}: {len(lines)} rows but the image list has {rows} images")
    out = np.zeros((rows, width), dtype=np.int8)
    for i, line in enumerate(lines):
        parts = line.split()
        if len(parts) != width or any(p not in ("0", "1") for p in parts):
            raise SigrlError(f"{path}:{i + 1}: expected {width} values of 0/1, got {len(parts)} values")
        out[i] = [int(p) for p in parts]
    return out


def read_nuswide(root: str | Path, split: str = "Test", image_dir: str = "Flickr", check_files: bool = True) -> Manifest:
    """A manifest of one NUS-WIDE split over the 925 seen tags + 81 unseen concepts."""
    if split not in SPLITS:
        raise SigrlError(f"NUS-WIDE split must be one of {SPLITS}, got {split!r}")
    root = Path(root)
    concepts = read_lines(root / "Concepts81.txt", "concept list")
    tags = read_lines(root / "NUS_WID_Tags" / "TagList1k.txt", "tag list")
    concept_set = set(concepts)
    seen_cols = [j for j, tag in enumerate(tags) if tag not in concept_set]
    seen = [tags[j] for j in seen_cols]
    if (len(seen), len(concepts)) != REFERENCE_COUNTS:
        log.warning("NUS-WIDE at %s: %d seen / %d unseen labels (the reference split has %d / %d)",
                    root, len(seen), len(concepts), *REFERENCE_COUNTS)
    images = [p.replace("\\", "/") for p in read_lines(root / "ImageList" / f"{split}Imagelist.txt", "image list")]
    tag_matrix = _binary_rows(root / "NUS_WID_Tags" / f"{split}_Tags1k.dat", len(tags), len(images))[:, seen_cols]
    gt_dir = root / "Groundtruth" / "TrainTestLabels"
    concept_matrix = np.concatenate(
        [_binary_rows(gt_dir / f"Labels_{c}_{split}.txt", 1, len(images)) for c in concepts], axis=1
    )  # [n, 81]
    labels = seen + concepts
    positives = np.concatenate([tag_matrix, concept_matrix], axis=1)  # [n, 1006]
    records = [
        Record(path=f"{image_dir}/{path}", targets={labels[j]: 1 for j in np.flatnonzero(row)})
        for path, row in zip(images, positives)
    ]
    records = drop_missing_images(records, root, f"NUS-WIDE {split} ({root})", check_files)
    return Manifest(labels=tuple(labels), unseen=tuple(concepts), root=root, records=records, missing=-1,
                    name=f"nuswide-{split.lower()}", meta={"source": "nus-wide", "split": split})
