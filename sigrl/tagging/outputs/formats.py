"""Output formats, chosen by the file extension, and the names of an output's companion files."""

from __future__ import annotations

import os
from pathlib import Path

from sigrl.errors import SigrlError

FORMATS = {".jsonl": "jsonl", ".ndjson": "jsonl", ".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def output_format(path: str | os.PathLike[str]) -> str:
    suffix = Path(path).suffix.lower()
    if suffix not in FORMATS:
        raise SigrlError(f"{path}: unknown output format {suffix or '(no extension)'!r}; use one of {', '.join(FORMATS)}")
    return FORMATS[suffix]


def journal_path(out: str | os.PathLike[str]) -> Path:
    return Path(os.fspath(out) + ".journal.jsonl")
