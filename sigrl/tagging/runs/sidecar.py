"""The run's metadata sidecar (`OUT.meta.json`), shared by the local and the Ray engine.

What a run is (run_meta: model, labels, decision rule, backend, decoding), whether an output may be
resumed with it (check_resumable), the history of earlier runs (earlier_runs), and the lifecycle of
this run's entry (recorded_run: "running" from the start, then complete, interrupted or failed).
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, is_dataclass
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, Callable, Iterator, Sequence

import sigrl
from sigrl.errors import SigrlError
from sigrl.tagging.records import path_text
from sigrl.tagging.runs.metafile import meta_path, read_meta, write_meta
from sigrl.tagging.runs.summary import Progress, Summary

if TYPE_CHECKING:
    from sigrl.tagging.spec import TagJob

# Settings that decide what a record says. Resuming an output with any of them changed would mix
# two kinds of records in one file without a trace, so it is refused.
_MUST_MATCH = ("model_hash", "label_hash", "decision")
# The same, for settings that older sidecars lack: a missing one had its default then.
_MUST_MATCH_DEFAULTS = {"keep_meta": False, "image_column": None, "image_ext": None}


def label_hash(labels: Sequence[str], prompt: str) -> str:
    """Identifies the label side of a run: the labels in order and the prompt template."""
    blob = json.dumps({"labels": list(labels), "prompt": prompt}, ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


def run_meta(runner: Any, job: "TagJob", batch: int, workers: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The sidecar's description of a run: the job, and what the runner resolved (backend, hash, ...)."""
    prompt = getattr(runner, "prompt", "")
    labels, decoding = list(job.labels), job.decoding
    return {
        "sigrl_version": sigrl.__version__,
        "model": getattr(runner, "name", type(runner).__name__),
        "model_hash": runner.model_hash,
        "backend": getattr(runner, "backend", ""),
        "backend_reason": getattr(runner, "reason", ""),
        "device": getattr(runner, "device", ""),
        "precision": getattr(runner, "precision", ""),
        "prompt": prompt,
        "labels": labels,
        "label_hash": label_hash(labels, prompt),
        "decision": job.rule.to_dict(),
        "preprocess": _plain(getattr(runner, "preprocess", None)),
        "batch_size": batch,
        "workers": workers,
        "max_pixels": decoding.max_pixels,
        "decode": decoding.mode,
        **job.meta(),
        **(extra or {}),
    }


def _plain(value: Any) -> Any:
    return asdict(value) if is_dataclass(value) else value


def check_resumable(output_path: str | os.PathLike[str], meta: dict[str, Any], has_records: bool) -> dict[str, Any] | None:
    """The earlier run's metadata, after checking that this run may add to its output.

    Without a sidecar nothing shows which model, labels and rule made the records already there,
    so an output that holds any is refused (the sidecar is written before the first record).
    """
    previous = read_meta(output_path)
    if previous is None:
        if has_records:
            raise SigrlError(
                f"{output_path}: cannot resume without {meta_path(output_path).name}, which says what model, labels "
                "and decision rule made its records; pass --overwrite to start over, or tag into a new --out"
            )
        return None
    missing = [key for key in _MUST_MATCH if key not in previous]
    if missing:
        raise SigrlError(
            f"{meta_path(output_path)}: not the metadata of a sigrl tag run (no {', '.join(missing)}); "
            "pass --overwrite to start over, or tag into a new --out"
        )
    changed = [key for key in _MUST_MATCH if _canonical(previous[key]) != _canonical(meta[key])]
    changed += [key for key, default in _MUST_MATCH_DEFAULTS.items()
                if _canonical(previous.get(key, default)) != _canonical(meta.get(key, default))]
    if changed:
        what = {"model_hash": "model", "label_hash": "labels or prompt", "decision": "thresholds/top-k/--scores",
                "keep_meta": "--keep-meta", "image_column": "--image-column",
                "image_ext": "--image-ext"}
        listed = ", ".join(what[k] for k in changed)
        raise SigrlError(
            f"{output_path}: cannot resume with a different {listed} than the run that wrote it "
            f"(see {meta_path(output_path)}); use the same settings, or --overwrite to start over"
        )
    return previous


def earlier_runs(previous: dict[str, Any] | None) -> list[dict[str, Any]]:
    runs = [dict(r) for r in (previous or {}).get("runs", [])]
    for run in runs:
        if run.get("status") == "running":  # it never wrote its final state: it was killed
            run["status"] = "killed"
    return runs


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, default=str)


def save_meta(output_path: str | os.PathLike[str], meta: dict[str, Any], summary: Summary, runs: list, status: str) -> None:
    this_run = {
        "finished_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "status": status,
        "discovered": summary.discovered,
        "skipped": summary.skipped,
        "tagged": summary.tagged,
        "errors": summary.errors,
        "wall_s": round(summary.wall_s, 3),
        "images_per_s": round(summary.images_per_s, 2),
        "label_side": summary.label_side,
        "timings": {k: round(v, 3) for k, v in summary.timings.items()},
        "problems": [{"path": path_text(p), "reason": r} for p, r in summary.problems],
        "repaired_bytes": summary.repaired_bytes,
        "rechecked": summary.rechecked,
        "gpu_decoded": summary.gpu_decoded,
        "backend": meta["backend"],
        "precision": meta["precision"],
        "decode": meta["decode"],  # runs resumed with another --decode mode stay traceable
    }
    # Exact even after kills: every record in the file was counted when the file was opened.
    records = summary.previous_records + summary.processed
    write_meta(output_path, {**meta, "status": status, "records": records, "runs": runs + [this_run]})


@contextmanager
def recorded_run(
    output_path: str | os.PathLike[str], meta: dict[str, Any], summary: Summary, runs: list, started: float,
    progress: Progress | None,
) -> Iterator[Callable[[], None]]:
    """Saves this run as "running", yields a function that saves it again (recent counts for a
    killed run to leave behind), and on the way out closes `progress`, sets the wall time and
    saves the final status: complete, interrupted (Ctrl-C) or failed (any other exception)."""
    save_meta(output_path, meta, summary, runs, "running")
    status = "failed"
    try:
        yield lambda: save_meta(output_path, meta, summary, runs, "running")
        status = "complete"
    except KeyboardInterrupt:
        status = "interrupted"
        raise
    finally:
        summary.wall_s = time.perf_counter() - started
        if progress is not None:
            progress.close()
        save_meta(output_path, meta, summary, runs, status)
