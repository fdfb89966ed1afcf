"""Each real-dataset reader on a small fixture written in that dataset's on-disk layout."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from sigrl.data.coco import read_coco
from sigrl.data.cub import read_cub
from sigrl.data.nuswide import read_nuswide
from sigrl.data.readers import read_dataset
from sigrl.data.voc import CLASSES, read_voc
from sigrl.errors import SigrlError


def _touch(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\xff\xd8\xff")  # readers check existence, they do not decode


# --- MS-COCO 2014 -------------------------------------------------------------------------------

def _coco(root: Path, extra_annotation: dict | None = None) -> None:
    images = [{"id": 9, "file_name": "COCO_val2014_000000000009.jpg"},
              {"id": 25, "file_name": "COCO_val2014_000000000025.jpg"},
              {"id": 30, "file_name": "COCO_val2014_000000000030.jpg"},
              {"id": 42, "file_name": "COCO_val2014_000000000042.jpg"}]
    categories = [{"id": 18, "name": "dog", "supercategory": "animal"},
                  {"id": 1, "name": "person", "supercategory": "person"},
                  {"id": 3, "name": "car", "supercategory": "vehicle"}]
    annotations = [{"id": 1, "image_id": 9, "category_id": 1, "iscrowd": 0},
                   {"id": 2, "image_id": 9, "category_id": 18, "iscrowd": 0},
                   {"id": 3, "image_id": 9, "category_id": 1, "iscrowd": 1},
                   {"id": 4, "image_id": 25, "category_id": 3, "iscrowd": 0},
                   {"id": 5, "image_id": 42, "category_id": 18, "iscrowd": 0}]
    if extra_annotation:
        annotations.append(extra_annotation)
    (root / "annotations").mkdir(parents=True, exist_ok=True)
    (root / "annotations" / "instances_val2014.json").write_text(
        json.dumps({"images": images, "annotations": annotations, "categories": categories}))
    for img in images[:3]:  # image 42's file is missing
        _touch(root / "val2014" / img["file_name"])


def test_coco(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _coco(tmp_path)
    with caplog.at_level(logging.INFO):
        m = read_coco(tmp_path, "val2014")
    assert m.labels == ("person", "car", "dog")  # category-id order
    assert [r.path for r in m.records] == [
        "val2014/COCO_val2014_000000000009.jpg", "val2014/COCO_val2014_000000000025.jpg",
        "val2014/COCO_val2014_000000000030.jpg"]
    np.testing.assert_array_equal(m.targets(), [[1, -1, 1], [-1, 1, -1], [-1, -1, -1]])
    assert "skipped 1 of 4 images" in caplog.text and "1 images have no annotation" in caplog.text
    assert all(p.is_file() for p in m.image_paths())


@pytest.mark.parametrize("bad, message", [
    ({"id": 99, "image_id": 9, "category_id": 91}, "unknown category_id 91"),
    ({"id": 99, "image_id": 77, "category_id": 1}, "unknown image_id 77"),
])
def test_coco_malformed(tmp_path: Path, bad: dict, message: str) -> None:
    _coco(tmp_path, bad)
    with pytest.raises(SigrlError, match=message) as err:
        read_coco(tmp_path, "val2014")
    assert "instances_val2014.json" in str(err.value)


def test_coco_missing_annotation_file(tmp_path: Path) -> None:
    with pytest.raises(SigrlError, match="missing COCO annotation file"):
        read_coco(tmp_path, "train2014")


# --- Pascal VOC 2012 ----------------------------------------------------------------------------

def _voc(base: Path, ids: list[str], values: dict[str, list[int]], bad_line: str | None = None) -> None:
    main = base / "VOCdevkit" / "VOC2012" / "ImageSets" / "Main"
    main.mkdir(parents=True)
    for cls in CLASSES:
        rows = [f"{i} {v:2d}" for i, v in zip(ids, values.get(cls, [-1] * len(ids)))]
        if bad_line and cls == "dog":
            rows.append(bad_line)
        (main / f"{cls}_val.txt").write_text("\n".join(rows) + "\n")
    for image_id in ids[:-1]:  # the last image's file is missing
        _touch(base / "VOCdevkit" / "VOC2012" / "JPEGImages" / f"{image_id}.jpg")


def test_voc(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    ids = ["2008_000002", "2008_000003", "2008_000007", "2008_000008"]
    _voc(tmp_path, ids, {"dog": [1, -1, 0, 1], "person": [1, 1, -1, -1], "cat": [-1, 0, 1, -1]})
    with caplog.at_level(logging.WARNING):
        m = read_voc(tmp_path, "val")  # the reader finds VOCdevkit/VOC2012 itself
    assert m.labels == CLASSES and len(m) == 3
    assert m.records[0].path == "JPEGImages/2008_000002.jpg"
    dense = m.targets(["dog", "person", "cat", "car"])
    np.testing.assert_array_equal(dense, [[1, 1, -1, -1], [-1, 1, 0, -1], [0, -1, 1, -1]])  # difficult -> 0
    assert "skipped 1 of 4" in caplog.text


@pytest.mark.parametrize("bad, message", [("2008_000009 2", r"dog_val.txt:5: expected"),
                                          ("2008_000009 1", "lists different images")])
def test_voc_malformed(tmp_path: Path, bad: str, message: str) -> None:
    _voc(tmp_path, ["2008_000002", "2008_000003", "2008_000007", "2008_000008"], {}, bad_line=bad)
    with pytest.raises(SigrlError, match=message):
        read_voc(tmp_path, "val")


def test_voc_missing_class_file(tmp_path: Path) -> None:
    _voc(tmp_path, ["2008_000002"], {})
    (tmp_path / "VOCdevkit/VOC2012/ImageSets/Main/cat_val.txt").unlink()
    with pytest.raises(SigrlError, match="cat_val.txt: missing"):
        read_voc(tmp_path, "val")


# --- NUS-WIDE (reference 925 / 81 / 1006 layout) -----------------------------------------------

def _nuswide(root: Path, tag_rows: np.ndarray, concept_rows: np.ndarray, tags: list[str], concepts: list[str]) -> list[str]:
    (root / "NUS_WID_Tags").mkdir(parents=True)
    (root / "ImageList").mkdir()
    gt = root / "Groundtruth" / "TrainTestLabels"
    gt.mkdir(parents=True)
    (root / "Concepts81.txt").write_text("\n".join(concepts) + "\n")
    (root / "NUS_WID_Tags" / "TagList1k.txt").write_text("\n".join(tags) + "\n")
    images = [f"actor\\{i:04d}_{1000 + i}.jpg" for i in range(len(tag_rows))]
    (root / "ImageList" / "TestImagelist.txt").write_text("\r\n".join(images) + "\r\n")  # Windows paths and ends
    (root / "NUS_WID_Tags" / "Test_Tags1k.dat").write_text(
        "".join("\t".join(str(v) for v in row) + "\t\n" for row in tag_rows))  # trailing tab as in the release
    for j, c in enumerate(concepts):
        (gt / f"Labels_{c}_Test.txt").write_text("".join(f"{v}\n" for v in concept_rows[:, j]))
    for path in images[1:]:  # the first image's file is missing
        _touch(root / "Flickr" / path.replace("\\", "/"))
    return images


def test_nuswide_reference_counts(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    concepts = [f"concept{j:02d}" for j in range(81)]
    # 1000 tags, 75 of them also concepts: 925 seen + 81 unseen = 1006 labels
    tags = [f"tag{j:03d}" for j in range(925)] + concepts[:75]
    tags = tags[::2] + tags[1::2]  # interleave, so the seen columns are not a prefix
    rng = np.random.default_rng(0)
    tag_rows = (rng.random((4, 1000)) < 0.01).astype(int)
    concept_rows = (rng.random((4, 81)) < 0.05).astype(int)
    tag_rows[2, tags.index("tag007")] = 1
    concept_rows[2, 5] = 1
    _nuswide(tmp_path, tag_rows, concept_rows, tags, concepts)
    with caplog.at_level(logging.WARNING):
        m = read_nuswide(tmp_path, "Test")
    assert (len(m.seen), len(m.unseen), len(m.labels)) == (925, 81, 1006)
    assert "reference split" not in caplog.text and "skipped 1 of 4" in caplog.text
    assert m.records[0].path == "Flickr/actor/0001_1001.jpg"
    dense = m.targets()
    seen_cols = [tags.index(t) for t in m.seen]
    np.testing.assert_array_equal(dense[:, :925] == 1, tag_rows[1:, seen_cols] == 1)
    np.testing.assert_array_equal(dense[:, 925:] == 1, concept_rows[1:] == 1)
    assert dense[1, m.labels.index("tag007")] == 1 and dense[1, m.labels.index("concept05")] == 1
    assert set(np.unique(dense)) <= {-1, 1}


def test_nuswide_malformed(tmp_path: Path) -> None:
    tags, concepts = ["sky", "dog", "water"], ["dog", "cat"]
    rows = np.array([[1, 0, 1], [0, 1, 0]])
    _nuswide(tmp_path, rows, np.array([[1, 0], [0, 1]]), tags, concepts)
    m = read_nuswide(tmp_path, "Test")
    assert m.seen == ("sky", "water") and m.unseen == ("dog", "cat")
    (tmp_path / "Groundtruth/TrainTestLabels/Labels_cat_Test.txt").write_text("0\n")
    with pytest.raises(SigrlError, match="Labels_cat_Test.txt: 1 rows but the image list has 2"):
        read_nuswide(tmp_path, "Test")
    (tmp_path / "NUS_WID_Tags/Test_Tags1k.dat").write_text("1\t0\t1\t\n0\t2\t0\t\n")
    with pytest.raises(SigrlError, match=r"Test_Tags1k.dat:2: expected 3 values of 0/1"):
        read_nuswide(tmp_path, "Test")


# --- CUB-200-2011 attributes --------------------------------------------------------------------

def _cub(base: Path, label_rows: list[str]) -> Path:
    root = base / "CUB_200_2011"
    (root / "attributes").mkdir(parents=True)
    names = ["001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg",
             "001.Black_footed_Albatross/Black_Footed_Albatross_0009_34.jpg",
             "002.Laysan_Albatross/Laysan_Albatross_0002_1027.jpg",
             "002.Laysan_Albatross/Laysan_Albatross_0003_1033.jpg"]
    (root / "images.txt").write_text("".join(f"{i + 1} {n}\n" for i, n in enumerate(names)))
    (root / "train_test_split.txt").write_text("1 0\n2 1\n3 0\n4 0\n")
    (base / "attributes.txt").write_text(
        "1 has_bill_shape::curved_(up_or_down)\n2 has_bill_shape::dagger\n3 has_wing_color::blue\n")
    (root / "attributes" / "image_attribute_labels.txt").write_text("\n".join(label_rows) + "\n")
    for n in names[:2] + names[3:]:  # image 3's file is missing
        _touch(root / "images" / n)
    return root


_CUB_ROWS = [
    "1 1 1 4 3.27", "1 2 0 3 3.27", "1 3 0 1 3.27",
    "2 1 0 2 5.1", "2 2 1 4 0 5.1",  # a row with an extra column, as in the real file
    "2 3 1 3 5.1",
    "3 1 1 4 1.0", "3 2 0 4 1.0", "3 3 0 4 1.0",
]


def test_cub(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    _cub(tmp_path, _CUB_ROWS)
    with caplog.at_level(logging.WARNING):
        test = read_cub(tmp_path, "test")
    assert test.labels == ("has_bill_shape::curved_(up_or_down)", "has_bill_shape::dagger", "has_wing_color::blue")
    # image 1 is kept; image 3 lacks its file; image 4 has no attribute rows at all
    assert [r.path for r in test.records] == ["images/001.Black_footed_Albatross/Black_Footed_Albatross_0046_18.jpg"]
    np.testing.assert_array_equal(test.targets(), [[1, -1, -1]])
    assert "without any attribute label" in caplog.text and "skipped 1 of 2" in caplog.text
    train = read_cub(tmp_path / "CUB_200_2011", "train", not_visible="unknown")
    np.testing.assert_array_equal(train.targets(), [[-1, 1, 1]])
    unknown = read_cub(tmp_path, "test", not_visible="unknown")
    np.testing.assert_array_equal(unknown.targets(), [[1, -1, 0]])  # certainty 1 = not visible


@pytest.mark.parametrize("bad, message", [("1 9 1 4 1.0", "unknown attribute id 9"),
                                          ("8 1 1 4 1.0", "unknown image id 8"),
                                          ("1 x", r"image_attribute_labels.txt:10: expected")])
def test_cub_malformed(tmp_path: Path, bad: str, message: str) -> None:
    _cub(tmp_path, _CUB_ROWS + [bad])
    with pytest.raises(SigrlError, match=message):
        read_cub(tmp_path, "test")


def test_read_dataset_dispatch(tmp_path: Path) -> None:
    _coco(tmp_path)
    assert len(read_dataset("coco2014", tmp_path)) == 3
    with pytest.raises(SigrlError, match="unknown dataset kind"):
        read_dataset("imagenet", tmp_path)
