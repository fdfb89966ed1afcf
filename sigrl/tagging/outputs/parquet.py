"""Parquet output, finished from the JSON Lines journal that the run appends to.

pyarrow is optional (`pip install "sigrl[parquet]"`); it is imported only here, and checked
before a run starts so that a missing install fails in the first second, not after the run.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from sigrl.errors import SigrlError
from sigrl.optional import require
from sigrl.tagging.records import Record, path_text, raw_path_bytes

INSTALL_HINT = 'Parquet output needs pyarrow: pip install "sigrl[parquet]" (or pip install pyarrow)'
# With --scores all: the labels of each record's `scores` list, in order, as a JSON list, in the
# file's key-value metadata, so that the file explains itself without its .meta.json sidecar.
SCORE_LABELS_KEY = "sigrl.score_labels"


def require_pyarrow() -> Any:
    return require("pyarrow", INSTALL_HINT, "parquet")


def _schema(pa: Any, with_meta: bool = False) -> Any:
    tag = pa.struct([("label", pa.string()), ("score", pa.float32())])
    return pa.schema(
        [
            ("path", pa.string()),
            ("tags", pa.list_(tag)),
            ("scores", pa.list_(pa.float32())),
            ("status", pa.string()),
            ("error", pa.string()),
            ("path_bytes", pa.binary()),  # the exact name where it is not valid UTF-8, else null
        ]
        # --keep-meta: a tar sample's other members (sigrl.tagging.inputs.webdataset), as JSON text; only then
        + ([("meta", pa.string())] if with_meta else [])
    )


def _check_columns(pa: Any, path: str | os.PathLike[str], schema: Any) -> None:
    """Refuses a Parquet file that sigrl did not write (path_bytes may be missing: older files)."""
    want = _schema(pa)
    for name in ("path", "tags", "scores", "status", "error"):
        index = schema.get_field_index(name)
        if index < 0 or not schema.field(index).type.equals(want.field(name).type):
            raise SigrlError(
                f"{path}: not a sigrl Parquet output (column {name!r} missing or of another type); "
                "choose another output file, or pass --overwrite to replace it"
            )


def read_parquet(path: str | os.PathLike[str]) -> list[Record]:
    pa = require_pyarrow()
    try:
        table = pa.parquet.read_table(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise SigrlError(f"{path}: not a readable Parquet file ({err}); delete it or choose another output") from None
    _check_columns(pa, path, table.schema)
    records = table.to_pylist()
    for r in records:  # float32 storage: give back the 6-digit values that were written
        raw = r.pop("path_bytes", None)
        if raw is not None:
            r["path"] = os.fsdecode(raw)
        meta = r.pop("meta", None)
        if meta is not None:
            r["meta"] = json.loads(meta)
        r["tags"] = [{"label": t["label"], "score": _round(t["score"])} for t in r["tags"] or []]
        if r["scores"] is not None:
            r["scores"] = [_round(s) for s in r["scores"]]
    return records  # type: ignore[return-value]


def _round(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.6g}")


def _row(record: Record) -> dict:
    """The Parquet row of a record: path as valid text, the exact bytes beside it where needed."""
    row = {**record, "path": path_text(record["path"]), "path_bytes": raw_path_bytes(record["path"])}
    if "meta" in row:
        row["meta"] = json.dumps(row["meta"], ensure_ascii=False)
    return row


def finalize(out: Path, journal: Path, journal_records: list[Record], score_labels: list[str] | None = None) -> None:
    """Writes `out` from any earlier `out` plus the journal's records (read by the writer, which
    owns the JSON Lines format), atomically, then drops the journal; `score_labels` go into the
    file's key-value metadata (SCORE_LABELS_KEY)."""
    pa = require_pyarrow()
    records: list[Record] = read_parquet(out) if out.exists() else []
    records.extend(journal_records)
    with_meta = any("meta" in r for r in records)
    schema = _schema(pa, with_meta)
    if score_labels is not None:
        schema = schema.with_metadata({SCORE_LABELS_KEY: json.dumps(score_labels, ensure_ascii=False)})
    table = pa.Table.from_pylist([_row(r) for r in records], schema=schema)
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    pa.parquet.write_table(table, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, out)
    journal.unlink(missing_ok=True)
