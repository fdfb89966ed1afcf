"""`sigrl tag` on WebDataset tar shards and Parquet tables, through the real entry point."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest

from sigrl.errors import SigrlError
from sigrl.tagging.inputs.braces import expand_braces
from sigrl.tagging.inputs.plan import plan_inputs
from sigrl.tagging.runs.metafile import read_meta
from sigrl.tagging.outputs.writer import read_records

from cli_helpers import LABELS, REPO, sigrl, tag_args
from shard_helpers import image_samples, write_table, write_tar
from tagging_images import save, smooth_image

EXAMPLES = REPO / "examples" / "images"


@pytest.fixture
def labels_file(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("\n".join(LABELS) + "\n")
    return path


def by_name(records):
    """Records by image name: a file's stem, or the key after '#'."""
    out = {}
    for r in records:
        name = r["path"].rsplit("#", 1)[1] if "#" in r["path"] else os.path.splitext(os.path.basename(r["path"]))[0]
        out[name] = r
    return out


def test_tar_of_the_example_images_gives_the_folder_tags(tmp_path, capsys, labels_file):
    tar = write_tar(tmp_path / "examples.tar", image_samples(EXAMPLES))
    cache = tmp_path / "cache"
    assert sigrl(capsys, *tag_args(EXAMPLES, labels_file, tmp_path / "folder.jsonl", cache, "--scores", "all")).code == 0
    result = sigrl(capsys, *tag_args(tar, labels_file, tmp_path / "tar.jsonl", cache, "--scores", "all"))
    assert result.code == 0, result.err
    assert "inputs: 1 shard" in result.err
    folder, shard = by_name(read_records(tmp_path / "folder.jsonl")), by_name(read_records(tmp_path / "tar.jsonl"))
    assert len(folder) == 12 and set(folder) == set(shard)
    for name, record in folder.items():
        assert shard[name]["tags"] == record["tags"] and shard[name]["scores"] == record["scores"]
        assert shard[name]["path"] == f"{tar}#{name}"


def test_brace_patterns_are_expanded_and_reported(tmp_path, capsys, labels_file):
    assert expand_braces("s/{000..002}.tar") == ["s/000.tar", "s/001.tar", "s/002.tar"]
    assert expand_braces("{a,b{1..2}}.tar") == ["a.tar", "b1.tar", "b2.tar"]
    for bad in ("s/{000..002.tar", "s/{x}.tar", "s/}.tar"):
        with pytest.raises(SigrlError):
            expand_braces(bad)
    shards = tmp_path / "shards"
    shards.mkdir()
    samples = image_samples(EXAMPLES)
    for i in range(3):
        write_tar(shards / f"{i:05d}.tar", samples[i * 4 : i * 4 + 4])
    pattern = os.path.join(shards, "{00000..00002}.tar")
    result = sigrl(capsys, *tag_args(pattern, labels_file, tmp_path / "t.jsonl", tmp_path / "c"))
    assert result.code == 0, result.err
    assert f"inputs: 3 shards ({pattern} -> 3 names)" in result.err
    assert len(read_records(tmp_path / "t.jsonl")) == 12
    result = sigrl(capsys, *tag_args(os.path.join(shards, "{00000..00003}.tar"), labels_file, tmp_path / "u.jsonl", tmp_path / "c"))
    assert result.code == 2 and "1 of the 4 names it stands for do not exist" in result.err
    assert plan_inputs([shards]).describe() == "3 shards"  # a folder of shards


def test_corrupt_member_and_truncated_tail_get_error_records(tmp_path, capsys, labels_file):
    samples = image_samples(EXAMPLES, with_meta=True)
    samples[2] = (samples[2][0], {"jpg": b"\xff\xd8 not really a jpeg", "json": b"{}"})
    samples.insert(5, ("no-image", {"json": b"{}", "txt": b"lonely"}))
    tar = write_tar(tmp_path / "damaged.tar", samples)
    raw = tar.read_bytes()
    # Cut inside the data of the last sample's image: that sample is lost, the rest is readable.
    last_image = raw.find(b"scene-12.")  # the header of its image, the sample's first member
    tar.write_bytes(raw[: last_image + 512 + 100])
    out = tmp_path / "d.jsonl"
    result = sigrl(capsys, *tag_args(tar, labels_file, out, tmp_path / "c"))
    assert result.code == 1
    records = by_name(read_records(out))
    assert len(records) == 13 and len({r["path"] for r in records.values()}) == 13
    errors = {k: r["error"] for k, r in records.items() if r["status"] == "error"}
    assert set(errors) == {samples[2][0], "no-image", "scene-12"}
    assert errors["no-image"] == "no image member in this sample (has: json, txt)"
    assert errors["scene-12"].startswith("truncated tar: member scene-12.")
    assert all(r["status"] == "ok" and r["tags"] for k, r in records.items() if k not in errors)
    assert "meta" not in records["scene-01"]

    cut = tmp_path / "cut.tar"  # cut inside a header: the shard itself gets the error record
    whole = write_tar(tmp_path / "whole.tar", image_samples(EXAMPLES)[:3]).read_bytes()
    second = whole.find(b"scene-02.")
    cut.write_bytes(whole[: second + 200])
    result = sigrl(capsys, *tag_args(cut, labels_file, tmp_path / "cut.jsonl", tmp_path / "c"))
    records = read_records(tmp_path / "cut.jsonl")
    assert result.code == 1 and [r["path"] for r in records] == [f"{cut}#scene-01", os.fspath(cut)]
    assert records[1]["error"].startswith("truncated tar: ends inside a member header")


def test_keep_meta_carries_json_and_txt(tmp_path, capsys, labels_file):
    tar = write_tar(tmp_path / "m.tar", image_samples(EXAMPLES, with_meta=True)[:3])
    for out in (tmp_path / "m.jsonl", tmp_path / "m.parquet"):
        result = sigrl(capsys, *tag_args(tar, labels_file, out, tmp_path / "c", "--keep-meta"))
        assert result.code == 0, result.err
        record = by_name(read_records(out))["scene-02"]
        assert record["meta"] == {"json": {"file": "scene-02.jpg"}, "txt": "caption of scene-02", "__image__": "scene-02.jpg"}
    result = sigrl(capsys, *tag_args(tar, labels_file, tmp_path / "m.csv", tmp_path / "c", "--keep-meta"))
    assert result.code == 2 and "--keep-meta" in result.err
    result = sigrl(capsys, *tag_args(tar, labels_file, tmp_path / "m.jsonl", tmp_path / "c", "--resume"))
    assert result.code == 2 and "--keep-meta" in result.err  # resumed without it: refused


@pytest.mark.parametrize("layout", ["struct", "binary"])
def test_parquet_tables_in_both_layouts(tmp_path, capsys, labels_file, layout):
    pytest.importorskip("pyarrow")
    files = sorted(p for p in EXAMPLES.iterdir())[:6]
    images = [p.read_bytes() for p in files] + [b"not an image", None]
    table = write_table(tmp_path / "t.parquet", images, layout)
    out = tmp_path / "t.jsonl"
    result = sigrl(capsys, *tag_args(table, labels_file, out, tmp_path / "c", "--scores", "all"))
    assert result.code == 1, result.err
    assert "inputs: 1 table" in result.err
    records = read_records(out)
    assert [r["path"] for r in records] == [f"{table}#{i}" for i in range(8)]
    assert records[6]["error"] == "not an image" and records[7]["error"].startswith("no image bytes")
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(map(str, files)) + "\n")
    assert sigrl(capsys, *tag_args(listing, labels_file, tmp_path / "f.jsonl", tmp_path / "c", "--scores", "all")).code == 0
    folder = {os.path.basename(r["path"]): r for r in read_records(tmp_path / "f.jsonl")}
    for file, record in zip(files, records):
        assert record["scores"] == folder[file.name]["scores"]
    # A folder of tables, and a column chosen by name
    (tmp_path / "tables").mkdir()
    write_table(tmp_path / "tables" / "a.parquet", images[:2], layout, column="pixels")
    result = sigrl(capsys, *tag_args(tmp_path / "tables", labels_file, tmp_path / "p.jsonl", tmp_path / "c",
                                     "--image-column", "pixels"))
    assert result.code == 0 and len(read_records(tmp_path / "p.jsonl")) == 2
    result = sigrl(capsys, *tag_args(tmp_path / "tables", labels_file, tmp_path / "q.jsonl", tmp_path / "c",
                                     "--image-column", "label"))
    assert result.code == 2 and "not image bytes" in result.err


def test_sigkill_then_resume_on_shards_records_every_member_once(tmp_path):
    from test_cli_crash import kill_when, start_slow

    from cli_helpers import MODEL, run_subprocess

    (tmp_path / "shards").mkdir()
    keys = []
    for s in range(3):
        samples = []
        for i in range(10):
            path = tmp_path / f"img{s}{i}.png"
            save(path, smooth_image(40, 36, seed=s * 10 + i))
            samples.append((f"{s}-{i:03d}", {"png": path.read_bytes(), "txt": b"caption"}))
            keys.append(os.path.join("shards", f"{s:05d}.tar") + f"#{s}-{i:03d}")
        write_tar(tmp_path / "shards" / f"{s:05d}.tar", samples)
    (tmp_path / "labels.txt").write_text("red circle\nblue square\ngreen star\n")
    out = tmp_path / "tags.jsonl"
    args = ["tag", "shards/{00000..00002}.tar", "--labels", "labels.txt", "--out", "tags.jsonl", "--model", MODEL,
            "--label-cache", "cache", "--batch-size", "2", "--workers", "2", "--quiet"]
    killed_at = kill_when(start_slow(args, tmp_path), out, 12)  # inside the second shard
    assert 12 <= killed_at < 30
    done = run_subprocess(args + ["--resume"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert f"{killed_at} already done" in done.stdout
    paths = [r["path"] for r in read_records(out)]
    assert sorted(paths) == sorted(keys) and len(paths) == len(set(paths)) == 30
    meta = read_meta(out)
    assert meta["status"] == "complete" and meta["records"] == 30
    assert [r["status"] for r in meta["runs"]][-1] == "complete" and meta["runs"][-1]["skipped"] == killed_at


def test_tar_reader_groups_keys_and_names_what_it_cannot_read(tmp_path, monkeypatch):
    from sigrl.tagging.inputs import webdataset

    png = (EXAMPLES / "scene-01.png").read_bytes()
    tar = write_tar(tmp_path / "k.tar", [
        ("./dir/a", {"png": png, "seg.png": png, "json": b"not json"}),
        ("dir/b", {"txt": b"x"}),
        ("./dir/a", {"png": png}),  # the key again, later: ignored and noted
        ("c", {"JPG": b"big"}),
    ])
    problems: list = []
    monkeypatch.setattr(webdataset, "MAX_MEMBER_BYTES", 100)
    members = list(webdataset.iter_samples(os.fspath(tar), keep_meta=True, problems=problems))
    assert [m.path for m in members] == [f"{tar}#./dir/a", f"{tar}#dir/b", f"{tar}#c"]  # keys as webdataset keeps them
    assert members[0].error.startswith("member ./dir/a.png is") and members[0].meta == {}
    assert members[1].error == "no image member in this sample (has: txt)" and members[1].meta == {"txt": "x"}
    assert members[2].data == b"big"
    assert problems == [(f"{tar}#./dir/a", "key repeated later in the shard; later members ignored")]
    monkeypatch.setattr(webdataset, "MAX_MEMBER_BYTES", 2**20)
    first = next(webdataset.iter_samples(os.fspath(tar), keep_meta=True))
    assert first.data == png and first.meta == {"json": "not json", "__image__": "./dir/a.png"}  # png beats seg.png
    asked = []
    skipped = list(webdataset.iter_samples(os.fspath(tar), skip=lambda p: asked.append(p) or p.endswith("#c")))
    assert [m.path for m in skipped] == [f"{tar}#./dir/a", f"{tar}#dir/b"] and f"{tar}#c" in asked
    assert webdataset.count_samples(os.fspath(tar), lambda p: p.endswith("#c")) == (3, 1)
    (tmp_path / "empty.tar").write_bytes(b"")
    (only,) = webdataset.iter_samples(os.fspath(tmp_path / "empty.tar"))
    assert only.error == "not a tar file (zero bytes)"


def test_tar_reader_streams_in_bounded_memory(tmp_path):
    import tracemalloc

    from sigrl.tagging.inputs import webdataset

    blob = os.urandom(100_000)
    tar = write_tar(tmp_path / "big.tar", [(f"{i:05d}", {"jpg": blob, "txt": b"t"}) for i in range(200)])  # 20 MB
    tracemalloc.start()
    count = sum(1 for _ in webdataset.iter_samples(os.fspath(tar), keep_meta=True))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert count == 200 and peak < 1_000_000  # a few members at a time, not the shard
