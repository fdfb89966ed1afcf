"""One image inside a container (a WebDataset tar shard, a Parquet table): its record path and bytes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping


@dataclass(frozen=True)
class Member:
    """An image that is not a file of its own.

    `path` is the record's path: `SHARD.tar#KEY` for a tar sample, `FILE.parquet#ROW` for a table
    row, or the container itself for a failure of the whole container (see sigrl.tagging.inputs).
    `data` holds the encoded image, the Path of a file a table row names, or pixels a caller already
    has (a PIL image or a uint8 array, through the Python API); None when `error` says why there is
    none; `meta` what the
    record carries besides the tags (`--keep-meta`), or None.
    """

    path: str
    data: Any = None  # bytes, Path, PIL.Image.Image or np.ndarray
    error: str | None = None
    meta: Mapping[str, Any] | None = None
