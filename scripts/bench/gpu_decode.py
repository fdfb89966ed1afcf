"""Steady-state `sigrl tag` on one GPU: decoding on the GPU against decoding on the CPU (issue 16).

One script, one call, about 6 minutes on an H200 with 16 cores (most of it making the JPEGs):

    python scripts/bench/gpu_decode.py                 # writes bench/results/<machine-id>/gpu_decode.{json,md}
    python scripts/bench/gpu_decode.py --small --out DIR   # a few small images on the CPU (what the test runs)

Two photo sets are made locally: >= 20,000 JPEGs of 640x480 and >= 2,000 of 12 MP (4000x3000),
jittered crops of the sample photographs installed packages ship (procedural pictures where none
are), with mild noise so the files have photo-like sizes; the mean file size is reported. Then, per
set, with sigrl-vit-b32 (random init: the inference cost of a ViT-B/32; tags mean nothing), 20
labels, top-5:

- model-only img/s: TorchRunner.infer on a uint8 batch already on the device, at the same batch size;
- end to end: the real `sigrl tag` command in a subprocess, once with --gpu-decode, once with
  --cpu-decode, and once with --decode exact (the CPU reference of the parity check): process wall
  time, time from launch to the first record, steady-state img/s (records after the first batch
  over the time from the first record to the last), the job's own img/s, host CPU use (the
  child's user + system CPU seconds over its wall time, in cores), and the GPU busy share
  (the mean of nvidia-smi's utilization.gpu, sampled every 200 ms; null where unavailable), and
  how many images the run decoded on the GPU (null: all on the CPU, as on a CPU runner);
- the ratio end-to-end / model-only, and the share of images whose top-5 label set equals the
  --decode exact run's.

Not a test: it measures. tests/bench/test_gpu_decode_bench.py runs --small on the CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, also under `python -P`
from photos import PHOTO_LABELS, PHOTO_MODEL, photo_sources  # noqa: E402
from tagging import TOPK, sigrl_tags  # noqa: E402
from sigrl.environment import portable

FULL = {"vga": (20_000, (640, 480)), "12mp": (2_000, (4000, 3000))}
SMALL = {"vga": (12, (640, 480)), "12mp": (3, (1600, 1200))}


# -- the photo sets --------------------------------------------------------------------------------
def _make_part(sources: list[str], folder: str, start: int, count: int, size: tuple[int, int]) -> None:
    from PIL import Image

    for i in range(start, start + count):
        path = Path(folder) / f"photo-{i:05d}.jpg"
        if path.exists():
            continue
        rng = np.random.default_rng(i)
        target = size if i % 4 else (size[1], size[0])  # every 4th portrait
        if sources:
            with Image.open(sources[i % len(sources)]) as im:
                im = im.convert("RGB")
            w, h = im.size
            cw, ch = int(w * rng.uniform(0.7, 1.0)), int(h * rng.uniform(0.7, 1.0))
            x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
            im = im.crop((x, y, x + cw, y + ch)).resize(target, Image.Resampling.BILINEAR)
            pixels = np.asarray(im, dtype=np.float32)
        else:  # no sample photographs installed: smooth colour fields
            yy, xx = np.mgrid[0 : target[1], 0 : target[0]].astype(np.float32)
            f = rng.uniform(2, 9, size=(3, 2)) / max(target)
            pixels = np.stack([128 + 110 * np.sin(xx * f[c, 0] * 6.28 + yy * f[c, 1] * 6.28 + c) for c in range(3)], -1)
        pixels += 3.0 * rng.standard_normal(pixels.shape, dtype=np.float32)  # sensor-like noise: photo-like file sizes
        tmp = path.with_suffix(".tmp")
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(tmp, "JPEG", quality=90)
        os.replace(tmp, path)


def make_set(folder: Path, count: int, size: tuple[int, int], processes: int) -> dict:
    """`count` JPEGs of `size` in `folder` (kept between runs); returns what was made."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        sources = [str(p) for p in photo_sources()]
    except SystemExit:
        sources = []
    start = time.perf_counter()
    step = max(1, -(-count // (processes * 4)))
    with ProcessPoolExecutor(processes) as pool:
        for f in [pool.submit(_make_part, sources, str(folder), s, min(step, count - s), size) for s in range(0, count, step)]:
            f.result()
    files = sorted(folder.glob("photo-*.jpg"))[:count]
    return {"images": len(files), "size": f"{size[0]}x{size[1]}", "made_s": round(time.perf_counter() - start, 1),
            "mean_file_kb": round(float(np.mean([p.stat().st_size for p in files])) / 1024, 1),
            "from": "sample photographs" if sources else "procedural pictures"}


# -- measurements ----------------------------------------------------------------------------------
def model_only(model: str, device: str, precision: str, batch: int, seconds: float, cache: Path | None = None) -> dict:
    """img/s of TorchRunner.infer on a uint8 batch already on the device (scores back on the host).
    With `cache`, the label side lands in the label cache the `sigrl tag` runs share, so none of
    them pays for the text encoder in its time to first record."""
    import torch

    from sigrl.runtime.label_cache import LabelCache
    from sigrl.runtime.torch_runner import TorchRunner

    with TorchRunner(model, device=device, precision=precision, label_cache=None if cache is None else LabelCache(cache)) as runner:
        size = runner.preprocess.image_size
        x = torch.randint(0, 256, (batch, size, size, 3), dtype=torch.uint8, device=device)  # [B, S, S, 3]
        for _ in range(3):
            runner.infer(x, PHOTO_LABELS)
        n, start = 0, time.perf_counter()
        while n == 0 or time.perf_counter() - start < seconds:
            runner.infer(x, PHOTO_LABELS)  # returns numpy: the device work is finished
            n += batch
        elapsed = time.perf_counter() - start
    if device == "cuda":
        torch.cuda.empty_cache()
    return {"images_per_s": round(n / elapsed, 1), "batch_size": batch, "images": n, "seconds": round(elapsed, 2)}


class GpuSampler:
    """Mean utilization.gpu (percent of time a kernel ran) while a run lasts, from nvidia-smi."""

    def __init__(self) -> None:
        self.samples: list[float] = []
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "GpuSampler":
        if shutil.which("nvidia-smi"):
            self._proc = subprocess.Popen(["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits",
                                           "-lms", "200", "-i", "0"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
            self._thread = threading.Thread(target=self._read, daemon=True)
            self._thread.start()
        return self

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for line in self._proc.stdout:
            try:
                self.samples.append(float(line.strip()))
            except ValueError:
                pass

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            self._proc.terminate()
            self._proc.wait(timeout=5)

    def busy_share(self) -> float | None:
        return round(sum(self.samples) / len(self.samples) / 100, 3) if self.samples else None


def tag_run(folder: Path, labels: Path, out: Path, model: str, cache: Path, extra: list[str], timeout: float) -> dict:
    """The real `sigrl tag` in a subprocess, watched: first record, last record, CPU and GPU use."""
    cmd = [sys.executable, "-m", "sigrl.cli.main", "tag", str(folder), "--labels", str(labels), "--out", str(out),
           "--model", model, "--label-cache", str(cache), "--topk", str(TOPK), "--overwrite", "--quiet", *extra]
    out.unlink(missing_ok=True)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    first_s = last_s = None
    first_lines, size = 0, 0
    with GpuSampler() as gpu:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        while proc.poll() is None:  # records are appended with one write per batch: the size tells
            now = time.perf_counter() - start
            if now > timeout:
                proc.kill()
                proc.wait()
                return {"command": " ".join(cmd[3:]), "status": f"timed out after {timeout:.0f} s"}
            grown = out.stat().st_size if out.exists() else 0
            if grown > size:
                if first_s is None:
                    first_s, first_lines = now, out.read_bytes().count(b"\n")
                size, last_s = grown, now
            time.sleep(0.01)
        wall = time.perf_counter() - start
        stderr = proc.stderr.read() if proc.stderr else ""
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if proc.returncode not in (0, 1):
        lines = [x for x in stderr.strip().splitlines() if x.strip()]
        return {"command": " ".join(cmd[3:]), "status": f"exit {proc.returncode}: {' | '.join(lines[-3:])}"}
    from sigrl.tagging.runs.metafile import read_meta

    run = read_meta(out)["runs"][-1]
    images = run["tagged"] + run["errors"]
    if size and out.stat().st_size > size:  # the last batch landed after the last poll
        last_s = wall
    steady = (images - first_lines) / (last_s - first_s) if first_s is not None and last_s and last_s > first_s else None
    cpu_s = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return {
        "command": " ".join(cmd[3:]), "status": "ran", "images": images, "errors": run["errors"],
        "process_wall_s": round(wall, 2), "first_record_s": None if first_s is None else round(first_s, 2),
        "last_record_s": None if last_s is None else round(last_s, 2),
        "steady_images_per_s": None if steady is None else round(steady, 1), "job_images_per_s": run["images_per_s"],
        "gpu_decoded": run.get("gpu_decoded"),  # None: this run decoded everything on the CPU
        "host_cpu_cores": round(cpu_s / wall, 2), "gpu_busy_share": gpu.busy_share(), "timings": run["timings"],
    }


def top5_agreement(a: Path, b: Path) -> float | None:
    ta, tb = sigrl_tags(a), sigrl_tags(b)
    common = [k for k in ta if k in tb and ta[k] and tb[k]]
    return round(sum(set(ta[k]) == set(tb[k]) for k in common) / len(common), 4) if common else None


# -- the run ---------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="a few small images on the CPU (the test's size)")
    parser.add_argument("--vga", type=int, default=None, help="640x480 JPEGs (default 20,000; 12 with --small)")
    parser.add_argument("--big", type=int, default=None, help="12 MP JPEGs (default 2,000; 3 of 1600x1200 with --small)")
    parser.add_argument("--device", default=None, help="default cuda (cpu with --small)")
    parser.add_argument("--precision", default=None, help="default bf16 on cuda, fp32 on cpu")
    parser.add_argument("--model", default=None, help=f"default {PHOTO_MODEL} (sigrl-tiny with --small)")
    parser.add_argument("--batch-size", type=int, default=None, help="default 256 (8 with --small)")
    parser.add_argument("--model-seconds", type=float, default=None, help="model-only timing per set (default 10)")
    parser.add_argument("--no-exact", action="store_true", help="skip the --decode exact reference run")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds per sigrl tag run")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "sigrl" / "bench" / "gpu_decode")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results/<machine-id>)")
    args = parser.parse_args(argv)

    import torch

    from sigrl.machine import cpu_model, machine_id, usable_cores

    sets = SMALL if args.small else FULL
    device = args.device or ("cpu" if args.small else "cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("no CUDA GPU visible to torch; run with --small (CPU) or on a GPU machine")
    precision = args.precision or ("bf16" if device == "cuda" else "fp32")
    model = args.model or ("sigrl-tiny" if args.small else PHOTO_MODEL)
    batch = args.batch_size or (8 if args.small else 256)
    seconds = args.model_seconds if args.model_seconds is not None else (0.5 if args.small else 10.0)
    counts = {"vga": args.vga if args.vga is not None else sets["vga"][0], "12mp": args.big if args.big is not None else sets["12mp"][0]}
    out_dir = args.out or Path(__file__).resolve().parents[2] / "bench" / "results" / machine_id()
    work = args.work / ("small" if args.small else "full")
    work.mkdir(parents=True, exist_ok=True)
    labels = work / "labels.txt"
    labels.write_text("\n".join(PHOTO_LABELS) + "\n")
    processes = max(1, min(usable_cores(), 32))

    wall_start = time.perf_counter()
    report: dict[str, Any] = {
        "machine": {"id": machine_id(), "cpu": cpu_model(), "usable_cores": usable_cores(),
                    "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None, "torch": torch.__version__},
        "model": f"{model} (random init)", "labels": len(PHOTO_LABELS), "topk": TOPK, "device": device,
        "precision": precision, "batch_size": batch, "small": args.small, "sets": {},
    }
    common = ["--backend", "torch", "--device", device, "--precision", precision, "--batch-size", str(batch)]
    variants = {"gpu-decode": ["--gpu-decode"], "cpu-decode": ["--cpu-decode"]}
    if not args.no_exact:
        variants["exact"] = ["--decode", "exact"]
    for name, (_, size) in sets.items():
        print(f"[gpu_decode] {name}: making {counts[name]} JPEGs ...", file=sys.stderr, flush=True)
        folder = work / name
        made = make_set(folder, counts[name], size, processes)
        entry: dict[str, Any] = {"photos": made, "model_only": model_only(model, device, precision, batch, seconds, work / "label-cache"),
                                 "runs": {}}
        for variant, extra in variants.items():
            print(f"[gpu_decode] {name}: sigrl tag {variant} ...", file=sys.stderr, flush=True)
            entry["runs"][variant] = tag_run(folder, labels, work / f"{name}-{variant}.jsonl", model, work / "label-cache",
                                             common + extra, args.timeout)
        _ratios(entry, work, name)
        report["sets"][name] = entry
    report["script_wall_s"] = round(time.perf_counter() - wall_start, 1)
    out_dir.mkdir(parents=True, exist_ok=True)
    report = portable(report)  # no machine paths in committed results
    (out_dir / "gpu_decode.json").write_text(json.dumps(report, indent=1) + "\n")
    (out_dir / "gpu_decode.md").write_text(to_markdown(report))
    print(to_markdown(report))
    return report


def _ratios(entry: dict, work: Path, name: str) -> None:
    model_rate = entry["model_only"]["images_per_s"]
    for variant, run in entry["runs"].items():
        if run["status"] == "ran" and run["steady_images_per_s"]:
            run["steady_over_model_only"] = round(run["steady_images_per_s"] / model_rate, 3)
        if variant != "exact" and run["status"] == "ran" and entry["runs"].get("exact", {}).get("status") == "ran":
            run["top5_same_as_exact"] = top5_agreement(work / f"{name}-{variant}.jsonl", work / f"{name}-exact.jsonl")
    gpu, cpu = entry["runs"].get("gpu-decode", {}), entry["runs"].get("cpu-decode", {})
    if gpu.get("steady_images_per_s") and cpu.get("steady_images_per_s"):
        entry["gpu_over_cpu_decode"] = round(gpu["steady_images_per_s"] / cpu["steady_images_per_s"], 2)


def _cell(value: Any, fmt: str = "{}") -> str:
    return "-" if value is None else fmt.format(value)


def to_markdown(report: dict) -> str:
    m = report["machine"]
    lines = [f"# `sigrl tag` with GPU decoding on {m['gpu'] or 'the CPU (small mode)'}", "",
             f"{report['model']}, {report['labels']} labels, top-{report['topk']}, {report['device']} {report['precision']}, "
             f"batch {report['batch_size']}; {m['cpu']}, {m['usable_cores']} usable cores, torch {m['torch']}. "
             f"Script wall time {report['script_wall_s']} s.", ""]
    for name, entry in report["sets"].items():
        p = entry["photos"]
        lines += [f"## {p['images']} JPEGs of {p['size']} ({p['from']}, mean {p['mean_file_kb']} KB)", "",
                  f"Model only: {entry['model_only']['images_per_s']} img/s at batch {entry['model_only']['batch_size']}."
                  + (f" GPU decode / CPU decode, steady state: {entry['gpu_over_cpu_decode']}x." if "gpu_over_cpu_decode" in entry else ""), "",
                  "| run | status | img/s steady | / model-only | img/s job | process s | first record s | host CPU cores | GPU busy | decoded on GPU | top-5 = exact |",
                  "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
        for variant, r in entry["runs"].items():
            if r["status"] != "ran":
                lines.append(f"| {variant} | {r['status']} |" + " - |" * 9)
                continue
            lines.append(f"| {variant} | ran | {_cell(r['steady_images_per_s'])} | {_cell(r.get('steady_over_model_only'))} | "
                         f"{r['job_images_per_s']} | {r['process_wall_s']} | {_cell(r['first_record_s'])} | {r['host_cpu_cores']} | "
                         f"{_cell(r['gpu_busy_share'], '{:.0%}')} | {_cell(r['gpu_decoded'])} | {_cell(r.get('top5_same_as_exact'), '{:.2%}')} |")
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
