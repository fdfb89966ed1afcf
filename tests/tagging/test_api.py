"""The Python API (sigrl.tagging.Tagger) and the README's example of it."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest
from PIL import Image

from sigrl.errors import SigrlError
from sigrl.tagging import Tagger
from sigrl.tagging.outputs.writer import read_records

from cli_helpers import LABELS, MODEL, REPO, run_subprocess, sigrl, tag_args
from shard_helpers import image_samples, write_tar

EXAMPLES = REPO / "examples" / "images"


@pytest.fixture(scope="module")
def tagger(tmp_path_factory):
    with Tagger(model=MODEL, backend="torch", labels=LABELS, topk=2, scores="all",
                label_cache=tmp_path_factory.mktemp("cache")) as t:
        yield t


def test_tag_gives_the_cli_records_in_input_order(tmp_path, capsys, tagger):
    files = sorted(EXAMPLES.iterdir())[:5]
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    assert sigrl(capsys, *tag_args(EXAMPLES, labels, tmp_path / "t.jsonl", tmp_path / "c", "--topk", 2, "--scores", "all")).code == 0
    cli = {r["path"]: r for r in read_records(tmp_path / "t.jsonl")}
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"nope")
    inputs = [str(files[0]), bad, *files[1:]]
    records = tagger.tag(inputs)
    assert [r["path"] for r in records] == [os.fspath(p) for p in inputs]
    assert records[1]["status"] == "error" and records[1]["error"] == "not an image"
    for r in records[:1] + records[2:]:
        assert r == cli[r["path"]]
    again = tagger.tag(files[:2])  # the same open model, reused; another batch: last-digit float noise
    for r, want in zip(again, [cli[os.fspath(p)] for p in files[:2]]):
        assert [t["label"] for t in r["tags"]] == [t["label"] for t in want["tags"]]
        assert np.allclose(r["scores"], want["scores"], atol=1e-5)


def test_scores_matrix_and_in_memory_inputs(tagger):
    files = sorted(EXAMPLES.iterdir())[:3]
    scores = tagger.scores(files)
    assert scores.shape == (3, len(LABELS)) and scores.dtype == np.float32
    records = tagger.tag(files)
    assert np.allclose(scores, [r["scores"] for r in records], atol=1e-5)
    pixels = np.asarray(Image.open(files[0]).convert("RGB"))  # [H, W, 3]
    mixed = tagger.scores([pixels, Image.open(files[0]), files[0].read_bytes()])
    assert np.allclose(mixed[1], mixed[0]) and np.allclose(mixed[2], scores[0], atol=1e-6)
    assert [r["path"] for r in tagger.tag([pixels, b"x"])] == ["array[0]", "bytes[1]"]
    with pytest.raises(SigrlError, match="bytes\\[0\\]: not an image"):
        tagger.scores([b"not an image"])
    with pytest.raises(SigrlError, match="not an image path"):
        tagger.tag([3.5])


def test_run_tags_a_whole_job(tmp_path, tagger):
    tar = write_tar(tmp_path / "e.tar", image_samples(EXAMPLES)[:4])
    summary = tagger.run([tar], tmp_path / "out.jsonl")
    assert summary.tagged == 4 and [r["path"] for r in read_records(tmp_path / "out.jsonl")][0] == f"{tar}#scene-01"


def test_readme_python_example_runs():
    text = (REPO / "README.md").read_text()
    section = re.search(r"^## Shards, tables and the Python API\s*$(.*?)(?=^## )", text, re.M | re.S)
    assert section, "README.md has no 'Shards, tables and the Python API' section"
    code = re.search(r"```python\n(.*?)```", section.group(1), re.S).group(1)
    done = run_subprocess(["--help"], REPO)  # the entry point works from the repository
    assert done.returncode == 0
    import subprocess
    import sys

    ran = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert ran.returncode == 0, ran.stderr[-3000:]
    assert ran.stdout.startswith("examples/images/scene-01.png [")


def test_one_path_tensors_and_hf_dicts_are_inputs(tmp_path, tagger):
    import torch

    file = sorted(EXAMPLES.iterdir())[1]
    base = tagger.scores([file])
    one = tagger.tag(str(file))  # one input, not 40 characters
    assert [r["path"] for r in one] == [str(file)] and len(tagger.tag(file)) == 1
    assert np.allclose(tagger.scores(str(file)), base, atol=1e-6)
    pixels = np.asarray(Image.open(file).convert("RGB"))  # [H, W, 3]
    hwc = torch.from_numpy(pixels.copy())
    chw = hwc.permute(2, 0, 1)  # [H, W, 3], [3, H, W]
    by_pixels = tagger.scores([pixels])
    assert np.allclose(tagger.scores([hwc, chw, pixels.transpose(2, 0, 1)]), by_pixels, atol=1e-6)
    assert np.allclose(tagger.scores(torch.stack([chw, chw])), by_pixels, atol=1e-6)  # a batch [2, 3, H, W]
    hf = [{"bytes": file.read_bytes(), "path": "x.jpg"}, {"bytes": None, "path": os.fspath(file)}]
    records = tagger.tag(hf)
    assert [r["path"] for r in records] == ["x.jpg", os.fspath(file)] and all(r["status"] == "ok" for r in records)
    assert np.allclose(tagger.scores(hf), np.repeat(base, 2, axis=0), atol=1e-5)
    for method in (tagger.tag, tagger.scores):
        with pytest.raises(SigrlError, match="float is not an image path or image; accepted: an image path"):
            method([3.5])
        with pytest.raises(SigrlError, match="must be uint8 \\(0-255\\), got float32"):
            method([hwc.float()])
    with pytest.raises(SigrlError, match="run\\(\\) reads folders.*JpegImageFile is not one; tag\\(\\) and scores\\(\\)"):
        tagger.run([Image.open(file)], tmp_path / "o.jsonl")
    with pytest.raises(SigrlError, match="int is not an input"):
        tagger.tag(3)
    summary = tagger.run(str(file), tmp_path / "one.jsonl")  # one path, not its characters
    assert summary.tagged == 1
