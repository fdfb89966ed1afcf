"""The procedural world: determinism, the compositional split, scene and caption content."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from sigrl.data.manifest import load_manifest
from sigrl.data.world import SynthSpec, contact_sheet, synth
from sigrl.data.world_render import render_scene, shape_mask
from sigrl.data.world_vocab import COLOURS, SHAPES, all_labels, seen_labels, unseen_labels
from sigrl.errors import SigrlError

SIZES = {"train": 6, "val": 2, "test": 5}


def _digest(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("world")
    synth(SynthSpec(out=out, seed=7, sizes=SIZES, workers=2))
    return out


def test_same_seed_gives_identical_bytes_whatever_the_workers(world: Path, tmp_path: Path) -> None:
    synth(SynthSpec(out=tmp_path / "again", seed=7, sizes=SIZES, workers=1))
    first, second = _digest(world), _digest(tmp_path / "again")
    assert len(first) == sum(SIZES.values()) + 3  # images + three manifests
    assert first == second


def test_another_seed_gives_other_images(world: Path, tmp_path: Path) -> None:
    synth(SynthSpec(out=tmp_path / "other", seed=8, sizes={"train": 2}, workers=1))
    a = (world / "images/train/000000.png").read_bytes()
    b = (tmp_path / "other/images/train/000000.png").read_bytes()
    assert a != b


def test_compositional_split() -> None:
    labels, unseen, seen = all_labels(), set(unseen_labels()), set(seen_labels())
    assert len(labels) == 64 and len(set(labels)) == 64
    assert len(unseen) == 16 and seen | unseen == set(labels) and not seen & unseen
    seen_colours = {lab.split()[0] for lab in seen}
    seen_shapes = {lab.split()[1] for lab in seen}
    for lab in unseen:  # every part of an unseen label is shown in seen labels
        colour, shape = lab.split()
        assert colour in seen_colours and shape in seen_shapes
    for colour in COLOURS:  # and evenly: each attribute in exactly 2 unseen labels
        assert sum(lab.startswith(colour + " ") for lab in unseen) == 2
    for shape in SHAPES:
        assert sum(lab.endswith(" " + shape) for lab in unseen) == 2


def test_manifests_follow_the_split(world: Path) -> None:
    train = load_manifest(world / "train.jsonl")
    assert set(train.unseen) == set(unseen_labels())
    targets = train.targets(train.unseen)
    assert (targets == -1).all()  # unseen labels never occur in training scenes
    for rec in train.records:
        text = " ".join(rec.captions)
        assert len(rec.captions) == 3
        for lab in unseen_labels():
            colour, shape = lab.split()
            assert f"{colour} {shape}" not in text and f"{shape} that is {colour}" not in text
    test = load_manifest(world / "test.jsonl")
    dense = test.targets()
    assert dense.shape == (5, 64) and set(np.unique(dense)) <= {-1, 1}
    for rec, row in zip(test.records, dense):
        listed = {o["label"] for o in rec.meta["objects"]}
        assert listed == {test.labels[j] for j in np.flatnonzero(row == 1)}
        assert 1 <= rec.meta["n_objects"] <= 5


def test_scene_objects_stay_visible_and_captions_name_them() -> None:
    pool = [tuple(lab.split()) for lab in all_labels()]
    counts = []
    for i in range(40):
        image, objects = render_scene(64, pool, np.random.default_rng(i))
        assert image.shape == (64, 64, 3) and image.dtype == np.uint8
        assert all(o.visible >= 0.5 for o in objects)
        counts.append(len(objects))
    assert min(counts) == 1 and max(counts) >= 4


def test_every_shape_draws_a_distinct_mask() -> None:
    masks = {s: shape_mask(s, 12.0, 0.0) > 0.5 for s in SHAPES}
    areas = {s: int(m.sum()) for s, m in masks.items()}
    assert all(a > 60 for a in areas.values()), areas
    names = list(masks)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            assert (masks[a] != masks[b]).sum() > 20, (a, b)


def test_too_small_images_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SigrlError, match="image-size"):
        synth(SynthSpec(out=tmp_path, seed=0, sizes={"train": 1}, image_size=16))


def test_contact_sheet_tiles_the_first_scenes(world: Path) -> None:
    sheet = contact_sheet(load_manifest(world / "test.jsonl"), count=4, columns=2, scale=2)
    assert sheet.size[0] == 2 * (128 + 8)
    assert np.asarray(sheet).std() > 10  # scenes were pasted, not a blank page
