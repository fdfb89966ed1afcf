"""Sharded output without Ray: plan, atomic shard files, finished-shard detection, merge."""

from __future__ import annotations

import json
import os
import sys

import pytest

from sigrl.errors import SigrlError
from sigrl.tagging.records import error_record, ok_record
from sigrl.tagging.outputs.shards import MANIFEST, open_manifest, plan_shards, write_shard
from sigrl.tagging.outputs.merge import merge_shards, read_manifest
from sigrl.tagging.runs.metafile import read_meta, write_meta
from sigrl.tagging.outputs.writer import read_records


def _paths(n: int) -> list[str]:
    return [f"/data/img{i:03d}.jpg" for i in range(n)]


def _records(shard) -> list[dict]:
    out = [ok_record(p, [("cat", 0.5 + i / 100)]) for i, p in enumerate(shard.paths[:-1])]
    return out + [error_record(shard.paths[-1], "not an image")]


def _finish_all(folder, shards, manifest) -> None:
    for s in shards:
        manifest.finish(write_shard(folder, s, _records(s), manifest.suffix))
    manifest.save()


def test_plan_is_fixed_and_names_change_with_content():
    shards = plan_shards(_paths(10), 4)
    assert [len(s.paths) for s in shards] == [4, 4, 2]
    assert [s.index for s in shards] == [0, 1, 2]
    again = plan_shards(_paths(10), 4)
    assert [s.file_name(".jsonl") for s in shards] == [s.file_name(".jsonl") for s in again]
    changed = plan_shards(_paths(9) + ["/data/other.jpg"], 4)
    assert changed[0].digest == shards[0].digest and changed[2].digest != shards[2].digest


def test_finished_shards_survive_and_damaged_ones_are_redone(tmp_path):
    out = tmp_path / "tags.jsonl"
    shards = plan_shards(_paths(12), 4)
    manifest = open_manifest(out, shards, 4)
    _finish_all(out, shards, manifest)
    assert not [p for p in os.listdir(out) if p.startswith(".tmp")]  # no temporaries left behind
    with pytest.raises(SigrlError, match="--resume"):
        open_manifest(out, shards, 4)
    assert len(open_manifest(out, shards, 4, resume=True).todo()) == 0
    # a truncated shard (size differs from the manifest) and a deleted one are redone
    first = out / shards[0].file_name(".jsonl")
    first.write_bytes(first.read_bytes()[:40])
    (out / shards[1].file_name(".jsonl")).unlink()
    assert [s.index for s in open_manifest(out, shards, 4, resume=True).todo()] == [0, 1]


def test_shard_written_but_not_noted_is_checked_by_content(tmp_path):
    out = tmp_path / "tags.jsonl"
    shards = plan_shards(_paths(8), 4)
    manifest = open_manifest(out, shards, 4)
    manifest.save()  # the driver died right after the shard files were renamed into place
    write_shard(out, shards[0], _records(shards[0]), ".jsonl")
    write_shard(out, shards[1], _records(shards[1])[:-1], ".jsonl")  # one record short: not finished
    again = open_manifest(out, shards, 4, resume=True)
    assert [s.index for s in again.todo()] == [1]
    assert again.entries[0]["records"] == 4 and again.entries[0]["errors"] == 1


def test_resume_removes_temporaries_a_kill_left(tmp_path):
    out = tmp_path / "tags.jsonl"
    shards = plan_shards(_paths(4), 2)
    open_manifest(out, shards, 2).save()
    left = [out / ".tmp-0123-shard-00000.jsonl", out / f".{MANIFEST}.4242.abcd1234.tmp"]  # killed mid-write
    for p in left:
        p.write_text("partial")
    open_manifest(out, shards, 2, resume=True)
    assert not any(p.exists() for p in left) and (out / MANIFEST).exists()


@pytest.mark.parametrize("shard_dir, merged", [("tags.jsonl", "all.csv"), ("tags.parquet", "all.jsonl"), ("tags", "all.parquet")])
def test_merge_joins_every_shard_once(tmp_path, shard_dir, merged):
    pytest.importorskip("pyarrow")
    out = tmp_path / shard_dir
    shards = plan_shards(_paths(10), 3)
    manifest = open_manifest(out, shards, 3)
    _finish_all(out, shards, manifest)
    write_meta(out, {"model_hash": "abc", "records": 10})
    summary = merge_shards(out, tmp_path / merged)
    assert (summary.shards, summary.records, summary.errors) == (4, 10, 4)
    records = read_records(tmp_path / merged)
    assert [r["path"] for r in records] == [p for s in shards for p in s.paths[:-1] + (s.paths[-1],)]
    assert records[0]["tags"] == [{"label": "cat", "score": 0.5}]
    assert read_meta(tmp_path / merged) == {"model_hash": "abc", "records": 10, "merged_from": os.fspath(out)}


def test_merge_refuses_unfinished_shards_unless_partial(tmp_path):
    out = tmp_path / "tags.jsonl"
    shards = plan_shards(_paths(6), 3)
    manifest = open_manifest(out, shards, 3)
    manifest.finish(write_shard(out, shards[1], _records(shards[1]), ".jsonl"))
    manifest.save()
    assert json.loads((out / MANIFEST).read_text())["finished"] == 1
    with pytest.raises(SigrlError, match="1 of 2 shards are not finished"):
        merge_shards(out, tmp_path / "all.jsonl")
    assert merge_shards(out, tmp_path / "part.jsonl", allow_partial=True).records == 3
    assert read_manifest(out)["shards"][0]["status"] == "todo"


def test_csv_shards_are_refused_with_the_fix(tmp_path):
    with pytest.raises(SigrlError, match="sigrl merge"):
        open_manifest(tmp_path / "tags.csv", plan_shards(_paths(2), 1), 1)


def test_ray_engine_without_ray_names_the_extra(monkeypatch):
    from sigrl.tagging.engines import ray_engine

    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail as if not installed
    with pytest.raises(SigrlError) as err:
        ray_engine.require_ray()
    assert str(err.value) == "the ray engine needs Ray: pip install 'sigrl[ray]'"


def test_tag_engine_ray_without_ray_is_one_line(monkeypatch, capsys, tmp_path):
    from sigrl.cli.main import main

    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    (tmp_path / "img.png").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "ray", None)
    monkeypatch.setattr(sys, "argv", ["sigrl", "tag", str(tmp_path / "img.png"), "--labels", str(tmp_path / "labels.txt"),
                                      "--out", str(tmp_path / "tags.jsonl"), "--model", "sigrl-tiny", "--engine", "ray"])
    with pytest.raises(SystemExit) as stop:
        main()
    assert stop.value.code == 2
    assert capsys.readouterr().err == "error: the ray engine needs Ray: pip install 'sigrl[ray]'\n"


@pytest.mark.parametrize("shard_dir, merged", [("tags.jsonl", "all.csv"), ("tags.parquet", "all.parquet")])
def test_non_utf8_first_names_keep_manifest_shards_and_merge_working(tmp_path, shard_dir, merged):
    pytest.importorskip("pyarrow")
    out = tmp_path / shard_dir
    odd = [os.fsdecode(b"/data/\xe9t\xe9-%d.jpg" % i) for i in range(4)]  # Latin-1: not UTF-8
    shards = plan_shards(odd + _paths(2), 3)
    manifest = open_manifest(out, shards, 3)
    _finish_all(out, shards, manifest)
    assert read_manifest(out)["shards"][0]["first"] == "/data/\\xe9t\\xe9-0.jpg"
    assert len(open_manifest(out, shards, 3, resume=True).todo()) == 0
    merge_shards(out, tmp_path / merged)
    assert [r["path"] for r in read_records(tmp_path / merged)] == odd + _paths(2)
