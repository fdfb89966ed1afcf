"""The manifest format: round trip, dense targets, and clear errors on malformed files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from sigrl.data.manifest import Manifest, Record, load_manifest, write_manifest
from sigrl.data.sampling import random_split, single_positive
from sigrl.errors import SigrlError


def _manifest(root: Path) -> Manifest:
    return Manifest(
        labels=("cat", "dog", "car"), unseen=("car",), root=root, missing=-1, name="toy",
        records=[
            Record("a.png", {"cat": 1}, ("a cat",)),
            Record("b.png", {"cat": 1, "dog": 1, "car": 0}),
            Record("c.png", {}),
            Record("d.png", {"car": 1, "dog": 1}),
        ],
    )


def test_round_trip_and_dense_targets(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "m.jsonl"
    write_manifest(_manifest(tmp_path), path)
    back = load_manifest(path)
    assert back.labels == ("cat", "dog", "car") and back.unseen == ("car",) and back.seen == ("cat", "dog")
    assert back.root.resolve() == tmp_path.resolve()
    assert back.image_paths()[1].resolve() == (tmp_path / "b.png").resolve()
    assert back.records[0].captions == ("a cat",)
    expected = np.array([[1, -1, -1], [1, 1, 0], [-1, -1, -1], [-1, 1, 1]], dtype=np.int8)
    np.testing.assert_array_equal(back.targets(), expected)
    np.testing.assert_array_equal(back.targets(["car", "cat"]), expected[:, [2, 0]])
    write_manifest(back, tmp_path / "sub" / "again.jsonl")
    assert (tmp_path / "sub" / "again.jsonl").read_bytes() == path.read_bytes()


@pytest.mark.parametrize(
    "line, message",
    [
        ('{"path": "x.png", "targets": {"horse": 1}}', "not in the header"),
        ('{"path": "x.png", "targets": {"cat": 2}}', "must be 1, -1 or 0"),
        ('{"targets": {}}', "string 'path'"),
        ("{not json", "not valid JSON"),
    ],
)
def test_malformed_records_name_the_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "m.jsonl"
    header = {"format": "sigrl-manifest", "version": 1, "labels": ["cat", "dog"], "unseen": []}
    path.write_text(json.dumps(header) + "\n" + '{"path": "ok.png"}\n' + line + "\n")
    with pytest.raises(SigrlError, match=message) as err:
        load_manifest(path)
    assert f"{path}:3" in str(err.value)


def test_header_errors(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    path.write_text('{"path": "a.png"}\n')
    with pytest.raises(SigrlError, match="not a sigrl manifest"):
        load_manifest(path)
    with pytest.raises(SigrlError, match="no such manifest"):
        load_manifest(tmp_path / "absent.jsonl")
    with pytest.raises(SigrlError, match="unseen labels not in"):
        Manifest(labels=("a",), unseen=("b",), root=tmp_path, records=[])


def test_single_positive_keeps_one_true_positive(tmp_path: Path) -> None:
    full = _manifest(tmp_path)
    spml = single_positive(full, seed=3)
    assert len(spml) == 3  # c.png has no positive and is dropped
    assert spml.missing == 0
    dense, truth = spml.targets(), full.subset([0, 1, 3]).targets()
    assert ((dense == 1).sum(1) == 1).all() and ((dense == -1).sum() == 0)
    assert (truth[dense == 1] == 1).all()  # the kept label is a real positive
    np.testing.assert_array_equal(single_positive(full, seed=3).targets(), dense)  # same seed, same choice
    seen_only = single_positive(full, seed=0, labels=full.seen)
    assert all(set(r.targets) <= {"cat", "dog"} for r in seen_only.records)


def test_single_positive_choices_spread_over_positives(tmp_path: Path) -> None:
    many = Manifest(labels=("a", "b"), unseen=(), root=tmp_path,
                    records=[Record(f"{i}.png", {"a": 1, "b": 1}) for i in range(400)])
    picked = single_positive(many, seed=0).targets()[:, 0] == 1
    assert 150 < picked.sum() < 250  # uniform choice between the two positives


def test_random_split_is_disjoint_and_seeded(tmp_path: Path) -> None:
    many = Manifest(labels=("a",), unseen=(), root=tmp_path, records=[Record(f"{i}.png") for i in range(10)])
    train, val = random_split(many, (0.8, 0.2), seed=1)
    assert len(train) == 8 and len(val) == 2
    assert not {r.path for r in train.records} & {r.path for r in val.records}
    again = random_split(many, (0.8, 0.2), seed=1)[1]
    assert [r.path for r in again.records] == [r.path for r in val.records]
    with pytest.raises(SigrlError):
        random_split(many, (0.5, 0.2), seed=1)
