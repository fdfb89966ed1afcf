"""Every command with bad arguments: exit code 2, one line on stderr, no traceback.

Exit code 1 means "some images failed" to `sigrl tag`'s callers, so a usage error must never end
with it (an uncaught exception would). The table runs in-process through `sigrl.cli.main.run`, the
console script's function; each case fails before any model work starts.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sigrl.cli.main import run
from sigrl.data.manifest import Manifest, Record, write_manifest


@pytest.fixture(scope="module")
def place(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad-args")
    images = root / "images"
    images.mkdir()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 40, 3), dtype=np.uint8)).save(images / "a.png")
    (root / "empty").mkdir()
    (root / "labels.txt").write_text("cat\ndog\n")
    (root / "file").write_text("a regular file\n")
    header_only = Manifest(labels=("cat", "dog"), unseen=(), root=root, records=[])
    write_manifest(header_only, root / "header-only.jsonl")
    missing = Manifest(labels=("cat", "dog"), unseen=(), root=root, records=[Record("gone.png", {"cat": 1})])
    write_manifest(missing, root / "missing-images.jsonl")
    _safetensors(root / "list-header.safetensors", [1, 2])
    _safetensors(root / "bad-meta.safetensors", {"__metadata__": {"sigrl": "{not json"}})
    return {"root": root, "images": images}


def _safetensors(path: Path, header: object) -> None:
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob)


def _tag(*extra: str) -> list[str]:
    return ["tag", "{images}", "--labels", "{root}/labels.txt", "--out", "{root}/out/t.jsonl", "--model", "sigrl-tiny",
            "--label-cache", "{root}/cache", *extra]


def _calibrate(*extra: str) -> list[str]:
    return ["calibrate", "--data", "{root}/missing-images.jsonl", "--model", "sigrl-tiny", "--out", "{root}/out/t.tsv", *extra]


CASES = {
    # sigrl tag
    "tag out under a file": (["tag", "{images}", "--labels", "{root}/labels.txt", "--out", "{root}/file/t.jsonl"], "is a file"),
    "tag out in /proc": (["tag", "{images}", "--labels", "{root}/labels.txt", "--out", "/proc/t.jsonl"], "cannot write in /proc"),
    "tag label cache is a file": (_tag()[:-1] + ["{root}/file"], "is a file; give a folder"),
    "tag prompt with other field": (_tag("--prompt", "a {label} {x}"), "unknown placeholder"),
    "tag prompt without label": (_tag("--prompt", "a photo"), "{label}"),
    "tag batch size 0": (_tag("--batch-size", "0"), "--batch-size"),
    "tag batch size negative": (_tag("--batch-size", "-3"), "--batch-size"),
    "tag threshold above range": (_tag("--threshold", "5"), "--threshold"),
    "tag threshold below range": (_tag("--threshold", "-2"), "--threshold"),
    "tag topk 0": (_tag("--topk", "0"), "--topk"),
    "tag workers negative": (_tag("--workers", "-1"), "--workers"),
    "tag replicas 0": (_tag("--engine", "ray", "--replicas", "0"), "--replicas"),
    "tag shard size 0": (_tag("--shard-size", "0"), "--shard-size"),
    "tag max pixels 0": (_tag("--max-pixels", "0"), "--max-pixels"),
    "tag empty folder": (["tag", "{root}/empty"] + _tag()[2:], "no images found"),
    "tag checkpoint header is a list": (_tag()[:7] + ["{root}/list-header.safetensors"] + _tag()[8:], "not a safetensors checkpoint"),
    "tag checkpoint metadata bad json": (_tag()[:7] + ["{root}/bad-meta.safetensors"] + _tag()[8:], "metadata is not a JSON object"),
    "tag missing labels option": (["tag", "{images}", "--out", "{root}/out/t.jsonl"], "Missing option"),
    "tag unknown option": (_tag("--bogus"), "No such option"),
    # sigrl calibrate
    "calibrate batch size 0": (_calibrate("--batch-size", "0"), "--batch-size"),
    "calibrate out under a file": (_calibrate()[:-2] + ["--out", "{root}/file/t.tsv"], "is a file"),
    "calibrate prompt": (_calibrate("--prompt", "{label} {y}"), "unknown placeholder"),
    "calibrate header-only manifest": (["calibrate", "--data", "{root}/header-only.jsonl", "--model", "sigrl-tiny", "--out", "{root}/out/t.tsv"], "no images"),
    # sigrl eval
    "eval limit 0": (["eval", "--checkpoint", "sigrl-tiny", "--data", "{root}/missing-images.jsonl", "--limit", "0"], "--limit"),
    "eval batch size 0": (["eval", "--checkpoint", "sigrl-tiny", "--data", "{root}/missing-images.jsonl", "--batch-size", "0"], "--batch-size"),
    "eval header-only manifest": (["eval", "--checkpoint", "sigrl-tiny", "--data", "{root}/header-only.jsonl"], "no images"),
    "eval json under a file": (["eval", "--checkpoint", "sigrl-tiny", "--data", "{root}/missing-images.jsonl", "--json", "{root}/file/r.json"], "is a file"),
    "eval checkpoint header is a list": (["eval", "--checkpoint", "{root}/list-header.safetensors", "--data", "{root}/missing-images.jsonl"], "not a safetensors checkpoint"),
    # sigrl train / pretrain
    "train lr negative": (["train", "--out", "{root}/out/run", "--data", "{root}/missing-images.jsonl", "--init", "sigrl-tiny", "--lr", "-1"], "--lr"),
    "train batch size 0": (["train", "--out", "{root}/out/run", "--data", "{root}/missing-images.jsonl", "--init", "sigrl-tiny", "--batch-size", "0"], "--batch-size"),
    "train epochs 0": (["train", "--out", "{root}/out/run", "--data", "{root}/missing-images.jsonl", "--init", "sigrl-tiny", "--epochs", "0", "--head-steps", "0"], "--epochs"),
    "train out under a file": (["train", "--out", "{root}/file/run", "--data", "{root}/missing-images.jsonl", "--init", "sigrl-tiny"], "is a file"),
    "train without data": (["train", "--out", "{root}/out/run"], "--data and --init"),
    "pretrain steps 0": (["pretrain", "--data", "{root}/missing-images.jsonl", "--out", "{root}/out/c.safetensors", "--steps", "0"], "--steps"),
    "pretrain minutes 0": (["pretrain", "--data", "{root}/missing-images.jsonl", "--out", "{root}/out/c.safetensors", "--minutes", "0"], "--minutes"),
    "pretrain lr 0": (["pretrain", "--data", "{root}/missing-images.jsonl", "--out", "{root}/out/c.safetensors", "--lr", "0"], "--lr"),
    "pretrain out suffix": (["pretrain", "--data", "{root}/missing-images.jsonl", "--out", "{root}/out/c.pt"], ".safetensors"),
    # sigrl data
    "data synth out is a file": (["data", "synth", "--out", "{root}/file"], "is a file"),
    "data synth negative split": (["data", "synth", "--out", "{root}/out/w", "--train", "-1"], "--train"),
    "data sheet missing images": (["data", "sheet", "{root}/missing-images.jsonl", "--out", "{root}/out/s.png"], "gone.png"),
    "data sheet count 0": (["data", "sheet", "{root}/missing-images.jsonl", "--out", "{root}/out/s.png", "--count", "0"], "--count"),
    "data sheet header-only": (["data", "sheet", "{root}/header-only.jsonl", "--out", "{root}/out/s.png"], "no images"),
    "data single-positive out under a file": (["data", "single-positive", "{root}/missing-images.jsonl", "--out", "{root}/file/sp.jsonl"], "is a file"),
    "data convert unknown kind": (["data", "convert", "imagenet", "{root}", "--out", "{root}/out/m.jsonl"], "imagenet"),
    "data unknown command": (["data", "frobnicate"], "No such command"),
    # sigrl export / bench / merge / info
    "export out is a file": (["export", "--model", "sigrl-tiny", "--out", "{root}/file"], "is a file"),
    "export opset 0": (["export", "--model", "sigrl-tiny", "--out", "{root}/out/e", "--opset", "0"], "--opset"),
    "bench out is a file": (["bench", "--quick", "--out", "{root}/file"], "is a file"),
    "bench batch sizes 0": (["bench", "--quick", "--batch-sizes", "0", "--out", "{root}/out/b"], "--batch-sizes"),
    "bench reference with quick": (["bench", "--reference", "--quick"], "--reference"),
    "bench reference with out": (["bench", "--reference", "--out", "{root}/out/b"], "--reference"),
    "merge missing folder": (["merge", "{root}/nowhere", "--out", "{root}/out/m.jsonl"], "manifest.json"),
    "merge out under a file": (["merge", "{root}/out", "--out", "{root}/file/m.jsonl"], "is a file"),
    "info unknown option": (["info", "--bogus"], "No such option"),
    "unknown command": (["frobnicate"], "No such command"),
}


@pytest.mark.parametrize("argv, fragment", CASES.values(), ids=CASES.keys())
def test_bad_arguments_exit_2_with_one_line(place, capsys, argv, fragment):
    args = [a.format(**place) if "{root}" in a or "{images}" in a else a for a in argv]
    capsys.readouterr()
    code = run(args)
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err + captured.out
    assert code == 2, captured.err
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert fragment in lines[0]


def test_an_image_without_a_known_extension_is_tagged_not_read_as_a_list(place, capsys, tmp_path):
    photo = tmp_path / "photo"  # a PNG without an extension
    photo.write_bytes((place["images"] / "a.png").read_bytes())
    heic = tmp_path / "photo.heic"
    heic.write_bytes(b"\x00\x00\x00\x18ftypheic" + bytes(64))
    out = tmp_path / "t.jsonl"
    code = run(["tag", str(photo), str(heic), "--labels", str(place["root"] / "labels.txt"), "--out", str(out),
                "--model", "sigrl-tiny", "--label-cache", str(tmp_path / "c"), "--quiet"])
    records = {Path(r["path"]).name: r for r in map(json.loads, out.read_text().splitlines())}
    assert code == 1  # the HEIC file cannot be decoded here: an error record, not a usage error
    assert records["photo"]["status"] == "ok" and records["photo.heic"]["error"] == "not an image"
