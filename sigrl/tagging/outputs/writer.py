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

import logging
import os
import time
from pathlib import Path
from typing import Sequence

from sigrl.errors import SigrlError
from sigrl.tagging.outputs import parquet
from sigrl.tagging.outputs.codecs import Codec, CsvCodec, JsonlCodec
from sigrl.tagging.outputs.formats import journal_path, output_format
from sigrl.tagging.records import Record, path_key

log = logging.getLogger(__name__)

class Output:
    """An open output: `done` holds path_key() of every image already recorded (when resuming)."""

    def __init__(self, path: Path, fmt: str, sink: "_AppendFile", codec: "Codec", done: set[str], repaired_bytes: int) -> None:
        self.path, self.format = path, fmt
        self.done, self.repaired_bytes = done, repaired_bytes
        self._sink, self._codec = sink, codec
        self.written = 0
        self.score_labels: list[str] | None = None  # Parquet: stored in the file's key-value metadata

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
            journal = journal_path(self.path)
            parquet.finalize(self.path, journal, list(JsonlCodec().iter_records(journal)) if journal.exists() else [],
                             self.score_labels)

    def __enter__(self) -> "Output":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_output(path: str | os.PathLike[str], resume: bool = False, overwrite: bool = False, fsync_interval: float = 10.0,
                score_labels: Sequence[str] | None = None) -> Output:
    """Opens `path` for appending records; see the module docstring for the guarantees.

    Without `resume`, an existing output is an error unless `overwrite` (which replaces it).
    `score_labels`: the labels of the records' `scores` lists (--scores all), which a Parquet
    output also keeps in its key-value metadata (parquet.SCORE_LABELS_KEY).
    """
    path = Path(path)
    fmt = output_format(path)
    if resume and overwrite:
        raise SigrlError("--resume continues an output and --overwrite replaces it; choose one")
    if fmt == "parquet":
        parquet.require_pyarrow()
    file = journal_path(path) if fmt == "parquet" else path
    existing = [p for p in {path, file} if p.exists()]
    if existing and not (resume or overwrite):
        raise SigrlError(f"{path} already exists; pass --resume to continue it or --overwrite to replace it")
    path.parent.mkdir(parents=True, exist_ok=True)
    if overwrite:
        for p in existing:
            p.unlink()
    codec: Codec = CsvCodec() if fmt == "csv" else JsonlCodec()
    sink = _AppendFile(file, fsync_interval)
    try:
        done, keep = codec.scan(file) if file.exists() else (set(), 0)
        repaired = sink.truncate_to(keep)
        if repaired:
            log.warning("%s: cut %d bytes of an incomplete last record", file, repaired)
        if fmt == "parquet" and path.exists():
            done.update(path_key(r["path"]) for r in parquet.read_parquet(path))
        if sink.size() == 0:
            sink.append(codec.header())
    except BaseException:
        sink.close()
        raise
    out = Output(path, fmt, sink, codec, done, repaired)
    out.score_labels = None if score_labels is None else list(score_labels)
    return out


def holds_records(path: str | os.PathLike[str]) -> bool:
    """True when the output at `path` holds at least one record (a foreign file is refused)."""
    path = Path(path)
    fmt = output_format(path)
    if fmt == "parquet" and path.exists():
        return True  # a finished Parquet output is written only with its records
    file = journal_path(path) if fmt == "parquet" else path
    if not file.is_file():
        return False
    codec: Codec = CsvCodec() if fmt == "csv" else JsonlCodec()
    return bool(codec.scan(file)[0])


def read_records(path: str | os.PathLike[str]) -> list[Record]:
    """All records of an output file (any format), e.g. for tests and downstream tools."""
    path = Path(path)
    fmt = output_format(path)
    if fmt == "parquet":
        return parquet.read_parquet(path)
    codec: Codec = CsvCodec() if fmt == "csv" else JsonlCodec()
    return list(codec.iter_records(path))


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
