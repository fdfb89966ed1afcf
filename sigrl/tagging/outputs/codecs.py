"""How records are laid out in an append-only file (JSON Lines, CSV), and how a file is checked
before it is continued: every complete record found, a torn tail of ours cut, anything else refused.

JSON Lines files are written so that tools which take a schema from the first lines they read
(Hugging Face `datasets.load_dataset("json", ...)`) load several of them together: an ok record's
`error` is "" (as in CSV), not null, so that a file without failures has a string column too; and
`meta` (--keep-meta) is JSON text (as in Parquet), whose shape may differ from sample to sample
and from file to file. Both read back as before (None; a dict); files written with null errors
and meta objects read as they always did.
"""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

from sigrl.errors import SigrlError
from sigrl.tagging.records import Record, loaded_record, path_key, stored_record

CSV_COLUMNS = ("path", "status", "error", "tags", "scores", "path_bytes")
# Written before path_bytes existed: still readable, not resumable (its non-UTF-8 names are lossy).
_OLD_CSV_COLUMNS = CSV_COLUMNS[:5]
_RECORD_KEYS = frozenset({"path", "tags", "scores", "status", "error"})
_JSONL_START = b'{"path": '  # every record line starts so (json.dumps of a Record, path first)


class Codec:
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


class JsonlCodec(Codec):
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
    stored = stored_record(record)
    if stored["error"] is None:
        stored["error"] = ""
    if "meta" in stored:
        stored["meta"] = json.dumps(stored["meta"], ensure_ascii=False, allow_nan=False)
    text = json.dumps(stored, ensure_ascii=False, allow_nan=False) + "\n"
    return text.encode("utf-8", "backslashreplace")  # only a surrogate in an error text needs it


def _parse_json_record(line: bytes) -> Record | None:
    try:
        record = json.loads(line)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    if not isinstance(record, dict) or not _RECORD_KEYS <= record.keys() or not isinstance(record["path"], str):
        return None
    if record["error"] == "":
        record["error"] = None
    if isinstance(record.get("meta"), str):
        try:
            record["meta"] = json.loads(record["meta"])
        except json.JSONDecodeError:
            return None
    try:
        return loaded_record(record)
    except ValueError:
        return None


class CsvCodec(Codec):
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
