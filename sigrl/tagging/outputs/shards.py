"""Sharded tag output: a folder of shard files, a manifest, and merging them into one file.

    tags.jsonl/                      the output "file" of a sharded run is a folder
      manifest.json                  the plan: shard size, format, one entry per shard
      shard-00000-3f2a9c1d04e1.jsonl one file per shard, written whole or not at all
      ...
    tags.jsonl.meta.json             the same run metadata sidecar as the local engine's

The image list (sorted by `sources.discover`) is cut into fixed shards of `shard_size` images;
each WebDataset tar shard or Parquet file of the input is one shard of its own (`kind` "tar" or
"parquet", its path the shard's only entry), whose digest covers the file's size and mtime, so a
rewritten input file is tagged again.
A shard's file name carries a digest of its image list, so a shard file can only ever stand for
exactly that list: when the inputs change, shards whose list changed get new names and are
redone, the others are kept.

Each shard file is written to a temporary name in the same folder and renamed into place
(`os.replace`, atomic on POSIX). A task that dies, or is retried by the scheduler, can therefore
never leave a half shard or a shard twice: the second writer replaces the first's file with
identical content. A shard is *finished* when its file exists and either the manifest recorded
its size, or (the driver died before it could note it) the file holds exactly the shard's images.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

from sigrl.atomic import write_text_atomic
from sigrl.errors import SigrlError
from sigrl.tagging.outputs.formats import output_format
from sigrl.tagging.outputs.writer import open_output, read_records
from sigrl.tagging.records import Record, path_key, path_text
from sigrl.tagging.runs.metafile import json_text

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1
SHARD_PREFIX = "shard-"
TMP_PREFIX = ".tmp-"
# Shards are written in these formats (CSV output is a merge target only: it is a poor format to
# read back at scale, and the shards are an intermediate).
SHARD_FORMATS = {"jsonl": ".jsonl", "parquet": ".parquet"}


@dataclass(frozen=True)
class Shard:
    """One fixed slice of the sorted image list, or one input container (kind "tar"/"parquet")."""

    index: int
    paths: tuple[str, ...]
    digest: str  # of the path keys, in order (a container's: of its path, size and mtime)
    kind: str = "files"

    def file_name(self, suffix: str) -> str:
        return f"{SHARD_PREFIX}{self.index:05d}-{self.digest}{suffix}"


def shard_format(out_dir: str | os.PathLike[str]) -> tuple[str, str]:
    """(format, shard suffix) from the output folder's name: tags.parquet/ -> Parquet shards.

    A name without a known extension gets JSON Lines shards; `.csv` is refused with the fix.
    """
    suffix = Path(out_dir).suffix.lower()
    if not suffix:
        return "jsonl", ".jsonl"
    fmt = output_format(out_dir)
    if fmt not in SHARD_FORMATS:
        raise SigrlError(
            f"{out_dir}: a sharded run writes JSON Lines or Parquet shards; name the output folder "
            f"*.jsonl or *.parquet and turn it into {suffix} afterwards with `sigrl merge {out_dir} --out FILE{suffix}`"
        )
    return fmt, SHARD_FORMATS[fmt]


def plan_shards(paths: Sequence[str | os.PathLike[str]], shard_size: int) -> list[Shard]:
    """Fixed shards of `paths` (already in their deterministic order)."""
    if shard_size < 1:
        raise SigrlError(f"shard size must be >= 1, got {shard_size}")
    return [make_shard(i, paths[start : start + shard_size]) for i, start in enumerate(range(0, len(paths), shard_size))]


def _digest(paths: Sequence[str]) -> str:
    h = hashlib.sha256()
    for p in paths:
        h.update(path_key(p).encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()[:12]


def container_shard(index: int, path: str, kind: str) -> Shard:
    """The shard that stands for one whole tar shard or Parquet file of the input."""
    try:
        st = os.stat(path)
        stamp = f"{st.st_size}:{st.st_mtime_ns}"
    except OSError:
        stamp = "missing"
    return Shard(index, (path,), _digest([f"{path}\0{kind}\0{stamp}"]), kind)


def owns(shard: Shard, record_path: str) -> bool:
    """True when a record of `record_path` belongs in `shard`."""
    if shard.kind == "files":
        return path_key(record_path) in {path_key(p) for p in shard.paths}
    own = path_key(shard.paths[0])
    key = path_key(record_path)
    return key == own or key.startswith(own + "#")


def write_shard(out_dir: str | os.PathLike[str], shard: Shard, records: Sequence[Record], suffix: str,
                score_labels: Sequence[str] | None = None) -> dict[str, Any]:
    """Writes one shard file atomically; returns its manifest entry (`score_labels`: see open_output)."""
    out_dir = Path(out_dir)
    final = out_dir / shard.file_name(suffix)
    # The temporary keeps the real extension: the writers pick the format from it.
    tmp = out_dir / f"{TMP_PREFIX}{uuid.uuid4().hex}-{final.name}"
    try:
        with open_output(tmp, overwrite=True, score_labels=score_labels) as out:
            out.write(records)
        os.replace(tmp, final)
    finally:
        for leftover in (tmp, Path(os.fspath(tmp) + ".journal.jsonl")):
            leftover.unlink(missing_ok=True)
    errors = sum(1 for r in records if r["status"] == "error")
    images = len(shard.paths) if shard.kind == "files" else len(records)
    return {"index": shard.index, "file": final.name, "images": images, "records": len(records),
            "errors": errors, "bytes": final.stat().st_size}


class Manifest:
    """The shard plan of one output folder and which shards are finished."""

    def __init__(self, out_dir: Path, fmt: str, shard_size: int, shards: list[Shard], entries: dict[int, dict]) -> None:
        self.out_dir, self.format, self.shard_size = out_dir, fmt, shard_size
        self.shards, self.entries = shards, entries  # entries: index -> manifest entry of a finished shard
        self.suffix = SHARD_FORMATS[fmt]

    @property
    def path(self) -> Path:
        return self.out_dir / MANIFEST

    def todo(self) -> list[Shard]:
        return [s for s in self.shards if s.index not in self.entries]

    def record_count(self) -> int:
        return sum(e["records"] for e in self.entries.values())

    def error_count(self) -> int:
        return sum(e["errors"] for e in self.entries.values())

    def finish(self, entry: dict[str, Any]) -> None:
        self.entries[entry["index"]] = entry

    def save(self) -> None:
        data = {
            "version": MANIFEST_VERSION,
            "format": self.format,
            "shard_size": self.shard_size,
            "images": sum(len(s.paths) for s in self.shards),
            "finished": len(self.entries),
            "shards": [
                {"index": s.index, "file": s.file_name(self.suffix), "digest": s.digest, "images": len(s.paths),
                 **({"kind": s.kind} if s.kind != "files" else {}),
                 "first": path_text(s.paths[0]) if s.paths else None, **self._done_fields(s.index)}
                for s in self.shards
            ],
        }
        write_text_atomic(self.path, json_text(data), durable=True)

    def _done_fields(self, index: int) -> dict[str, Any]:
        entry = self.entries.get(index)
        if entry is None:
            return {"status": "todo"}
        return {"status": "done", "records": entry["records"], "errors": entry["errors"], "bytes": entry["bytes"]}


def make_shard(index: int, paths: Sequence[str | os.PathLike[str]]) -> Shard:
    chunk = tuple(os.fspath(p) for p in paths)
    return Shard(index, chunk, _digest(chunk))


def open_manifest(out_dir: str | os.PathLike[str], shards: list[Shard], shard_size: int,
                  resume: bool = False, overwrite: bool = False) -> Manifest:
    """The manifest for a run of `shards` (from `plan_shards`) into `out_dir`, with the finished
    shards found there.

    Without `resume`, an existing output is an error unless `overwrite` (which empties it).
    """
    out_dir = Path(out_dir)
    fmt, _ = shard_format(out_dir)
    if resume and overwrite:
        raise SigrlError("--resume continues an output and --overwrite replaces it; choose one")
    if out_dir.exists() and not out_dir.is_dir():
        raise SigrlError(f"{out_dir} is a file; a sharded run writes a folder. Choose another --out or delete it")
    if out_dir.exists() and any(out_dir.iterdir()) and not (resume or overwrite):
        raise SigrlError(f"{out_dir} already exists; pass --resume to continue it or --overwrite to replace it")
    out_dir.mkdir(parents=True, exist_ok=True)
    if overwrite:
        _clear(out_dir)
    _remove_temporaries(out_dir)
    recorded = _read_entries(out_dir / MANIFEST)
    manifest = Manifest(out_dir, fmt, shard_size, shards, {})
    for shard in shards:
        entry = _finished_entry(out_dir, shard, manifest.suffix, recorded.get(shard.file_name(manifest.suffix)))
        if entry is not None:
            manifest.finish(entry)
    return manifest


def _finished_entry(out_dir: Path, shard: Shard, suffix: str, recorded: dict | None) -> dict[str, Any] | None:
    file = out_dir / shard.file_name(suffix)
    if not file.is_file():
        return None
    size = file.stat().st_size
    if recorded is not None and recorded.get("bytes") == size:
        images = len(shard.paths) if shard.kind == "files" else recorded["records"]
        return {"index": shard.index, "file": file.name, "images": images, "records": recorded["records"],
                "errors": recorded["errors"], "bytes": size}
    # Not noted (the driver died after the rename) or changed since: trust only what it holds.
    try:
        records = read_records(file)
    except SigrlError as err:
        log.warning("%s: unreadable shard, redoing it (%s)", file, err)
        return None
    if shard.kind != "files":  # a container's members are not listed: its records must be its own, once each
        keys = [path_key(r["path"]) for r in records]
        if not records or len(set(keys)) != len(keys) or not all(owns(shard, r["path"]) for r in records):
            log.warning("%s: shard does not hold the records of %s, redoing it", file, shard.paths[0])
            return None
    elif sorted(path_key(r["path"]) for r in records) != sorted(path_key(p) for p in shard.paths):
        log.warning("%s: shard does not hold exactly its %d images, redoing it", file, len(shard.paths))
        return None
    errors = sum(1 for r in records if r["status"] == "error")
    images = len(shard.paths) if shard.kind == "files" else len(records)
    return {"index": shard.index, "file": file.name, "images": images, "records": len(records),
            "errors": errors, "bytes": size}


def _read_entries(path: Path) -> dict[str, dict]:
    """Finished-shard entries of an existing manifest, by file name."""
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        log.warning("%s: unreadable manifest (%s); shards are checked by content instead", path, err)
        return {}
    return {e["file"]: e for e in data.get("shards", []) if e.get("status") == "done"}


def remove_stale(manifest: Manifest) -> list[str]:
    """Deletes shard files that belong to no shard of the current plan (inputs or shard size changed)."""
    wanted = {s.file_name(manifest.suffix) for s in manifest.shards}
    stale = [p for p in manifest.out_dir.glob(f"{SHARD_PREFIX}*") if p.name not in wanted]
    for p in stale:
        p.unlink(missing_ok=True)
    return sorted(p.name for p in stale)


def _clear(out_dir: Path) -> None:
    for p in out_dir.iterdir():
        if p.name == MANIFEST or p.name.startswith((SHARD_PREFIX, TMP_PREFIX)):
            p.unlink()


def _remove_temporaries(out_dir: Path) -> None:
    # Shard files in progress, and the manifest's own temporary (sigrl.atomic names it
    # ".manifest.json.<pid>.<id>.tmp") when a kill -9 landed inside write_text_atomic.
    for pattern in (f"{TMP_PREFIX}*", f".{MANIFEST}.*.tmp"):
        for p in out_dir.glob(pattern):
            p.unlink(missing_ok=True)


