"""Hugging Face `Image` tables in the layouts `datasets` writes, record order with failures in the
middle, and patterns that stand for too many names."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tracemalloc

import pytest

from sigrl.errors import SigrlError
from sigrl.tagging.inputs.braces import MAX_NAMES, count_names
from sigrl.tagging.inputs.plan import plan_inputs
from sigrl.tagging.outputs.writer import read_records

from cli_helpers import LABELS, REPO, sigrl, subprocess_env, tag_args
from shard_helpers import write_table

EXAMPLES = REPO / "examples" / "images"
FILES = sorted(EXAMPLES.iterdir())[:4]


@pytest.fixture
def labels_file(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("\n".join(LABELS) + "\n")
    return path


def hf_table(path, rows: list[dict]) -> None:
    """A table in the exact layout `datasets` writes for an `Image` feature, made with pyarrow: a
    struct {bytes: binary, path: string} column and the feature list under the `huggingface` key
    of the Arrow schema metadata (as datasets 5.2 writes it)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    features = {"image": {"_type": "Image"}, "label": {"dtype": "string", "_type": "Value"}}
    schema = pa.schema([("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("label", pa.string())],
                       metadata={"huggingface": json.dumps({"info": {"features": features}})})
    pq.write_table(pa.Table.from_pylist([{"image": r, "label": "x"} for r in rows], schema=schema), path)


def scores_by_name(records) -> dict:
    return {os.path.basename(r["path"]): r["scores"] for r in records}


def test_hf_image_tables_embedded_and_path_only(tmp_path, capsys, labels_file):
    pytest.importorskip("pyarrow")
    data = tmp_path / "data"
    data.mkdir()
    for f in FILES:
        shutil.copy(f, data / f.name)
    embedded = [{"bytes": f.read_bytes(), "path": f.name} for f in FILES]
    named = [{"bytes": None, "path": f.name} for f in FILES]
    named.insert(2, {"bytes": None, "path": "missing.png"})  # a missing file, in the middle
    named.append({"bytes": None, "path": os.fspath(data / FILES[0].name)})  # an absolute path
    hf_table(data / "embedded.parquet", embedded)
    hf_table(data / "named.parquet", named)
    out = tmp_path / "t.jsonl"
    result = sigrl(capsys, *tag_args(data / "embedded.parquet", labels_file, out, tmp_path / "c", "--scores", "all"))
    assert result.code == 0, result.err
    files_out = tmp_path / "f.jsonl"
    assert sigrl(capsys, *tag_args(data, labels_file, files_out, tmp_path / "c", "--scores", "all")).code == 0
    by_file = scores_by_name(read_records(files_out))
    for f, record in zip(FILES, read_records(out)):
        assert record["scores"] == pytest.approx(by_file[f.name], abs=1e-5)
    named_out = tmp_path / "n.jsonl"
    result = sigrl(capsys, *tag_args(data / "named.parquet", labels_file, named_out, tmp_path / "c", "--scores", "all"))
    assert result.code == 1, result.err
    records = read_records(named_out)
    assert [r["path"] for r in records] == [f"{data / 'named.parquet'}#{i}" for i in range(6)]  # input order
    assert [r["status"] for r in records] == ["ok", "ok", "error", "ok", "ok", "ok"]
    assert "missing.png" in records[2]["error"] and "does not exist" in records[2]["error"]
    for name, record in zip([f.name for f in FILES[:2]] + [None] + [f.name for f in FILES[2:]] + [FILES[0].name], records):
        if name is not None:
            assert record["scores"] == pytest.approx(by_file[name], abs=1e-5)


def test_tables_written_by_datasets_itself(tmp_path, capsys, labels_file, monkeypatch):
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets is not installed")
    datasets.disable_progress_bars()
    for f in FILES[:2]:
        shutil.copy(f, tmp_path / f.name)
    monkeypatch.chdir(tmp_path)  # datasets stores the paths as given: relative to the table's folder here
    from_paths = datasets.Dataset.from_dict({"image": [f.name for f in FILES[:2]]}).cast_column("image", datasets.Image())
    from_paths.to_parquet("paths.parquet")
    features = datasets.Features({"image": datasets.Image()})
    embedded = datasets.Dataset.from_dict({"image": [{"bytes": f.read_bytes(), "path": None} for f in FILES[:2]]}, features=features)
    embedded.to_parquet("bytes.parquet")
    for table in ("paths.parquet", "bytes.parquet"):
        result = sigrl(capsys, *tag_args(tmp_path / table, labels_file, tmp_path / f"{table}.jsonl", tmp_path / "c"))
        assert result.code == 0, result.err
        assert [r["status"] for r in read_records(tmp_path / f"{table}.jsonl")] == ["ok", "ok"]


def test_failures_in_the_middle_keep_input_order(tmp_path, capsys, labels_file):
    pytest.importorskip("pyarrow")
    images = [f.read_bytes() for f in FILES[:3]] + [b"not an image"] + [FILES[3].read_bytes(), None] + [FILES[0].read_bytes()] * 2
    table = write_table(tmp_path / "t.parquet", images, "binary")
    out = tmp_path / "t.jsonl"
    result = sigrl(capsys, *tag_args(table, labels_file, out, tmp_path / "c", "--batch-size", "4"))
    assert result.code == 1
    records = read_records(out)
    assert [r["path"] for r in records] == [f"{table}#{i}" for i in range(8)]  # was rows 0,1,2,4,6,7,3,5
    assert [r["status"] for r in records] == ["ok"] * 3 + ["error", "ok", "error", "ok", "ok"]
    folder = tmp_path / "files"
    folder.mkdir()
    for i, f in enumerate(FILES):
        shutil.copy(f, folder / f"{i}{f.suffix}")
    (folder / "2b.png").write_bytes(b"broken")
    result = sigrl(capsys, *tag_args(folder, labels_file, tmp_path / "f.jsonl", tmp_path / "c", "--batch-size", "8"))
    names = [os.path.basename(r["path"]) for r in read_records(tmp_path / "f.jsonl")]
    assert result.code == 1 and names == sorted(names) and "2b.png" in names


def test_a_pattern_of_too_many_names_is_refused_before_any_is_made(tmp_path, labels_file):
    pattern = os.fspath(tmp_path / "x" / "{0..99999999}.tar")
    assert count_names(pattern) == 100_000_000
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(SigrlError, match=f"100,000,000 names, more than the {MAX_NAMES:,}"):
        plan_inputs([pattern])
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert time.perf_counter() - start < 1 and peak < 1_000_000
    huge, huge_s = peak_of(tag_args(pattern, labels_file, tmp_path / "o.jsonl", tmp_path / "c"), tmp_path)
    assert huge.returncode == 2 and "100,000,000 names" in huge.stderr, huge.stderr
    assert huge_s < 30  # imports and the model's resolution; the pattern itself is refused at once
    # The same command on one missing name: what the process costs without the pattern.
    alone, _ = peak_of(tag_args(tmp_path / "x" / "0.tar", labels_file, tmp_path / "o.jsonl", tmp_path / "c"), tmp_path)
    assert alone.returncode == 2
    assert peak_kib(huge) < peak_kib(alone) + 100_000  # expanding it whole took 2.3 GB after 20 s


def peak_of(args: list, cwd) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", PEAK_MEMORY, *map(str, args)], cwd=cwd, env=subprocess_env(),
                          capture_output=True, text=True, timeout=120)
    return done, time.perf_counter() - start


def peak_kib(done: subprocess.CompletedProcess) -> int:
    return int(done.stderr.rsplit("peak_rss_kib ", 1)[1].split()[0])


# `sigrl ARGS` in a child that reports its peak resident memory on the way out.
PEAK_MEMORY = """
import atexit, resource, sys
atexit.register(lambda: print("peak_rss_kib", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr))
from sigrl.cli.main import main
sys.argv = ["sigrl", *sys.argv[1:]]
main()
"""
