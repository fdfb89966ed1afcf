"""Parquet image tables as tagging input: one Member per row, read one row group at a time.

Two layouts of the image column are read:
- the Hugging Face `Image` feature, a struct {bytes: binary, path: string}: the bytes, or where
  they are null (what `to_parquet` writes for a dataset made from image files) the file `path`
  names, a relative path taken from the table's own folder; a missing file is an error record;
- a plain binary (or large binary) column of encoded images.

`--image-column` names the column; without it, a column named "image" or "img" is taken, else the
only column of either layout. A row's record path is `FILE.parquet#ROW` (ROW counts from 0 in
the file). A row with no bytes, or bytes that are not an image, gets its own error record; a row
group that cannot be read gives each of its rows an error record and the next group is read.

Only the image column is read, one row group at a time, so memory is bounded by the largest row
group, whatever the file size. pyarrow is imported here only: `pip install "sigrl[parquet]"`.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Callable, Iterator

from sigrl.errors import SigrlError
from sigrl.optional import require
from sigrl.tagging.inputs.member import Member

log = logging.getLogger(__name__)

INSTALL_HINT = 'Parquet inputs need pyarrow: pip install "sigrl[parquet]" (or pip install pyarrow)'
PREFERRED_COLUMNS = ("image", "img")


def require_pyarrow() -> Any:
    return require("pyarrow", INSTALL_HINT, "parquet")


def row_path(file: str, row: int) -> str:
    """The record path of a table row: `FILE#ROW`."""
    return f"{file}#{row}"


def _layout(pa: Any, type_: Any) -> str | None:
    """'struct' (Hugging Face Image), 'binary', or None for any other column type."""
    if pa.types.is_binary(type_) or pa.types.is_large_binary(type_):
        return "binary"
    if pa.types.is_struct(type_):
        names = {type_.field(i).name: type_.field(i).type for i in range(type_.num_fields)}
        if "bytes" in names and (pa.types.is_binary(names["bytes"]) or pa.types.is_large_binary(names["bytes"])):
            return "struct"
    return None


def image_column(file: str, schema: Any, wanted: str | None) -> tuple[str, str]:
    """(column, layout) holding the images of a table; a usage error when none or several fit."""
    pa = require_pyarrow()
    fitting = [(f.name, _layout(pa, f.type)) for f in schema if _layout(pa, f.type)]
    if wanted is not None:
        for f in schema:
            if f.name == wanted:
                layout = _layout(pa, f.type)
                if layout is None:
                    raise SigrlError(f"{file}: column {wanted!r} is {f.type}, not image bytes (binary, or a "
                                     "{bytes, path} struct)")
                return wanted, layout
        raise SigrlError(f"{file}: no column {wanted!r}; it has {', '.join(schema.names)}")
    for name in PREFERRED_COLUMNS:
        for column, layout in fitting:
            if column == name:
                return column, layout
    if len(fitting) == 1:
        return fitting[0]
    if not fitting:
        raise SigrlError(f"{file}: no column of image bytes (binary, or a {{bytes, path}} struct) among "
                         f"{', '.join(schema.names)}")
    raise SigrlError(f"{file}: several columns could hold the images ({', '.join(c for c, _ in fitting)}); "
                     "choose one with --image-column")


def has_image_column(file: str, wanted: str | None) -> bool:
    """Whether a table holds images (`wanted`, or a column found by layout); an unreadable file
    counts as one that does, so that the run gives it an error record."""
    try:
        image_column(file, open_table(file).schema_arrow, wanted)
    except _Unreadable:
        return True
    except SigrlError:
        return False
    return True


def open_table(file: str) -> Any:
    pa = require_pyarrow()
    try:
        return pa.parquet.ParquetFile(file)
    except (OSError, pa.ArrowException) as err:
        raise _Unreadable(f"not a readable Parquet file ({err})") from None


class _Unreadable(Exception):
    pass


def check_table(file: str, column: str | None) -> None:
    """Fails early (before a model loads) when a readable table has no usable image column."""
    try:
        table = open_table(file)
    except _Unreadable:
        return  # the run gives the file an error record
    image_column(file, table.schema_arrow, column)


def count_rows(file: str, is_done: Callable[[str], bool]) -> tuple[int, int]:
    """(rows, rows already recorded) of a table, from its metadata."""
    try:
        rows = open_table(file).metadata.num_rows
    except _Unreadable:
        return 1, int(is_done(file))
    return rows, sum(1 for i in range(rows) if is_done(row_path(file, i)))


def iter_rows(file: str, column: str | None = None, skip: Callable[[str], bool] = lambda path: False) -> Iterator[Member]:
    """One Member per row of the Parquet `file`, in row order; see the module docstring."""
    try:
        table = open_table(file)
    except _Unreadable as err:
        if not skip(file):
            yield Member(file, error=str(err))
        return
    name, layout = image_column(file, table.schema_arrow, column)
    start = 0
    for group in range(table.metadata.num_row_groups):
        rows = table.metadata.row_group(group).num_rows
        paths = [row_path(file, start + i) for i in range(rows)]
        if all(skip(p) for p in paths):
            start += rows
            continue
        try:
            values = table.read_row_group(group, columns=[name]).column(0).to_pylist()
        except Exception as err:  # pyarrow's errors for damaged pages vary by codec and version
            log.warning("%s: row group %d unreadable (%s)", file, group, err)
            values = [_Unreadable(f"unreadable row group {group}: {err}")] * rows
        for path, value in zip(paths, values):
            if not skip(path):
                yield _row_member(path, value, layout, os.path.dirname(file))
        start += rows


def _row_member(path: str, value: Any, layout: str, folder: str) -> Member:
    if isinstance(value, _Unreadable):
        return Member(path, error=str(value))
    if layout == "struct":
        stored = (value or {}).get("path")
        value = (value or {}).get("bytes")
        if value is None and stored:
            return _named_file(path, stored, folder)
        if value is None:
            return Member(path, error="no image bytes in this row, and no path")
    if value is None:
        return Member(path, error="no image bytes in this row (null)")
    return Member(path, data=bytes(value))


def _named_file(path: str, stored: str, folder: str) -> Member:
    """A row whose image struct holds a path and no bytes: the file it names (from the table's folder)."""
    file = stored if os.path.isabs(stored) else os.path.join(folder, stored)
    if not os.path.isfile(file):
        return Member(path, error=f"the row names the image file {stored}, which does not exist ({file})")
    return Member(path, data=Path(file))


def table_files(folder: Path) -> list[str]:
    """The Parquet files under `folder`, sorted (a Hugging Face dataset folder, a partitioned table)."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        found.extend(os.path.join(root, f) for f in files if f.lower().endswith((".parquet", ".pq")))
    return sorted(os.path.normpath(f) for f in found)
