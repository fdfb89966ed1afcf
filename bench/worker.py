"""Bench rows, measured in a process of their own: `python -m sigrl.bench.worker JOBS.json OUT.json`.

A fresh process per row (the full bench) makes its peak memory its own, keeps one backend's thread
pools and allocator state from slowing the next, and turns a crash or an out-of-memory kill into a
row status instead of the end of the bench. `--quick` runs all its rows in one worker, because
importing torch and open_clip costs seconds per process on a loaded 2-core machine; the peak is
then reset between rows (Linux clear_refs) so each row still reports its own.

JOBS.json is {"jobs": [job, ...]}; OUT.json is {"results": [{"ok": bool, "result" | "error"}, ...]}.
A job: {"kind": "row" | "naive" | "scaling", "backend", "precision", "device", "model",
"export", "images" (.npy uint8 [n, S, S, 3], decoded like `sigrl tag` does), "paths", "labels",
"batch_sizes", "repeats", "latency_repeats", "e2e_images", "scores" (.npy to write),
"labels_sweep", "scaling_batch"}.
"""

from __future__ import annotations

import json
import logging
import resource
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from sigrl.bench.timing import Repeats, measure, measure_batch, rss_bytes

log = logging.getLogger(__name__)


def _repeats(job: dict, key: str) -> Repeats:
    return Repeats(**job[key])


def open_row_runner(job: dict, shared_cpu: bool = False):
    from sigrl.runtime import open_runner

    target = job["model"] if job["backend"] == "torch" else job["export"]
    return open_runner(target, backend=job["backend"], device=job["device"], precision=job["precision"],
                       shared_cpu=shared_cpu)


def _tile(images: np.ndarray, batch: int) -> np.ndarray:
    reps = -(-batch // len(images))
    return np.ascontiguousarray(np.concatenate([images] * reps)[:batch])  # [batch, S, S, 3]


def _throughput(run, batch_sizes: list[int], repeats: Repeats) -> dict[str, Any]:
    per_batch = {}
    for wanted in batch_sizes:
        ran, stats = measure_batch(run, wanted, repeats)
        per_batch[str(wanted)] = {"batch": ran, "images_per_s": ran / stats.median_s, **stats.to_dict()}
    best = max(per_batch.values(), key=lambda r: r["images_per_s"])
    return {"per_batch": per_batch, "best_batch": best["batch"], "images_per_s": best["images_per_s"]}


def run_row(job: dict) -> dict[str, Any]:
    images = np.load(job["images"])  # [n, S, S, 3]
    labels = job["labels"]
    base_rss = rss_bytes()
    t0 = time.perf_counter()
    with open_row_runner(job) as runner:
        open_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        runner.label_side(labels)
        label_s = time.perf_counter() - t0
        step = min(32, runner.max_batch(len(labels)))
        scores = np.concatenate([runner.infer(images[i:i + step], labels) for i in range(0, len(images), step)])
        np.save(job["scores"], scores.astype(np.float32))
        latency = measure(lambda: runner.infer(images[:1], labels), _repeats(job, "latency_repeats"))
        tiled = _tile(images, max(job["batch_sizes"]))
        thr = _throughput(lambda b: runner.infer(tiled[:b], labels), job["batch_sizes"], _repeats(job, "repeats"))
        e2e, done = _end_to_end(job, runner, labels, thr["best_batch"])
        device_peak = _cuda_peak(job["device"])
    return {
        "open_s": open_s, "label_side_s": label_s, "latency": latency.to_dict(), "throughput": thr,
        "e2e_images_per_s": e2e, "e2e_images": done, "peak_rss_bytes": _max_rss(),
        "rss_growth_bytes": max(0, _max_rss() - base_rss), "peak_device_bytes": device_peak,
        "threads": _threads(),
    }


def _end_to_end(job: dict, runner: Any, labels: list[str], batch: int) -> tuple[float, int]:
    """Images/s from files to scores with the decode pool of `sigrl tag`. Beside decode threads an
    ONNX Runtime session is opened as `sigrl tag` opens it (threads that sleep between calls,
    shared_cpu) rather than the spinning one the model-only columns measure."""
    from contextlib import nullcontext

    from sigrl.tagging.scoring.pipeline import iter_batches

    paths = [job["paths"][i % len(job["paths"])] for i in range(job["e2e_images"])]
    beside_decoding = job["backend"] == "onnx" and job["device"] == "cpu"
    with open_row_runner(job, shared_cpu=True) if beside_decoding else nullcontext(runner) as e2e_runner:
        e2e_runner.label_side(labels)
        t0, done = time.perf_counter(), 0
        for decoded in iter_batches(paths, e2e_runner.preprocess, batch_size=batch, workers=2):
            if len(decoded.images):
                e2e_runner.infer(decoded.images, labels)
            done += len(decoded.images)
        return done / (time.perf_counter() - t0), done


def run_naive(job: dict) -> dict[str, Any]:
    import torch

    from sigrl.bench.naive import BATCH_SIZE, naive_forward, naive_loop, torchvision_transform
    from sigrl.model.factory import open_model
    from PIL import Image

    base_rss = rss_bytes()
    model = open_model(job["model"]).eval()
    scores = naive_loop(model, job["paths"], job["labels"]).scores
    np.save(job["scores"], scores.astype(np.float32))
    transform = torchvision_transform(model.config.preprocess)
    first = torch.stack([transform(Image.open(p).convert("RGB")) for p in job["paths"][:BATCH_SIZE]])
    while len(first) < BATCH_SIZE:  # fewer images than one batch: repeat them
        first = torch.cat([first, first])[:BATCH_SIZE]
    latency = measure(naive_forward(model, first[:1], job["labels"]), _repeats(job, "latency_repeats"))
    stats = measure(naive_forward(model, first, job["labels"]), _repeats(job, "repeats"))
    paths = [job["paths"][i % len(job["paths"])] for i in range(job["e2e_images"])]
    elapsed = naive_loop(model, paths, job["labels"]).seconds
    thr = {"per_batch": {str(BATCH_SIZE): {"batch": BATCH_SIZE, "images_per_s": BATCH_SIZE / stats.median_s,
                                           **stats.to_dict()}},
           "best_batch": BATCH_SIZE, "images_per_s": BATCH_SIZE / stats.median_s}
    return {
        "open_s": 0.0, "label_side_s": 0.0, "latency": latency.to_dict(), "throughput": thr,
        "e2e_images_per_s": len(paths) / elapsed, "e2e_images": len(paths), "peak_rss_bytes": _max_rss(),
        "rss_growth_bytes": max(0, _max_rss() - base_rss), "peak_device_bytes": None,
        "threads": _threads(),
    }


def _max_rss() -> int:
    """This process's peak resident memory since start or the last _reset_peak().

    VmHWM, not ru_maxrss: Linux carries ru_maxrss over from the parent across fork + exec, so a
    worker started by a large parent would report the parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(kib * (1 if sys.platform == "darwin" else 1024))


def _reset_peak() -> None:
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current RSS (Linux >= 4.0)
    except OSError:
        pass
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()


def run_job(job: dict) -> dict[str, Any]:
    _reset_peak()
    start = time.perf_counter()
    if job["kind"] == "row":
        result = run_row(job)
    elif job["kind"] == "naive":
        result = run_naive(job)
    else:
        from sigrl.bench.scaling import run_scaling

        result = run_scaling(job)
    return {**result, "wall_s": time.perf_counter() - start}


def _threads() -> dict[str, int]:
    """Intra-op threads the backends use: on a loaded machine this decides PyTorch's speed."""
    from sigrl.machine import usable_cores

    torch = sys.modules.get("torch")
    out = {"usable_cores": usable_cores()}
    if torch is not None:
        out["torch"] = torch.get_num_threads()
    return out


def _cuda_peak(device: str) -> int | None:
    torch = sys.modules.get("torch")
    if device != "cuda" or torch is None or not torch.cuda.is_available():
        return None
    return int(torch.cuda.max_memory_allocated())


def main(argv: list[str]) -> int:
    jobs = json.loads(Path(argv[0]).read_text())["jobs"]
    results = []
    for job in jobs:
        try:
            results.append({"ok": True, "result": run_job(job)})
        except Exception as err:  # one failing row must not lose the others of a shared worker
            log.warning("bench job %s failed", job.get("kind"), exc_info=True)
            results.append({"ok": False, "error": f"{type(err).__name__}: {err}"})
        Path(argv[1]).write_text(json.dumps({"results": results}))  # after each job: survives a later crash
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
