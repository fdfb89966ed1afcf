"""Crash-safe record output: JSON Lines (default), CSV, Parquet, chosen by the file extension.

Crash safety, and what it costs:
- Every batch of records is encoded first and handed to the kernel with a single `os.write` of
  complete lines on an O_APPEND descriptor. A process killed at any moment (kill -9 included)
  leaves only whole records, except for the rare short write, which shows up as a torn last line.
- No fsync per record: at thousands of images per minute an fsync per write would cost more than
  the tagging. The file is fsynced at most every `fsync_interval` seconds and at close, so a power
  loss or kernel crash loses at most that many seconds of records; a torn or zero-filled tail it
  leaves behind is repaired by resume like any other.
- `--resume` reads the recorded paths (to skip), cuts the file back to its last complete record
  and appends. Every image therefore ends up recorded exactly once. It only ever cuts what a
  killed run can leave behind (a partial record, or the zero fill of a power loss); a file with
  anything else in it (a line that is not a record, a foreign header) is refused untouched.
- An exclusive lock on the file stops a second run from appending to the same output.

Parquet cannot be appended to safely, so a Parquet output is written through a JSON Lines
journal `<out>.journal.jsonl` with the same guarantees; `close()` converts journal (plus any
earlier Parquet output being resumed) into `<out>` atomically and deletes the journal. Resuming a
Parquet run means: continue the journal if the run was killed, or add to a finished file.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

from sigrl.atomic import write_text_atomic
from sigrl.errors import SigrlError
from sigrl.tagging.records import Record, loaded_record, stored_record
from sigrl.tagging.sources import path_key

log = logging.getLogger(__name__)

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}
CSV_COLUMNS = ("path", "status", "error", "tags", "scores", "path_bytes")
# Written before path_bytes existed: still readable, not resumable (its non-UTF-8 names are lossy).
_OLD_CSV_COLUMNS = CSV_COLUMNS[:5]
_RECORD_KEYS = frozenset({"path", "tags", "scores", "status", "error"})
_JSONL_START = b'{"path": '  # every record line starts so (json.dumps of a Record, path first)


def output_format(path: str | os.PathLike[str]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise SigrlError(f"{path}: unknown output format {suffix or '(no extension)'!r}; use one of {', '.join(FORMATS)}")
    return FORMATS[suffix]


def journal_path(out: str | os.PathLike[str]) -> Path:
    return Path(os.fspath(out) + ".journal.jsonl")


def meta_path(out: str | os.PathLike[str]) -> Path:
    return Path(os.fspath(out) + ".meta.json")


class Output:
    """An open output: `done` holds path_key() of every image already recorded (when resuming)."""

    def __init__(self, path: Path, fmt: str, sink: "_AppendFile", codec: "_Codec", done: set[str], repaired_bytes: int) -> None:
        self.path, self.format = path, fmt
        self.done, self.repaired_bytes = done, repaired_bytes
        self._sink, self._codec = sink, codec
        self.written = 0

    def is_done(self, path: str | os.PathLike[str]) -> bool:
        return path_key(path) in self.done

    def write(self, records: Sequence[Record]) -> None:
        if records:
            self._sink.append(self._codec.encode(records))
            self.written += len(records)

    def close(self) -> None:
        if self._sink.closed:
            return
        self._sink.close()
        if self.format == "parquet":
            from sigrl.tagging.parquet import finalize

            finalize(self.path, journal_path(self.path))

    def __enter__(self) -> "Output":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_output(path: str | os.PathLike[str], resume: bool = False, overwrite: bool = False, fsync_interval: float = 10.0) -> Output:
    """Opens `path` for appending records; see the module docstring for the guarantees.

    Without `resume`, an existing output is an error unless `overwrite` (which replaces it).
    """
    path = Path(path)
    fmt = output_format(path)
    if resume and overwrite:
        raise SigrlError("--resume continues an output and --overwrite replaces it; choose one")
    if fmt == "parquet":
        from sigrl.tagging.parquet import require_pyarrow

        require_pyarrow()
    file = journal_path(path) if fmt == "parquet" else path
    existing = [p for p in {path, file} if p.exists()]
    if existing and not (resume or overwrite):
        raise SigrlError(f"{path} already exists; pass --resume to continue it or --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for p in existing:
            p.unlink()
    codec: _Codec = _CsvCodec() if fmt == "csv" else _JsonlCodec()
    sink = _AppendFile(file, fsync_interval)
    try:
        done, keep = codec.scan(file) if file.exists() else (set(), 0)
        repaired = sink.truncate_to(keep)
        if repaired:
            log.warning("%s: cut %d bytes of an incomplete last record", file, repaired)
        if fmt == "parquet" and path.exists():
            from sigrl.tagging.parquet import read_parquet

            done.update(path_key(r["path"]) for r in read_parquet(path))
        if sink.size() == 0:
            sink.append(codec.header())
    except BaseException:
        sink.close()
        raise
    return Output(path, fmt, sink, codec, done, repaired)


def holds_records(path: str | os.PathLike[str]) -> bool:
    """True when the output at `path` holds at least one record (a foreign file is refused)."""
    path = Path(path)
    fmt = output_format(path)
    if fmt == "parquet" and path.exists():
        return True  # a finished Parquet output is written only with its records
    file = journal_path(path) if fmt == "parquet" else path
    if not file.is_file():
        return False
    codec: _Codec = _CsvCodec() if fmt == "csv" else _JsonlCodec()
    return bool(codec.scan(file)[0])


def read_records(path: str | os.PathLike[str]) -> list[Record]:
    """All records of an output file (any format), e.g. for tests and downstream tools."""
    path = Path(path)
    fmt = output_format(path)
    if fmt == "parquet":
        from sigrl.tagging.parquet import read_parquet

        return read_parquet(path)
    codec: _Codec = _CsvCodec() if fmt == "csv" else _JsonlCodec()
    return list(codec.iter_records(path))


def write_meta(out: str | os.PathLike[str], meta: Mapping[str, Any]) -> Path:
    """Writes the run metadata to `<out>.meta.json` atomically (temp file + os.replace)."""
    return write_text_atomic(meta_path(out), json_text(meta), durable=True)


def json_text(data: Any) -> str:
    """Indented JSON that can always be written as UTF-8: a non-UTF-8 file name that slipped into
    `data` (as a surrogate escape) is written as a JSON escape instead of failing the run."""
    text = json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(data, indent=1, ensure_ascii=True, default=str) + "\n"
    return text


def read_meta(out: str | os.PathLike[str]) -> dict[str, Any] | None:
    target = meta_path(out)
    try:
        return json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as err:
        raise SigrlError(f"{target}: not valid JSON ({err}); delete it and rerun") from None


class _AppendFile:
    """An O_APPEND file descriptor under an exclusive lock, written with whole-buffer writes."""

    def __init__(self, path: Path, fsync_interval: float) -> None:
        self.path, self.fsync_interval = path, fsync_interval
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        self.closed = False
        self._last_sync = time.monotonic()
        try:
            import fcntl

            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except ImportError:  # no advisory locks on this platform; run without the guard
            pass
        except BlockingIOError:
            os.close(self.fd)
            self.closed = True
            raise SigrlError(f"{path} is being written by another running process; wait for it or pick another output") from None

    def size(self) -> int:
        return os.fstat(self.fd).st_size

    def truncate_to(self, length: int) -> int:
        """Cuts the file to `length` bytes; returns how many were removed."""
        cut = self.size() - length
        if cut > 0:
            os.ftruncate(self.fd, length)
            os.fsync(self.fd)
        return max(cut, 0)

    def append(self, data: bytes) -> None:
        view = memoryview(data)
        while view:  # a regular file takes it all at once; loop only for the rare short write
            view = view[os.write(self.fd, view) :]
        if time.monotonic() - self._last_sync >= self.fsync_interval:
            os.fsync(self.fd)
            self._last_sync = time.monotonic()

    def close(self) -> None:
        if not self.closed:
            os.fsync(self.fd)
            os.close(self.fd)  # closing releases the lock
            self.closed = True


class _Codec:
    def header(self) -> bytes:
        return b""

    def encode(self, records: Sequence[Record]) -> bytes:
        raise NotImplementedError

    def scan(self, path: Path) -> tuple[set[str], int]:
        """(path keys recorded, length of the file up to its last complete record)."""
        raise NotImplementedError

    def iter_records(self, path: Path) -> Iterator[Record]:
        raise NotImplementedError


def _complete_lines(path: Path) -> Iterator[tuple[int, int, bytes]]:
    """(line number, end offset, line) for each newline-terminated line; a torn tail is left out."""
    end = 0
    with open(path, "rb") as f:
        for number, line in enumerate(f, start=1):
            if not line.endswith(b"\n"):
                return
            end += len(line)
            yield number, end, line


class _JsonlCodec(_Codec):
    def encode(self, records: Sequence[Record]) -> bytes:
        return b"".join(_json_line(r) for r in records)

    def scan(self, path: Path) -> tuple[set[str], int]:
        done: set[str] = set()
        keep, lines_end, zero_fill = 0, 0, None
        for number, end, line in _complete_lines(path):
            lines_end = end
            record = _parse_json_record(line)
            if record is None:
                if line.strip(b"\0\n"):
                    raise SigrlError(_not_ours(path, f"line {number} is not a sigrl record"))
                zero_fill = zero_fill or number  # what a power loss leaves; fine only at the end
                continue
            if zero_fill is not None:
                raise SigrlError(
                    f"{path}: line {zero_fill} is zero bytes but later lines are records; the file is damaged "
                    "in the middle. Fix or delete that line, then resume"
                )
            done.add(path_key(record["path"]))
            keep = end
        _check_tail(path, lines_end, lambda t: not t or t.startswith(_JSONL_START) or _JSONL_START.startswith(t))
        return done, keep

    def iter_records(self, path: Path) -> Iterator[Record]:
        for number, _, line in _complete_lines(path):
            record = _parse_json_record(line)
            if record is None:
                raise SigrlError(f"{path}: line {number} is not a valid record")
            yield record


def _not_ours(path: Path, what: str) -> str:
    return (
        f"{path}: {what}, so nothing shows that sigrl wrote this file, and --resume never changes a file "
        "it did not write. Choose another --out, or pass --overwrite to replace it"
    )


def _check_tail(path: Path, start: int, is_ours: Callable[[bytes], bool]) -> None:
    """Refuses when the bytes after the last complete line are not a partial record of ours."""
    with open(path, "rb") as f:
        f.seek(start)
        tail = f.read()
    if not is_ours(tail.rstrip(b"\0")):  # zero fill after a power loss is ours to cut too
        raise SigrlError(_not_ours(path, f"its last {len(tail)} bytes are not part of a sigrl record"))


def _json_line(record: Record) -> bytes:
    # stored_record makes non-UTF-8 file names valid text, so every line is valid UTF-8 JSON.
    text = json.dumps(stored_record(record), ensure_ascii=False, allow_nan=False) + "\n"
    return text.encode("utf-8", "backslashreplace")  # only a surrogate in an error text needs it


def _parse_json_record(line: bytes) -> Record | None:
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or not _RECORD_KEYS <= record.keys() or not isinstance(record["path"], str):
        return None
    try:
        return loaded_record(record)
    except ValueError:
        return None


class _CsvCodec(_Codec):
    """CSV cells: `tags` is a JSON object {label: score} (highest first), `scores` a JSON list, and
    `path_bytes` the base64 of a file name that is not valid UTF-8 (see sigrl.tagging.records).
    """

    def header(self) -> bytes:
        return self._rows([CSV_COLUMNS])

    def encode(self, records: Sequence[Record]) -> bytes:
        rows = []
        for r in map(stored_record, records):
            tags = json.dumps({t["label"]: t["score"] for t in r["tags"]}, ensure_ascii=False)
            scores = "" if r.get("scores") is None else json.dumps(r["scores"])
            rows.append([r["path"], r["status"], r["error"] or "", tags, scores, r.get("path_bytes", "")])
        return self._rows(rows)

    @staticmethod
    def _rows(rows: Iterable[Sequence[str]]) -> bytes:
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        return buf.getvalue().encode("utf-8", "backslashreplace")  # only a surrogate in an error text needs it

    def _iter_rows(self, path: Path) -> Iterator[tuple[int, list[str]]]:
        """(end offset, row) for each complete row; stops at a torn tail, even inside quotes."""
        state = {"end": 0, "exhausted": False}

        def lines() -> Iterator[str]:
            for _, end, line in _complete_lines(path):
                state["end"] = end
                yield line.decode("utf-8", "surrogateescape")
            state["exhausted"] = True

        reader = csv.reader(lines(), strict=True)
        row_end = 0
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error:
                if state["exhausted"]:
                    return  # the input ended inside a quoted cell: a torn last row
                raise SigrlError(f"{path}: not a valid CSV file after byte {row_end}; fix or delete it") from None
            row_end = state["end"]
            yield row_end, row

    def scan(self, path: Path) -> tuple[set[str], int]:
        done: set[str] = set()
        keep = 0
        for index, (end, row) in enumerate(self._iter_rows(path)):
            if index == 0:
                self._check_header(path, row)
            elif len(row) != len(CSV_COLUMNS):
                raise SigrlError(f"{path}: row ending at byte {end} has {len(row)} cells, expected {len(CSV_COLUMNS)}")
            else:
                done.add(path_key(_row_path(path, end, row)))
            keep = end
        if keep == 0:  # no header yet: only a torn header of ours may be cut
            header = self.header()
            _check_tail(path, 0, lambda t: header.startswith(t))
        return done, keep

    @staticmethod
    def _check_header(path: Path, row: list[str]) -> None:
        if tuple(row) == _OLD_CSV_COLUMNS:
            raise SigrlError(
                f"{path}: written by an older sigrl (no path_bytes column), so it cannot be continued; "
                "tag into a new --out, or pass --overwrite to start it again"
            )
        if tuple(row) != CSV_COLUMNS:
            raise SigrlError(_not_ours(path, f"it is not a sigrl CSV output (header {row})"))

    def iter_records(self, path: Path) -> Iterator[Record]:
        for index, (_, row) in enumerate(self._iter_rows(path)):
            if index > 0:
                yield self._record(row)

    @staticmethod
    def _record(row: list[str]) -> Record:
        p, status, error, tags, scores, *rest = row
        stored = {
            "path": p, "path_bytes": rest[0] if rest else "",
            "tags": [{"label": k, "score": v} for k, v in json.loads(tags or "{}").items()],
            "scores": json.loads(scores) if scores else None,
            "status": status,
            "error": error or None,
        }
        return loaded_record(stored)


def _row_path(path: Path, end: int, row: list[str]) -> str:
    try:
        return loaded_record({"path": row[0], "path_bytes": row[5]})["path"]
    except ValueError as err:
        raise SigrlError(f"{path}: row ending at byte {end}: {err}; fix or delete that row") from None
