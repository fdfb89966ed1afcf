"""Tar shards written by the `webdataset` library itself (TarWriter) and read by sigrl: keys,
grouping, the chosen image and the kept meta must be what `webdataset.WebDataset` yields."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile

import pytest

from sigrl.tagging.inputs import webdataset as sigrl_wds
from sigrl.tagging.inputs.options import DEFAULT_IMAGE_EXTS
from sigrl.tagging.inputs.plan import plan_inputs
from sigrl.tagging.inputs.samples import is_image_ext
from sigrl.tagging.outputs.writer import read_records

from cli_helpers import LABELS, REPO, sigrl, tag_args

wds = pytest.importorskip("webdataset", reason="the webdataset library (a dev dependency) is not installed")

EXAMPLES = REPO / "examples" / "images"
PNG = (EXAMPLES / "scene-01.png").read_bytes()
JPG = (EXAMPLES / "scene-02.jpg").read_bytes()


def _raw(writer, name: str, data: bytes) -> None:
    """A member TarWriter would not write (no key.ext form), added to its stream as it is."""
    info = tarfile.TarInfo(name)
    info.size = len(data)
    writer.tarstream.addfile(info, io.BytesIO(data))


def write_shard(path) -> str:
    """The cases of the issue: multi-image, dotted extensions, nested folders, `./`, upper case, skipped members."""
    with wds.TarWriter(os.fspath(path), encoder=False) as writer:
        _raw(writer, "__index__", b"index")
        writer.write({"__key__": "multi", "depth.png": PNG, "jpg": JPG, "json": b'{"caption": "two images"}'})
        writer.write({"__key__": "a", "b.json": b'{"x": 1}', "png": PNG, "cls": b"3"})
        writer.write({"__key__": "dir/sub/x", "png": PNG, "txt": b"nested"})
        _raw(writer, "README", b"no extension: skipped")
        writer.write({"__key__": "./0004", "jpg": JPG})
        writer.write({"__key__": "up", "JPG": JPG, "TXT": b"upper"})
        _raw(writer, "__meta__/x.json", b"{}")
        writer.write({"__key__": "segonly", "seg.png": PNG, "npy": b"\x93NUMPY\x00\xff"})
    return os.fspath(path)


def webdataset_samples(shard: str) -> list[dict]:
    return list(wds.WebDataset(shard, shardshuffle=False))


def chosen_ext(sample: dict) -> str:
    """The image a sigrl record is tagged on, by its documented rule, from webdataset's sample."""
    exts = [k for k in sample if not k.startswith("__")]
    for ext in DEFAULT_IMAGE_EXTS:
        if ext in sample:
            return ext
    return next(e for e in exts if is_image_ext(e))


def expected_meta(sample: dict) -> dict:
    meta = {}
    for ext, data in sample.items():
        if ext.startswith("__") or is_image_ext(ext):
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue  # binary members are not kept
        meta[ext] = json.loads(text) if ext.endswith("json") else text
    return meta


def assert_same_as_webdataset(shard: str) -> None:
    samples = webdataset_samples(shard)
    members = list(sigrl_wds.iter_samples(shard, keep_meta=True))
    assert [m.path for m in members] == [f"{shard}#{s['__key__']}" for s in samples]
    for sample, member in zip(samples, members):
        ext = chosen_ext(sample)
        assert member.error is None and member.data == sample[ext]
        name = next(n for n in member_names(shard) if n.lower().endswith("." + ext) and n.startswith(sample["__key__"]))
        assert member.meta == {**expected_meta(sample), "__image__": name}


def member_names(shard: str) -> list[str]:
    with tarfile.open(shard, "r:*") as tar:
        return tar.getnames()


def test_keys_grouping_image_and_meta_equal_webdataset(tmp_path):
    shard = write_shard(tmp_path / "cases.tar")
    samples = webdataset_samples(shard)
    assert [s["__key__"] for s in samples] == ["multi", "a", "dir/sub/x", "./0004", "up", "segonly"]
    assert_same_as_webdataset(shard)
    by_key = {m.path.split("#", 1)[1]: m for m in sigrl_wds.iter_samples(shard, keep_meta=True)}
    assert by_key["multi"].data == JPG and by_key["multi"].meta["__image__"] == "multi.jpg"  # not the depth map
    assert by_key["a"].meta == {"b.json": {"x": 1}, "cls": "3", "__image__": "a.png"}
    assert by_key["up"].meta == {"txt": "upper", "__image__": "up.JPG"}
    assert by_key["segonly"].data == PNG and "npy" not in by_key["segonly"].meta
    assert sigrl_wds.count_samples(shard, lambda p: False) == (6, 0)


def test_image_ext_preference_chooses_the_member(tmp_path):
    shard = write_shard(tmp_path / "cases.tar")
    members = {m.path.split("#", 1)[1]: m for m in sigrl_wds.iter_samples(shard, image_ext=("depth.png", "jpg"))}
    assert members["multi"].data == PNG and members["up"].data == JPG
    # an explicit list has no fallback: a sample with none of it is an error record, as webdataset's to_tuple fails
    assert members["a"].error == "no image member in this sample (has: b.json, cls, png)"


def test_duplicate_extension_is_an_error_record_where_webdataset_raises(tmp_path):
    shard = tmp_path / "dup.tar"
    with wds.TarWriter(os.fspath(shard), encoder=False) as writer:
        _raw(writer, "k.JPG", JPG)
        _raw(writer, "k.jpg", JPG)
        writer.write({"__key__": "ok", "jpg": JPG})
    with pytest.raises(ValueError, match="duplicate"):
        webdataset_samples(os.fspath(shard))
    first, second = sigrl_wds.iter_samples(os.fspath(shard))
    assert first.path.endswith("#k") and "a second .jpg" in first.error and second.data == JPG


@pytest.mark.parametrize("suffix", [".tar.gz", ".tgz"])
def test_gzipped_shards_are_read_like_webdataset(tmp_path, suffix):
    plain = write_shard(tmp_path / "cases.tar")
    zipped = tmp_path / f"cases{suffix}"
    zipped.write_bytes(gzip.compress(open(plain, "rb").read()))
    assert_same_as_webdataset(os.fspath(zipped))
    assert [c.kind for c in plan_inputs([zipped]).containers] == ["tar"]
    assert sigrl_wds.count_samples(os.fspath(zipped), lambda p: False) == (6, 0)
    cut = tmp_path / f"cut{suffix}"
    cut.write_bytes(zipped.read_bytes()[: zipped.stat().st_size // 2])
    members = list(sigrl_wds.iter_samples(os.fspath(cut)))
    assert members[-1].error is not None and all(m.path.startswith(os.fspath(cut)) for m in members)


def test_sigrl_tag_on_a_webdataset_shard(tmp_path, capsys):
    shard = write_shard(tmp_path / "cases.tar")
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    out = tmp_path / "tags.jsonl"
    result = sigrl(capsys, *tag_args(shard, labels, out, tmp_path / "c", "--keep-meta"))
    assert result.code == 0, result.err  # skipped members are not errors
    records = read_records(out)
    assert [r["path"] for r in records] == [f"{shard}#{s['__key__']}" for s in webdataset_samples(shard)]
    assert records[0]["meta"]["__image__"] == "multi.jpg"
    alone = tmp_path / "alone.jsonl"
    assert sigrl(capsys, *tag_args(EXAMPLES / "scene-02.jpg", labels, alone, tmp_path / "c")).code == 0
    expected = read_records(alone)[0]["tags"]  # tagged on the JPEG, not the depth map (batching moves the 6th digit)
    assert [t["label"] for t in records[0]["tags"]] == [t["label"] for t in expected]
    assert [t["score"] for t in records[0]["tags"]] == pytest.approx([t["score"] for t in expected], abs=1e-5)


def test_img2dataset_folder_reads_the_tars_and_names_the_skipped_tables(tmp_path, capsys):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    folder = tmp_path / "laion"
    folder.mkdir()
    for n in range(2):
        stem = f"{n:05d}"
        with wds.TarWriter(os.fspath(folder / f"{stem}.tar"), encoder=False) as writer:
            for i in range(2):
                key = f"{stem}{i:04d}"
                meta = {"url": f"http://x/{key}.jpg", "caption": "c", "key": key, "status": "success"}
                writer.write({"__key__": key, "jpg": JPG, "txt": b"c", "json": json.dumps(meta).encode()})
        table = pa.table({"url": ["u1", "u2"], "caption": ["c", "c"], "key": [f"{stem}0000", f"{stem}0001"],
                          "status": ["success"] * 2, "width": [64, 64]})
        pq.write_table(table, folder / f"{stem}.parquet")
        (folder / f"{stem}_stats.json").write_text('{"count": 2}')
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    result = sigrl(capsys, *tag_args(folder, labels, tmp_path / "t.jsonl", tmp_path / "c"))
    assert result.code == 0, result.err
    assert "2 shards" in result.err and "skipped 2 Parquet files" in result.err and "00000.parquet" in result.err
    paths = [r["path"] for r in read_records(tmp_path / "t.jsonl")]
    assert paths == [f"{folder}/{n:05d}.tar#{n:05d}{i:04d}" for n in range(2) for i in range(2)]
    glob_out = tmp_path / "g.jsonl"
    result = sigrl(capsys, *tag_args(f"{folder}/*.tar", labels, glob_out, tmp_path / "c"))
    assert result.code == 0, result.err
    assert f"{folder}/*.tar -> 2 names" in result.err
    assert [r["path"] for r in read_records(glob_out)] == paths
    result = sigrl(capsys, *tag_args(f"{folder}/*.nothing", labels, tmp_path / "n.jsonl", tmp_path / "c"))
    assert result.code == 2 and "matches nothing" in result.err


def test_brace_patterns_expand_as_braceexpand_does():
    braceexpand = pytest.importorskip("braceexpand", reason="braceexpand (a dev dependency) is not installed").braceexpand
    from sigrl.tagging.inputs.braces import expand_braces

    for pattern in ("s/{000..002}.tar", "{a,b{1..2}}.tar", "{-1..2}", "{08..10}", "{8..010}", "{3..1}", "{01..3}",
                    "{0..8..4}", "{10..0..3}", "{a,b}-{1..3}-{c,{d,e}}.tar", "plain.tar"):
        assert expand_braces(pattern) == list(braceexpand(pattern)), pattern
