"""Throughput of `sigrl tag --engine ray` with 1 vs 2 model replicas on this machine, and what that
implies for a GPU cluster (an estimate, labelled as such).

    python scripts/bench/ray_scaling.py --model sigrl-vit-b32 --images 160 --shard-size 16

Generates JPEG photos (640x480) in a temporary folder, starts a local Ray instance with as many CPUs
as this machine has, and tags them once per replica count. Reported per run: wall time (Ray start
of the actors and model loading included) and the steady-state rate, measured between the first
and the last finished shard (so actor start-up is left out), plus inference time per image summed
over the replicas and the time replicas waited for decoded images (CPU replicas decode in a thread
pool overlapped with inference, so this is a wait, not the decode cost; that is measured
separately on one core for the estimate). Results: bench/results/<machine-id>/ray_scaling.json and .md,
with the load average before and after (other users share these CPUs).
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from sigrl.environment import portable


class _Clock:
    """A `Progress` that notes when each shard finished."""

    def __init__(self) -> None:
        self.marks: list[tuple[float, int]] = []

    def start(self, total: int, skipped: int) -> None:
        self.marks.clear()

    def update(self, images: int, errors: int) -> None:
        self.marks.append((time.perf_counter(), images))

    def close(self) -> None:
        pass

    def steady_rate(self) -> float:
        """Images per second after the first finished shard (start-up excluded)."""
        if len(self.marks) < 2:
            return 0.0
        images = sum(n for _, n in self.marks[1:])
        return images / (self.marks[-1][0] - self.marks[0][0])


def make_photos(folder: Path, count: int, seed: int = 0) -> None:
    from PIL import Image

    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:480, 0:640].astype(np.float32)
    for i in range(count):
        a, b, c = rng.uniform(0.5, 3, size=3)
        img = np.stack([128 + 100 * np.sin(x / (40 * a)), 128 + 100 * np.cos(y / (30 * b)), (x * c + y) % 256], -1)
        img += rng.normal(0, 12, size=img.shape)
        Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(folder / f"photo{i:04d}.jpg", quality=90)


def _run(args: argparse.Namespace) -> dict[str, Any]:
    import ray

    from sigrl.machine import cpu_model, machine_id
    from sigrl.machine import usable_cores
    from sigrl.tagging.decisions.choose import choose_rule
    from sigrl.tagging.engines.ray_engine import RunnerSpec, run_tagging_ray

    labels = [f"concept {i}" for i in range(args.labels)]
    rule = choose_rule(labels, topk=5, model=args.model)[0]
    cpus = usable_cores()
    runs = []
    with tempfile.TemporaryDirectory(prefix="sigrl-ray-scaling-") as tmp:
        photos = Path(tmp) / "photos"
        photos.mkdir()
        make_photos(photos, args.images)
        decode_ms = decode_cost_ms(photos, args.model)
        spec = RunnerSpec(args.model, backend="torch", device="cpu", label_cache=os.fspath(Path(tmp) / "cache"))
        ray.init(num_cpus=cpus, include_dashboard=False, log_to_driver=False)
        try:
            for replicas in args.replicas:
                clock = _Clock()
                load = os.getloadavg()
                summary = run_tagging_ray([photos], spec, labels, rule, Path(tmp) / f"out-{replicas}.jsonl",
                                          replicas=replicas, shard_size=args.shard_size, progress=clock)
                t = summary.timings
                runs.append({
                    "replicas": replicas, "images": summary.processed, "wall_s": round(summary.wall_s, 2),
                    "wall_images_per_s": round(summary.images_per_s, 2), "steady_images_per_s": round(clock.steady_rate(), 2),
                    "decode_wait_ms_per_image": round(1000 * t["decode_s"] / summary.processed, 2),
                    "infer_ms_per_image": round(1000 * t["infer_s"] / summary.processed, 2),
                    "load_before": [round(v, 2) for v in load], "load_after": [round(v, 2) for v in os.getloadavg()],
                })
                print(json.dumps(runs[-1]))
        finally:
            ray.shutdown()
    return {"machine": machine_id(), "cpu": cpu_model(), "cpus": cpus, "ray": ray.__version__, "model": args.model,
            "labels": args.labels, "image": "640x480 JPEG", "shard_size": args.shard_size, "runs": runs,
            "decode_ms_per_image_one_core": round(decode_ms, 2),
            "estimate": gpu_estimate(decode_ms, args.gpu_rate, args.cpus_per_gpu)}


def decode_cost_ms(photos: Path, model: str) -> float:
    """Single-thread cost of the tagging decoder per photo, at the model's input size."""
    from sigrl.model import create_model
    from sigrl.tagging.decode import decode

    preprocess = create_model(model, seed=0).config.preprocess
    files = sorted(photos.iterdir())
    start = time.perf_counter()
    for f in files:
        decode(f, preprocess)
    return 1000 * (time.perf_counter() - start) / len(files)


def gpu_estimate(decode_ms: float, gpu_rate: float | None, cpus_per_gpu: int) -> dict[str, Any]:
    """ESTIMATE, not a measurement: images/s per GPU of a cluster, from single-replica figures.

    A GPU replica scores at `gpu_rate` (measure it with `sigrl bench` on one GPU; none was
    measured here) and is fed by `cpus_per_gpu` decode tasks, each at the per-image decode cost
    measured here. A cluster of G such nodes' GPUs reaches about G x min(both), since shards are
    independent (no communication beyond the driver's small manifest updates).
    """
    decode_rate_per_cpu = 1000.0 / decode_ms
    feed = decode_rate_per_cpu * cpus_per_gpu
    per_gpu = min(feed, gpu_rate) if gpu_rate else feed
    return {
        "label": "ESTIMATE (computed, not measured on a GPU)",
        "decode_images_per_s_per_cpu": round(decode_rate_per_cpu, 1),
        "cpus_per_gpu": cpus_per_gpu,
        "decode_ceiling_images_per_s_per_gpu": round(feed, 1),
        "gpu_replica_images_per_s": gpu_rate,
        "images_per_s_per_gpu": round(per_gpu, 1),
        "bound": "decode ceiling only: no GPU replica rate given (--gpu-rate)" if not gpu_rate
        else ("decode" if feed < gpu_rate else "gpu"),
    }


def write_report(result: dict[str, Any], out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    result = portable(result)  # no machine paths in committed results
    (out / "ray_scaling.json").write_text(json.dumps(result, indent=1) + "\n")
    lines = [f"# Ray engine scaling: {result['model']}, {result['labels']} labels, {result['image']}, "
             f"{result['cpus']} CPUs ({result['cpu']}), Ray {result['ray']}", "",
             "| replicas | images | wall s | wall img/s | steady img/s | decode wait ms/img | infer ms/img (replica time) | load before -> after |",
             "|---|---|---|---|---|---|---|---|"]
    for r in result["runs"]:
        lines.append(f"| {r['replicas']} | {r['images']} | {r['wall_s']} | {r['wall_images_per_s']} | {r['steady_images_per_s']} | "
                     f"{r['decode_wait_ms_per_image']} | {r['infer_ms_per_image']} | {r['load_before'][0]} -> {r['load_after'][0]} |")
    e = result["estimate"]
    lines += ["", f"{e['label']}: decode {e['decode_images_per_s_per_cpu']} img/s per CPU; with {e['cpus_per_gpu']} CPUs "
              f"per GPU a replica can be fed {e['decode_ceiling_images_per_s_per_gpu']} img/s; per GPU: "
              f"{e['images_per_s_per_gpu']} img/s ({e['bound']})."]
    (out / "ray_scaling.md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sigrl-vit-b32")
    parser.add_argument("--labels", type=int, default=20)
    parser.add_argument("--images", type=int, default=160)
    parser.add_argument("--shard-size", type=int, default=16)
    parser.add_argument("--replicas", type=lambda s: [int(v) for v in s.split(",")], default=[1, 2])
    parser.add_argument("--gpu-rate", type=float, default=None, help="a measured single-GPU replica rate (img/s) for the estimate")
    parser.add_argument("--cpus-per-gpu", type=int, default=8)
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results/<machine-id>)")
    args = parser.parse_args()
    result = _run(args)
    from sigrl.machine import machine_id

    write_report(result, args.out or Path(__file__).resolve().parents[2] / "bench" / "results" / machine_id())


if __name__ == "__main__":
    main()
