"""`sigrl data ...` through the real console entry point."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sigrl.data.manifest import load_manifest


def _sigrl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sigrl.cli.main", *args], capture_output=True, text=True, timeout=120)


def test_synth_then_single_positive(tmp_path: Path) -> None:
    out = _sigrl("data", "synth", "--out", str(tmp_path / "w"), "--seed", "3", "--train", "5", "--val", "0",
                 "--test", "3", "--workers", "1")
    assert out.returncode == 0, out.stderr
    assert "8 images in" in out.stdout
    assert sorted(p.name for p in (tmp_path / "w").glob("*.jsonl")) == ["test.jsonl", "train.jsonl"]
    spml = _sigrl("data", "single-positive", str(tmp_path / "w" / "train.jsonl"), "--out", str(tmp_path / "sp.jsonl"),
                  "--seed", "1", "--seen-only")
    assert spml.returncode == 0, spml.stderr
    assert json.loads(spml.stdout)["images"] == 5
    derived = load_manifest(tmp_path / "sp.jsonl")
    assert ((derived.targets() == 1).sum(1) == 1).all() and derived.missing == 0
    assert derived.image_paths()[0].is_file()  # the root still points at the world's images


def test_convert_reports_a_missing_dataset_as_one_line(tmp_path: Path) -> None:
    out = _sigrl("data", "convert", "voc2012", str(tmp_path), "--out", str(tmp_path / "m.jsonl"))
    assert out.returncode == 2
    assert out.stderr.startswith("error: ") and "ImageSets/Main" in out.stderr
