"""`sigrl merge`: the shards of a sharded run's folder joined into one file, in shard order."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

from sigrl.errors import SigrlError
from sigrl.tagging.outputs.shards import MANIFEST
from sigrl.tagging.outputs.writer import open_output, read_records
from sigrl.tagging.records import Record, path_key
from sigrl.tagging.runs.metafile import read_meta, write_meta


@dataclass
class MergeSummary:
    output: Path
    shards: int
    records: int
    errors: int


def read_manifest(out_dir: str | os.PathLike[str]) -> dict[str, Any]:
    path = Path(out_dir) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SigrlError(f"{out_dir}: no {MANIFEST}; pass the folder written by `sigrl tag --engine ray`") from None
    except json.JSONDecodeError as err:
        raise SigrlError(f"{path}: not valid JSON ({err}); rerun the tag command with --resume to rewrite it") from None


def iter_shard_records(out_dir: str | os.PathLike[str], allow_partial: bool = False) -> Iterator[list[Record]]:
    """The records of each finished shard, in shard order; unfinished shards are an error unless
    `allow_partial`."""
    out_dir = Path(out_dir)
    data = read_manifest(out_dir)
    todo = [e for e in data["shards"] if e.get("status") != "done" or not (out_dir / e["file"]).is_file()]
    if todo and not allow_partial:
        raise SigrlError(
            f"{out_dir}: {len(todo)} of {len(data['shards'])} shards are not finished (first: {todo[0]['file']}); "
            "rerun the tag command with --resume, or merge what is there with --partial"
        )
    for entry in data["shards"]:
        if entry in todo:
            continue
        yield read_records(out_dir / entry["file"])


def merge_shards(out_dir: str | os.PathLike[str], output: str | os.PathLike[str], overwrite: bool = False,
                 allow_partial: bool = False) -> MergeSummary:
    """Joins the shards of `out_dir` into one file (format from its extension: .jsonl, .csv, .parquet)."""
    output = Path(output)
    if Path(out_dir).resolve() == output.resolve():
        raise SigrlError(f"{output}: the merged file cannot replace the shard folder it is read from; pick another name")
    summary = MergeSummary(output=output, shards=0, records=0, errors=0)
    seen: set[str] = set()
    meta = read_meta(out_dir)
    decision = (meta or {}).get("decision") or {}
    score_labels = meta.get("labels") if meta is not None and decision.get("scores") == "all" else None
    with open_output(output, overwrite=overwrite, score_labels=score_labels) as out:
        for records in iter_shard_records(out_dir, allow_partial):
            for r in records:
                key = path_key(r["path"])
                if key in seen:  # cannot happen with shards from one plan; a hand-edited folder could
                    raise SigrlError(f"{out_dir}: {r['path']} appears in two shards; delete the folder's stale shards and rerun")
                seen.add(key)
            out.write(records)
            summary.shards += 1
            summary.records += len(records)
            summary.errors += sum(1 for r in records if r["status"] == "error")
    if meta is not None:  # the merged file describes itself like a local run's output
        write_meta(output, {**meta, "records": summary.records, "merged_from": os.fspath(out_dir)})
    return summary
