"""`sigrl data ...` through the Typer app of the console script (in-process, so it stays fast)."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sigrl.cli.main import app
from sigrl.data.manifest import load_manifest
from sigrl.errors import SigrlError

runner = CliRunner()


def test_synth_then_single_positive(tmp_path: Path) -> None:
    out = runner.invoke(app, ["data", "synth", "--out", str(tmp_path / "w"), "--seed", "3", "--train", "5",
                              "--val", "0", "--test", "3", "--workers", "1"])
    assert out.exit_code == 0, out.output
    assert "8 images in" in out.output
    assert sorted(p.name for p in (tmp_path / "w").glob("*.jsonl")) == ["test.jsonl", "train.jsonl"]
    spml = runner.invoke(app, ["data", "single-positive", str(tmp_path / "w" / "train.jsonl"),
                               "--out", str(tmp_path / "sp.jsonl"), "--seed", "1", "--seen-only"])
    assert spml.exit_code == 0, spml.output
    assert json.loads(spml.output)["images"] == 5
    derived = load_manifest(tmp_path / "sp.jsonl")
    assert ((derived.targets() == 1).sum(1) == 1).all() and derived.missing == 0
    assert set(derived.targets(derived.unseen).ravel()) == {0}  # --seen-only never picks an unseen label
    assert derived.image_paths()[0].is_file()  # the root still points at the world's images


def test_convert_raises_a_clear_error_for_a_wrong_root(tmp_path: Path) -> None:
    out = runner.invoke(app, ["data", "convert", "voc2012", str(tmp_path), "--out", str(tmp_path / "m.jsonl")])
    assert isinstance(out.exception, SigrlError)  # main() turns it into one stderr line and exit 2
    assert "ImageSets/Main" in str(out.exception)
    assert not (tmp_path / "m.jsonl").exists()



def test_synth_refuses_a_non_empty_folder_unless_overwrite(tmp_path: Path) -> None:
    world = tmp_path / "w"
    args = ["data", "synth", "--out", str(world), "--seed", "3", "--val", "0", "--workers", "1"]
    assert runner.invoke(app, [*args, "--train", "3", "--test", "2"]).exit_code == 0
    before = sorted(p.relative_to(world) for p in world.rglob("*"))
    again = runner.invoke(app, [*args, "--train", "2", "--test", "0"])
    assert isinstance(again.exception, SigrlError) and "--overwrite" in str(again.exception)
    assert sorted(p.relative_to(world) for p in world.rglob("*")) == before
    replaced = runner.invoke(app, [*args, "--train", "2", "--test", "0", "--overwrite"])
    assert replaced.exit_code == 0, replaced.output
    assert sorted(p.name for p in world.glob("*.jsonl")) == ["train.jsonl"]  # no stale test split
    assert len(list((world / "images").rglob("*.png"))) == 2
