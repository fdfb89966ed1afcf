import base64
import csv
import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sigrl.errors import SigrlError
from sigrl.tagging.records import error_record, ok_record
from sigrl.tagging.outputs.formats import journal_path
from sigrl.tagging.runs.metafile import meta_path, read_meta, write_meta
from sigrl.tagging.outputs.writer import open_output, read_records

WEIRD = "sp ace, \"quoted\"\nnew-line ü 猫.jpg"


def sample(n: int, start: int = 0) -> list:
    out = []
    for i in range(start, start + n):
        if i % 3 == 2:
            out.append(error_record(f"img/{i}.jpg", "truncated image"))
        else:
            out.append(ok_record(f"img/{i}.jpg", [("cat", 0.5 + i / 100), ("dog", 0.25)], [0.5 + i / 100, 0.25] if i % 2 else None))
    return out


@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet"])
def test_round_trip(tmp_path, ext):
    out = tmp_path / f"tags.{ext}"
    records = sample(5) + [ok_record(WEIRD, [("ünïcode label", 0.125)])]
    records.append(ok_record("bad-\udcff-bytes.jpg", []))  # a non-UTF-8 file name
    with open_output(out) as o:
        o.write(records[:2])
        o.write(records[2:])
    assert read_records(out) == records
    if ext == "parquet":
        assert not journal_path(out).exists()


@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet"])
def test_non_utf8_names_are_valid_text_and_exact_in_every_format(tmp_path, ext):
    """path: the name with undecodable bytes as \\xNN; path_bytes: the exact bytes (base64 in text)."""
    out = tmp_path / f"tags.{ext}"
    name = os.fsdecode(b"photos/caf\xe9 \xff.jpg")  # Latin-1 bytes: not UTF-8
    with open_output(out) as o:
        o.write([ok_record(name, [("cat", 0.5)]), error_record("plain.jpg", "no such file")])
    assert [r["path"] for r in read_records(out)] == [name, "plain.jpg"]
    with open_output(out, resume=True) as o:  # resume recognises the name
        assert o.is_done(name) and o.is_done("plain.jpg")
    if ext == "parquet":
        import pyarrow.parquet as pq

        rows = pq.read_table(out).to_pylist()
        assert rows[0]["path"] == "photos/caf\\xe9 \\xff.jpg" and rows[0]["path_bytes"] == b"photos/caf\xe9 \xff.jpg"
        assert rows[1]["path_bytes"] is None
        return
    text = out.read_bytes().decode("utf-8")  # strict: the whole file is valid UTF-8
    if ext == "jsonl":
        first = json.loads(text.splitlines()[0])
        assert first["path"] == "photos/caf\\xe9 \\xff.jpg"
        assert base64.b64decode(first["path_bytes"]) == b"photos/caf\xe9 \xff.jpg"
        assert "path_bytes" not in json.loads(text.splitlines()[1])
    else:
        rows = list(csv.DictReader(io.StringIO(text)))
        assert rows[0]["path"] == "photos/caf\\xe9 \\xff.jpg" and rows[1]["path_bytes"] == ""
        assert base64.b64decode(rows[0]["path_bytes"]) == b"photos/caf\xe9 \xff.jpg"


@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet"])
def test_existing_output_is_never_overwritten_silently(tmp_path, ext):
    out = tmp_path / f"tags.{ext}"
    with open_output(out) as o:
        o.write(sample(2))
    with pytest.raises(SigrlError, match="already exists; pass --resume to continue it or --overwrite"):
        open_output(out)
    with pytest.raises(SigrlError, match="choose one"):
        open_output(out, resume=True, overwrite=True)
    with open_output(out, overwrite=True) as o:
        o.write(sample(1, start=7))
    assert [r["path"] for r in read_records(out)] == ["img/7.jpg"]


@pytest.mark.parametrize("ext", ["jsonl", "csv", "parquet"])
def test_resume_skips_and_appends(tmp_path, ext, monkeypatch):
    out = tmp_path / f"tags.{ext}"
    with open_output(out) as o:
        o.write(sample(3))
    monkeypatch.chdir(tmp_path)
    with open_output(out, resume=True) as o:
        assert o.is_done("img/1.jpg") and o.is_done("./img/../img/2.jpg") and o.is_done(tmp_path / "img/0.jpg")
        assert not o.is_done("img/3.jpg") and o.repaired_bytes == 0
        o.write(sample(2, start=3))
    assert [r["path"] for r in read_records(out)] == [f"img/{i}.jpg" for i in range(5)]


def test_resume_without_output_starts_fresh(tmp_path):
    with open_output(tmp_path / "sub" / "new.jsonl", resume=True) as o:
        assert o.done == set()
        o.write(sample(1))
    assert len(read_records(tmp_path / "sub" / "new.jsonl")) == 1


@pytest.mark.parametrize("tail", [b'{"path": "img/9.jpg", "tags": [', b"\x00" * 300])
def test_jsonl_torn_last_line_is_repaired(tmp_path, tail):
    out = tmp_path / "tags.jsonl"
    with open_output(out) as o:
        o.write(sample(3))
    whole = out.stat().st_size
    with open(out, "ab") as f:
        f.write(tail)
    with open_output(out, resume=True) as o:
        assert o.repaired_bytes == len(tail)
        assert len(o.done) == 3
        o.write(sample(1, start=9))
    assert out.stat().st_size > whole
    assert [r["path"] for r in read_records(out)] == ["img/0.jpg", "img/1.jpg", "img/2.jpg", "img/9.jpg"]


def test_jsonl_damage_in_the_middle_is_an_error(tmp_path):
    out = tmp_path / "tags.jsonl"
    lines = [json.dumps(r) for r in sample(3)]
    out.write_text("\n".join([lines[0], "garbage", lines[2]]) + "\n")
    with pytest.raises(SigrlError, match="line 2 is not a sigrl record"):
        open_output(out, resume=True)
    out.write_text("\n".join([lines[0], "\0\0", lines[2]]) + "\n")  # zero fill, then records
    with pytest.raises(SigrlError, match="line 2 is zero bytes but later lines are records"):
        open_output(out, resume=True)


FOREIGN = {
    "jsonl-lines": ("tags.jsonl", b'{"a": 1}\n{"a": 2}\n'),
    "jsonl-path-only": ("tags.jsonl", b'{"path": "x.jpg"}\n'),
    "jsonl-no-newline": ("tags.jsonl", b'{"a": 1}'),
    "jpeg-as-jsonl": ("x.jsonl", b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\n\x01\x02\xff\xd9"),
    "jpeg-no-newline": ("x.jsonl", b"\xff\xd8\xff\xe0\x00\x10JFIF\xff\xd9"),
    "text-as-csv": ("x.csv", b"hello world"),
    "other-csv": ("x.csv", b"name,value\na,1\n"),
}


@pytest.mark.parametrize("name, content", FOREIGN.values(), ids=FOREIGN.keys())
def test_resume_never_touches_a_file_it_did_not_write(tmp_path, name, content):
    out = tmp_path / name
    out.write_bytes(content)
    with pytest.raises(SigrlError, match="--overwrite"):
        open_output(out, resume=True)
    assert out.read_bytes() == content


def test_resume_cuts_a_zero_filled_tail_after_records(tmp_path):
    out = tmp_path / "tags.jsonl"
    with open_output(out) as o:
        o.write(sample(2))
    good = out.read_bytes()
    out.write_bytes(good + b"\0" * 40 + b"\n" + b"\0" * 10)
    with open_output(out, resume=True) as o:
        assert len(o.done) == 2
    assert out.read_bytes() == good


def test_foreign_parquet_is_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    out = tmp_path / "tags.parquet"
    pq.write_table(pa.table({"path": ["a"], "value": [1]}), out)
    content = out.read_bytes()
    with pytest.raises(SigrlError, match="not a sigrl Parquet output"):
        open_output(out, resume=True)
    assert out.read_bytes() == content


def test_csv_torn_rows_are_repaired(tmp_path):
    out = tmp_path / "tags.csv"
    with open_output(out) as o:
        o.write(sample(2))
    good = out.read_bytes()
    # A torn row that stops inside a quoted cell after one of its own newlines.
    for tail in [b"img/5.jpg,ok,,{", b'"sp ace\nnew', b'"sp ace\n']:
        out.write_bytes(good + tail)
        with open_output(out, resume=True) as o:
            assert o.repaired_bytes == len(tail)
            assert len(o.done) == 2
        assert out.read_bytes() == good
    with open_output(out, resume=True) as o:
        o.write([ok_record(WEIRD, [("cat", 1.0)])])
    assert read_records(out)[-1]["path"] == WEIRD


def test_csv_foreign_file_is_refused(tmp_path):
    out = tmp_path / "tags.csv"
    out.write_text("name,value\na,1\n")
    with pytest.raises(SigrlError, match="not a sigrl CSV output"):
        open_output(out, resume=True)


def test_parquet_resume_from_journal_and_from_finished_file(tmp_path):
    out = tmp_path / "tags.parquet"
    o = open_output(out)
    o.write(sample(2))
    o._sink.close()  # as if killed: the journal holds the records, no Parquet yet
    assert journal_path(out).exists() and not out.exists()
    with pytest.raises(SigrlError, match="already exists"):
        open_output(out)
    with open_output(out, resume=True) as o:
        assert len(o.done) == 2
        o.write(sample(1, start=2))
    assert [r["path"] for r in read_records(out)] == ["img/0.jpg", "img/1.jpg", "img/2.jpg"]
    with open_output(out, resume=True) as o:  # a finished file grows by the new images
        assert len(o.done) == 3
        o.write(sample(1, start=3))
    assert len(read_records(out)) == 4 and not journal_path(out).exists()


def test_parquet_without_pyarrow_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import now fails
    with pytest.raises(SigrlError, match=r'pip install "sigrl\[parquet\]"'):
        open_output(tmp_path / "tags.parquet")
    assert not journal_path(tmp_path / "tags.parquet").exists()


def test_second_writer_is_locked_out(tmp_path):
    out = tmp_path / "tags.jsonl"
    with open_output(out) as o:
        with pytest.raises(SigrlError, match="being written by another running process"):
            open_output(out, resume=True)
        o.write(sample(1))


def test_unknown_extension(tmp_path):
    with pytest.raises(SigrlError, match="unknown output format '.txt'"):
        open_output(tmp_path / "tags.txt")


def test_meta_sidecar(tmp_path):
    out = tmp_path / "tags.jsonl"
    assert read_meta(out) is None
    write_meta(out, {"model": "abc", "counts": {"ok": 3}, "out": out})
    write_meta(out, {"model": "def"})
    assert meta_path(out).name == "tags.jsonl.meta.json"
    assert read_meta(out) == {"model": "def"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tags.jsonl.meta.json"]  # no temp left


CHILD = """
import sys, time
from sigrl.tagging.records import ok_record
from sigrl.tagging.outputs.writer import open_output
out, total = sys.argv[1], int(sys.argv[2])
with open_output(out, resume=True) as o:
    todo = [f"img/{i}.jpg" for i in range(total) if not o.is_done(f"img/{i}.jpg")]
    for start in range(0, len(todo), 7):
        o.write([ok_record(p, [("x" * 50, 0.5)]) for p in todo[start:start + 7]])
        time.sleep(0.002)
"""


def test_exactly_once_after_sigkill(tmp_path):
    out = tmp_path / "tags.jsonl"
    total = 3000
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    counts = []
    for delay in (0.0, 0.05, 0.1):
        before = out.stat().st_size if out.exists() else 0
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(out), str(total)], env=env)
        deadline = time.monotonic() + 30
        while (not out.exists() or out.stat().st_size <= before) and time.monotonic() < deadline:
            time.sleep(0.005)  # kill only once this round has written something
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        child.wait()
        counts.append(out.read_bytes().count(b"\n"))
    assert 0 < counts[0] < counts[-1] < total  # the kills landed mid-run
    subprocess.run([sys.executable, "-c", CHILD, str(out), str(total)], env=env, check=True, timeout=60)
    paths = [r["path"] for r in read_records(out)]
    assert sorted(paths) == sorted(f"img/{i}.jpg" for i in range(total))
    assert len(paths) == len(set(paths))
