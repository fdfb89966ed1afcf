"""One output record per input image, whatever the output format.

    {"path": str, "tags": [{"label": str, "score": float}, ...], "scores": [float, ...] | null,
     "status": "ok" | "error", "error": str | null}

`scores` holds every label's score in label order (the order is in the run's metadata sidecar)
when the run asked for `--scores all`, else null. Scores keep 6 significant digits: enough to
rank and threshold, and it keeps files small.

File names that are not valid UTF-8 (possible on Linux) are held in memory the Python way, as a
str with surrogate escapes, and stored the same way in every format (see `stored_record`): `path`
is valid UTF-8 text in which each undecodable byte reads `\\xNN`, and `path_bytes` holds the exact
name (base64 in JSON Lines and CSV, raw bytes in Parquet). `path_bytes` is absent (JSON Lines),
empty (CSV) or null (Parquet) for every other name, so ordinary files look as before.

Records of tar samples (`SHARD.tar#KEY`) and table rows (`FILE.parquet#ROW`) have the same fields;
with `--keep-meta` every record of the run also holds `meta`: for a tar sample, what its members
other than images held (`{"json": ..., "txt": ..., "__image__": "KEY.jpg"}`, see
sigrl.tagging.inputs.webdataset), else `{}`. Records of runs without it have no such key.
"""

from __future__ import annotations

import base64
import binascii
import math
import os
from typing import Any, Mapping, Sequence, TypedDict

import numpy as np

from sigrl.tagging.decisions.rule import DecisionRule, decide


class Tag(TypedDict):
    label: str
    score: float


class Record(TypedDict):
    path: str
    tags: list[Tag]
    scores: list[float | None] | None
    status: str
    error: str | None


def round_score(value: float) -> float | None:
    """6 significant digits; None for NaN/inf, which JSON cannot hold."""
    value = float(value)
    return float(f"{value:.6g}") if math.isfinite(value) else None


def ok_record(path: str | os.PathLike[str], tags: Sequence[tuple[str, float]], scores: Sequence[float] | None = None) -> Record:
    return Record(
        path=os.fspath(path),
        tags=[Tag(label=label, score=round_score(score)) for label, score in tags],
        scores=None if scores is None else [round_score(s) for s in scores],
        status="ok",
        error=None,
    )


def error_record(path: str | os.PathLike[str], reason: str) -> Record:
    return Record(path=os.fspath(path), tags=[], scores=None, status="error", error=reason)


def batch_records(
    paths: Sequence[str | os.PathLike[str]],
    scores: np.ndarray,
    rule: DecisionRule,
    failures: Sequence[tuple[str | os.PathLike[str], str]] = (),
    failure_rows: Sequence[int] | None = None,
) -> list[Record]:
    """Records for one batch: scores [b, N] row i belongs to paths[i]; one per failure, at its
    position `failure_rows[j]` among the batch's inputs (input order), else after the others."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(paths) != scores.shape[0]:
        raise ValueError(f"{len(paths)} paths but {scores.shape[0]} score rows")
    chosen = decide(scores, rule) if len(paths) else []
    keep_all = rule.scores_mode == "all"
    records = [ok_record(p, tags, row if keep_all else None) for p, tags, row in zip(paths, chosen, scores)]
    errors = [error_record(p, reason) for p, reason in failures]
    if failure_rows is None:
        return records + errors
    at = dict(zip(failure_rows, errors))
    ok = iter(records)
    return [at[i] if i in at else next(ok) for i in range(len(records) + len(errors))]


def with_meta(records: list[Record], meta: Mapping[str, Mapping[str, Any]], every: bool = False) -> list[Record]:
    """Adds `meta[path]` to the records whose path has some (--keep-meta); with `every`, the others
    get an empty one, so that every record of a --keep-meta run has the field. Returns `records`."""
    if meta or every:
        for record in records:
            found = meta.get(os.fspath(record["path"]))
            if found is not None or every:
                record["meta"] = dict(found or {})  # type: ignore[typeddict-unknown-key]
    return records


def path_key(path: str | os.PathLike[str]) -> str:
    """The identity used to remove duplicates and to match resumed records: absolute, normalised,
    symlinks not resolved (two links to one file are two names a user chose)."""
    return os.path.normpath(os.path.abspath(os.fspath(path)))


def path_text(path: str | os.PathLike[str]) -> str:
    """The path as valid Unicode for people and tools: undecodable bytes of the name read `\\xNN`."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def raw_path_bytes(path: str | os.PathLike[str]) -> bytes | None:
    """The name's bytes when they are not valid UTF-8 (the text form alone is then lossy), else None."""
    raw = os.fsencode(path)
    try:
        raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw
    return None


def stored_record(record: Record) -> dict:
    """The record as written to a file: valid Unicode throughout, `path_bytes` added where needed."""
    raw = raw_path_bytes(record["path"])
    if raw is None:
        return dict(record)
    rest = {k: v for k, v in record.items() if k != "path"}
    return {"path": path_text(raw), "path_bytes": base64.b64encode(raw).decode("ascii"), **rest}


def loaded_record(stored: dict) -> Record:
    """The inverse of stored_record: the exact name back from `path_bytes` when it is there."""
    encoded = stored.pop("path_bytes", None)
    if encoded:
        try:
            stored["path"] = os.fsdecode(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError, TypeError):
            raise ValueError(f"path_bytes {encoded!r} is not base64") from None
    return stored  # type: ignore[return-value]
