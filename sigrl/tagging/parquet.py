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
from sigrl.tagging.records import Record

INSTALL_HINT = 'Parquet output needs pyarrow: pip install "sigrl[parquet]" (or pip install pyarrow)'


def require_pyarrow() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet  # noqa: F401
    except ImportError:
        raise SigrlError(INSTALL_HINT) from None
    return pyarrow


def _schema(pa: Any) -> Any:
    tag = pa.struct([("label", pa.string()), ("score", pa.float32())])
    return pa.schema(
        [
            ("path", pa.string()),
            ("tags", pa.list_(tag)),
            ("scores", pa.list_(pa.float32())),
            ("status", pa.string()),
            ("error", pa.string()),
        ]
    )


def read_parquet(path: str | os.PathLike[str]) -> list[Record]:
    pa = require_pyarrow()
    try:
        table = pa.parquet.read_table(path)
    except (OSError, pa.ArrowInvalid) as err:
        raise SigrlError(f"{path}: not a readable Parquet file ({err}); delete it or choose another output") from None
    records = table.to_pylist()
    for r in records:  # float32 storage: give back the 6-digit values that were written
        r["tags"] = [{"label": t["label"], "score": _round(t["score"])} for t in r["tags"] or []]
        if r["scores"] is not None:
            r["scores"] = [_round(s) for s in r["scores"]]
    return records  # type: ignore[return-value]


def _round(value: float | None) -> float | None:
    return None if value is None else float(f"{value:.6g}")


def finalize(out: Path, journal: Path) -> None:
    """Writes `out` from any earlier `out` plus the journal, atomically, then drops the journal."""
    pa = require_pyarrow()
    records: list[dict] = read_parquet(out) if out.exists() else []  # type: ignore[assignment]
    if journal.exists():
        with open(journal, "rb") as f:
            for line in f:
                if line.endswith(b"\n"):  # a torn tail cannot exist after a clean close; be safe
                    records.append(json.loads(line))
    table = pa.Table.from_pylist(records, schema=_schema(pa))
    tmp = out.with_name(out.name + f".tmp{os.getpid()}")
    pa.parquet.write_table(table, tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, out)
    journal.unlink(missing_ok=True)
