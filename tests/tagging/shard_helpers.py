"""Building WebDataset tar shards and Parquet image tables for tests."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path
from typing import Iterable


def write_tar(path: Path, samples: Iterable[tuple[str, dict[str, bytes]]]) -> Path:
    """A tar of samples: (key, {extension: bytes}), members in the order given."""
    with tarfile.open(path, "w", format=tarfile.USTAR_FORMAT) as tar:
        for key, members in samples:
            for ext, data in members.items():
                info = tarfile.TarInfo(f"{key}.{ext}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return path


def image_samples(folder: Path, with_meta: bool = False) -> list[tuple[str, dict[str, bytes]]]:
    """One sample per image file of `folder` (sorted), keyed by the file's stem."""
    samples = []
    for file in sorted(p for p in folder.iterdir() if p.is_file()):
        members = {file.suffix.lstrip(".").lower(): file.read_bytes()}
        if with_meta:
            members["json"] = json.dumps({"file": file.name}).encode()
            members["txt"] = f"caption of {file.stem}".encode()
        samples.append((file.stem, members))
    return samples


def write_table(path: Path, images: list[bytes | None], layout: str, column: str = "image", row_group_size: int = 4) -> Path:
    """A Parquet table with the images in `column`: layout "struct" ({bytes, path}) or "binary"."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    if layout == "struct":
        values = [None if b is None else {"bytes": b, "path": f"img{i}.png"} for i, b in enumerate(images)]
        type_ = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
    else:
        values, type_ = images, pa.binary()
    table = pa.table({column: pa.array(values, type=type_), "label": pa.array([f"row{i}" for i in range(len(images))])})
    pq.write_table(table, path, row_group_size=row_group_size)
    return path
