"""`run_bench`: every row of the matrix on the same model and data, then head scaling.

The parent resolves the inputs (model, data, export), decodes the test images once with the
tagging decoder, and runs each row in a worker process (worker.py). Accuracy is computed here from
the scores each worker writes, against the PyTorch fp32 reference row, which always runs first.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sigrl.bench.inputs import (
    ExportOutcome, ModelChoice, ensure_engine, ensure_export, resolve_model, world_test_split,
)
from sigrl.bench.matrix import NAIVE, REFERENCE, RowSpec, select_rows, unavailable_reason
from sigrl.bench.timing import Repeats
from sigrl.errors import SigrlError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class BenchConfig:
    model: str | None = None
    data: str | None = None
    backends: tuple[str, ...] = ()
    precisions: tuple[str, ...] = ()
    batch_sizes: tuple[int, ...] = (1, 4, 8, 16, 32, 64)
    labels_sweep: tuple[int, ...] = (20, 81, 1006)
    quick: bool = False
    world_images: int = 1000  # images of the synthesized world test split when --data is not given
    e2e_images: int = 1000
    scaling_batch: int = 8
    row_timeout_s: float = 1800.0

    @classmethod
    def quick_defaults(cls, **overrides: Any) -> "BenchConfig":
        base = dict(batch_sizes=(1, 8), labels_sweep=(20, 81), quick=True, world_images=48, e2e_images=64,
                    scaling_batch=4, row_timeout_s=300.0)
        base.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**base)


@dataclass
class Workspace:
    """Decoded inputs shared by every worker."""

    directory: Path
    images: Path  # .npy uint8 [n, S, S, 3]
    paths: list[str]
    labels: list[str]
    targets: np.ndarray  # [n, N] in {+1, -1, 0}
    scores: dict[str, np.ndarray] = field(default_factory=dict)


def _decode_all(paths: Sequence[Path], preprocess) -> np.ndarray:
    from sigrl.tagging.scoring.pipeline import iter_batches

    parts, failed = [], []
    for batch in iter_batches(paths, preprocess, batch_size=64, workers=2):
        parts.append(batch.images)
        failed += batch.failures
    if failed:
        path, why = failed[0]
        raise SigrlError(f"{path}: cannot decode ({why}); fix or drop it from the manifest ({len(failed)} failed)")
    return np.concatenate(parts)  # [n, S, S, 3]


def prepare_data(config: BenchConfig, preprocess, directory: Path) -> tuple[Workspace, dict[str, Any]]:
    from sigrl.data.manifest import load_manifest

    source = Path(config.data) if config.data else world_test_split(config.world_images)
    manifest = load_manifest(source)
    if len(manifest) == 0:
        raise SigrlError(f"{source}: the manifest has no images; pass --data with a non-empty manifest")
    paths = manifest.image_paths()
    images = _decode_all(paths, preprocess)
    np.save(directory / "images.npy", images)
    labels = list(manifest.labels)
    info = {"manifest": str(source), "name": manifest.name, "images": len(paths), "labels": len(labels),
            "synthesized": config.data is None}
    ws = Workspace(directory, directory / "images.npy", [str(p) for p in paths], labels, manifest.targets(labels))
    return ws, info


def _artifact_bytes(row: RowSpec, model: ModelChoice, export: ExportOutcome, param_bytes: int | None) -> int | None:
    if row.backend in ("torch", NAIVE):
        if model.spec is None:
            return None
        path = Path(model.spec)
        return path.stat().st_size if path.is_file() else param_bytes
    if export.directory is None:
        return None
    from sigrl.runtime.manifest import read_manifest

    manifest = read_manifest(export.directory)
    text = manifest.text_graph().stat().st_size
    try:
        image = manifest.engine(row.precision)[0] if row.backend == "trt" else manifest.image_graph(row.precision)
    except SigrlError:
        return None
    return text + image.stat().st_size


def run_workers(jobs: list[dict], ws: Workspace, name: str, timeout_s: float) -> list[dict[str, Any]]:
    """Run jobs in one worker process; one {"ok", "result" | "error"} per job, in order."""
    job_path, out_path = ws.directory / f"{name}.jobs.json", ws.directory / f"{name}.out.json"
    job_path.write_text(json.dumps({"jobs": jobs}))
    cmd = [sys.executable, "-m", "sigrl.bench.worker", str(job_path), str(out_path)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout_s)
        why = ""
        if proc.returncode < 0:
            why = f"killed by signal {-proc.returncode} (out of memory?)"
        elif proc.returncode != 0:
            lines = [line for line in proc.stderr.strip().splitlines() if line.strip()]
            why = lines[-1] if lines else f"exit code {proc.returncode}"
    except subprocess.TimeoutExpired:
        why = f"timed out after {timeout_s:.0f} s"
    done = json.loads(out_path.read_text())["results"] if out_path.is_file() else []
    return done + [{"ok": False, "error": why or "worker ended early"}] * (len(jobs) - len(done))


def _accuracy(scores: np.ndarray, ws: Workspace) -> dict[str, float]:
    from sigrl.metrics import mean_average_precision, precision_recall_f1_at_k

    out = {"mAP": mean_average_precision(scores, ws.targets)}
    if scores.shape[1] >= 3:
        out["F1@3"] = precision_recall_f1_at_k(scores, ws.targets, 3)["f1"]
    return out


def _parity(row: RowSpec, export: ExportOutcome) -> str:
    if row.backend in ("torch", NAIVE):
        return "n/a"
    entry = export.parity.get(row.precision)
    if row.backend == "trt" or entry is None:
        return "n/a"
    return f"{'ok' if entry.get('passed') else 'FAIL'} (max {entry.get('max_abs_diff', float('nan')):.1e})"


def plan_row(row: RowSpec, ctx: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The row's static columns, and the worker job that measures it (None when it cannot run here)."""
    ws: Workspace = ctx["ws"]
    config: BenchConfig = ctx["config"]
    export: ExportOutcome = ctx["export"]
    out: dict[str, Any] = {
        "row": row.name, "backend": row.backend, "precision": row.precision, "device": row.device,
        "export": {"torch": "n/a", NAIVE: "n/a", "trt": "not built"}.get(row.backend, "failed" if export.error else "ok"),
        "parity": _parity(row, export),
    }
    reason = unavailable_reason(row, ctx["gpu"], export.error, ctx["export_precisions"])
    if not reason and row.backend == "trt":
        reason = ensure_engine(export.directory, row.precision)
        out["export"] = "failed" if reason else "ok"
    if not reason and row.backend in ("torch", NAIVE) and ctx["model"].spec is None:
        reason = "no PyTorch model: the export's source checkpoint is not available (pass it with --model)"
    out["artifact_bytes"] = _artifact_bytes(row, ctx["model"], export, ctx["param_bytes"])
    if reason:
        return {**out, "status": "unavailable", "reason": reason}, None
    key = f"{row.backend}-{row.precision}-{row.device}"
    repeats = Repeats.quick() if config.quick else Repeats(warmup=3, min_reps=10, min_seconds=2.0)
    latency = Repeats.quick() if config.quick else Repeats(warmup=10, min_reps=100, min_seconds=3.0)
    job = {
        "kind": "naive" if row.backend == NAIVE else "row", "backend": row.backend, "precision": row.precision,
        "device": row.device, "model": ctx["model"].spec,
        "export": str(export.directory) if export.directory else None,
        "images": str(ws.images), "paths": ws.paths, "labels": ws.labels, "batch_sizes": list(config.batch_sizes),
        "repeats": asdict(repeats), "latency_repeats": asdict(latency), "e2e_images": config.e2e_images,
        "scores": str(ws.directory / f"{key}.scores.npy"),
    }
    return out, job


def finish_row(out: dict[str, Any], job: dict[str, Any], outcome: dict[str, Any], ws: Workspace) -> dict[str, Any]:
    if not outcome["ok"]:
        return {**out, "status": "failed", "reason": outcome["error"]}
    scores = np.load(job["scores"])  # [n, N]
    ws.scores[out["row"]] = scores
    out.update({"status": "ran", "reason": "", **_accuracy(scores, ws), **outcome["result"]})
    reference = ws.scores.get(REFERENCE.name)
    if reference is not None:
        out["drift_vs_torch_fp32"] = float(np.abs(scores - reference).max())
    return out


def measure_rows(
    rows: Sequence[RowSpec], ctx: dict[str, Any], scaling: dict[str, Any] | None
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Every row (the reference first) and the head scaling; quick runs share one worker, full runs
    get one per row."""
    config: BenchConfig = ctx["config"]
    ws: Workspace = ctx["ws"]
    planned = [plan_row(row, ctx) for row in rows]
    jobs = [job for _, job in planned if job is not None] + ([scaling] if scaling else [])
    if config.quick:
        outcomes = run_workers(jobs, ws, "rows", config.row_timeout_s * max(1, len(jobs)))
    else:
        outcomes = []
        for job in jobs:
            log.info("bench job %s %s", job["kind"], job.get("backend", ""))
            name = job["kind"] if job["kind"] == "scaling" else f"{job['backend']}-{job['precision']}-{job['device']}"
            outcomes += run_workers([job], ws, name, config.row_timeout_s * (2 if job["kind"] == "scaling" else 1))
    results, it = [], iter(outcomes)
    for out, job in planned:
        results.append(out if job is None else finish_row(out, job, next(it), ws))
    if scaling is None:
        return results, {"cases": [], "error": "no --labels-sweep"}
    last = next(it)
    return results, (last["result"] if last["ok"] else {"cases": [], "error": last["error"]})


def _add_deltas(rows: list[dict[str, Any]]) -> None:
    ref = next((r for r in rows if r["row"] == REFERENCE.name and r["status"] == "ran"), None)
    naive = next((n for n in rows if n["backend"] == NAIVE and n["status"] == "ran"), None)
    for r in rows:
        if r["status"] != "ran":
            continue
        if ref is not None:
            r["mAP_delta_vs_torch_fp32"] = r["mAP"] - ref["mAP"]
        if naive is not None:
            r["e2e_speedup_vs_naive"] = r["e2e_images_per_s"] / naive["e2e_images_per_s"]


def run_bench(config: BenchConfig, command: str = "") -> dict[str, Any]:
    """Measure every row and the head scaling; returns the JSON-ready result (see report.py)."""
    from sigrl.environment import describe_environment
    from sigrl.runtime import gpu_visible

    started = time.time()
    load_start = os.getloadavg()
    rows = select_rows(config.backends, config.precisions)
    if REFERENCE not in rows:
        rows.insert(0, REFERENCE)  # every delta and drift is measured against it
    rows.sort(key=lambda r: r != REFERENCE)
    model = resolve_model(config.model)
    param_bytes, preprocess = _model_facts(model)
    needs_export = any(r.backend in ("onnx", "trt") for r in rows) or bool(config.labels_sweep)
    export = ensure_export(model.export or model.label) if needs_export else ExportOutcome(None, "not needed", {})
    gpu = gpu_visible()
    export_precisions = _export_precisions(export)
    with tempfile.TemporaryDirectory(prefix="sigrl-bench-") as tmp:
        ws, data_info = prepare_data(config, preprocess, Path(tmp))
        ctx = {"ws": ws, "config": config, "export": export, "model": model, "gpu": gpu,
               "export_precisions": export_precisions, "param_bytes": param_bytes}
        results, scaling = measure_rows(rows, ctx, scaling_job(config, ctx) if config.labels_sweep else None)
        _add_deltas(results)
    return {
        "command": command,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(started)),
        "elapsed_s": time.time() - started,
        "environment": describe_environment(),
        "load_average": {"start": list(load_start), "end": list(os.getloadavg())},
        "model": {"spec": model.label, "note": model.note, "parameter_bytes": param_bytes,
                  "export": str(export.directory) if export.directory else None, "export_error": export.error},
        "data": data_info,
        "settings": {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(config).items()},
        "rows": results,
        "head_scaling": scaling,
    }


def _model_facts(model: ModelChoice) -> tuple[int | None, Any]:
    """(bytes of the weights in memory, the model's preprocessing)."""
    if model.spec is None:
        from sigrl.runtime.manifest import read_manifest

        return None, read_manifest(model.export).preprocess
    from sigrl.model.factory import open_model

    torch_model = open_model(model.spec)
    param_bytes = sum(t.numel() * t.element_size() for t in torch_model.state_dict().values())
    return param_bytes, torch_model.config.preprocess


def _export_precisions(export: ExportOutcome) -> list[str]:
    if export.directory is None:
        return []
    manifest = json.loads((export.directory / "manifest.json").read_text())
    return sorted(set((manifest.get("variants") or {}).get("image", {})) | {"fp32"})


def scaling_job(config: BenchConfig, ctx: dict[str, Any]) -> dict[str, Any]:
    ws: Workspace = ctx["ws"]
    export: ExportOutcome = ctx["export"]
    repeats = Repeats(warmup=1, min_reps=3, min_seconds=0.2, max_reps=20) if config.quick else Repeats(
        warmup=2, min_reps=5, min_seconds=2.0, max_reps=200)
    return {"kind": "scaling", "model": ctx["model"].spec,
            "export": str(export.directory) if export.directory else None,
            "images": str(ws.images), "labels": ws.labels, "labels_sweep": list(config.labels_sweep),
            "scaling_batch": config.scaling_batch, "repeats": asdict(repeats)}
