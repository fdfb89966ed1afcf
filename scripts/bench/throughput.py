"""Image-graph throughput, side by side in one run: PyTorch eager fp32 vs ONNX Runtime fp32 and int8.

All three score the same uint8 images against the same label-side tensors (computed once, shared
through a label cache), so only the image graph is timed. int8 is ONNX Runtime dynamic
quantization of the exported fp32 graph; its drift against fp32 is reported as max/mean abs diff
and top-5 agreement. Results go to bench/results/<machine-id>/throughput.json and .md with the
CPU, core count, load average and library versions (these machines are shared: compare the rows
of one run, not numbers across runs).

    python scripts/bench/throughput.py --model sigrl-vit-b32 --labels 81 --batches 1,8
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from sigrl.environment import portable

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def export_dir(model: Any, out: Path, model_hash: str) -> Path:
    """The model exported by the project's exporter (fp32 + int8 image graph) into out."""
    from sigrl.export.onnx import export_onnx

    out.mkdir(parents=True, exist_ok=True)
    manifest = export_onnx(model, out, source=model.config.name, source_sha256=model_hash, int8=True)
    if not (out / "manifest.json").is_file():  # export_onnx returns the manifest; the CLI writes it
        (out / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out


def drift(reference: np.ndarray, other: np.ndarray, k: int = 5) -> dict[str, float]:
    """Score drift of `other` against `reference` [B, N]: abs diffs and mean top-k overlap."""
    top_ref, top_other = np.argsort(-reference, axis=1)[:, :k], np.argsort(-other, axis=1)[:, :k]
    overlap = [len(set(a) & set(b)) / k for a, b in zip(top_ref, top_other)]
    return {
        "max_abs_diff": float(np.abs(reference - other).max()),
        "mean_abs_diff": float(np.abs(reference - other).mean()),
        f"top{k}_agreement": float(np.mean(overlap)),
        "top1_agreement": float(np.mean(top_ref[:, 0] == top_other[:, 0])),
    }


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("torch", "onnxruntime-gpu", "onnxruntime", "onnx", "open_clip_torch", "numpy"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return out


def _run(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from sigrl.bench.timing import Repeats, measure
    from sigrl.machine import cpu_model, machine_id, usable_cores
    from sigrl.model import create_model
    from sigrl.runtime import LabelCache
    from sigrl.runtime.onnx_runner import OnnxRunner
    from sigrl.runtime.torch_runner import TorchRunner, weights_sha256

    load_start = os.getloadavg()
    model = create_model(args.model, seed=0).eval()
    model_hash = weights_sha256(model)
    labels = [f"concept {i}" for i in range(args.labels)]
    size = model.config.preprocess.image_size
    batches = [int(b) for b in args.batches.split(",")]
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(max(batches + [args.drift_images]), size, size, 3), dtype=np.uint8)
    repeats = Repeats(warmup=1, min_reps=args.reps, min_seconds=args.seconds, max_reps=200)
    with tempfile.TemporaryDirectory(prefix="sigrl-throughput-") as tmp:
        t0 = time.perf_counter()
        export = export_dir(model, Path(tmp) / "export", model_hash)
        export_s = time.perf_counter() - t0
        cache = LabelCache(Path(tmp) / "labels")
        runners = {
            "torch-eager-fp32": TorchRunner(model, label_cache=cache),
            "ort-cpu-fp32": OnnxRunner(export, label_cache=cache),
            "ort-cpu-int8": OnnxRunner(export, precision="int8", label_cache=cache),
        }
        scores = {name: r.infer(images[: args.drift_images], labels) for name, r in runners.items()}
        assert all(r.text_runs == 0 for name, r in runners.items() if name != "torch-eager-fp32")
        rows = []
        for batch in batches:
            x = images[:batch]
            for name, runner in runners.items():
                stats = measure(lambda: runner.infer(x, labels), repeats)
                rows.append({"runner": name, "batch": batch, "images_per_s": batch / stats.median_s,
                             **stats.to_dict()})
        for runner in runners.values():
            runner.close()
    by = {(r["runner"], r["batch"]): r["images_per_s"] for r in rows}
    ratios = {
        f"batch {b}": {
            "ort_fp32_over_torch_fp32": by[("ort-cpu-fp32", b)] / by[("torch-eager-fp32", b)],
            "ort_int8_over_ort_fp32": by[("ort-cpu-int8", b)] / by[("ort-cpu-fp32", b)],
            "ort_int8_over_torch_fp32": by[("ort-cpu-int8", b)] / by[("torch-eager-fp32", b)],
        }
        for b in batches
    }
    return {
        "model": args.model, "n_labels": args.labels, "image_size": size, "export_s": export_s,
        "rows": rows, "ratios": ratios,
        "drift": {
            "ort_fp32_vs_torch_fp32": drift(scores["torch-eager-fp32"], scores["ort-cpu-fp32"]),
            "ort_int8_vs_ort_fp32": drift(scores["ort-cpu-fp32"], scores["ort-cpu-int8"]),
            "images": args.drift_images,
        },
        "machine": {
            "id": machine_id(), "cpu": cpu_model(), "cores": os.cpu_count(), "usable_cores": usable_cores(),
            "torch_threads": torch.get_num_threads(), "loadavg_start": load_start, "loadavg_end": os.getloadavg(),
        },
        "versions": _versions(),
    }


def to_markdown(report: dict[str, Any]) -> str:
    m = report["machine"]
    lines = [
        f"# Image-graph throughput: {report['model']} (random init), N = {report['n_labels']} labels, "
        f"{report['image_size']} px",
        "",
        f"{m['cpu']}, {m['cores']} cores ({m['usable_cores']} usable), load average "
        f"{m['loadavg_start'][0]:.1f} at the start and {m['loadavg_end'][0]:.1f} at the end (shared machine). "
        + ", ".join(f"{k} {v}" for k, v in report["versions"].items()),
        "",
        "| runner | batch | images/s | median s/batch | p95 s | reps |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in report["rows"]:
        lines.append(f"| {r['runner']} | {r['batch']} | {r['images_per_s']:.1f} | {r['median_s']:.3f} | "
                     f"{r['p95_s']:.3f} | {r['reps']} |")
    lines += ["", "| batch | ORT fp32 / torch fp32 | ORT int8 / ORT fp32 | ORT int8 / torch fp32 |",
              "| --- | ---: | ---: | ---: |"]
    for batch, r in report["ratios"].items():
        lines.append(f"| {batch} | {r['ort_fp32_over_torch_fp32']:.2f}x | {r['ort_int8_over_ort_fp32']:.2f}x | "
                     f"{r['ort_int8_over_torch_fp32']:.2f}x |")
    d = report["drift"]
    lines += ["", f"Drift on {d['images']} images (scores [B, N]):", "",
              "| pair | max abs diff | mean abs diff | top-5 agreement | top-1 agreement |",
              "| --- | ---: | ---: | ---: | ---: |"]
    for pair in ("ort_fp32_vs_torch_fp32", "ort_int8_vs_ort_fp32"):
        v = d[pair]
        lines.append(f"| {pair} | {v['max_abs_diff']:.2e} | {v['mean_abs_diff']:.2e} | {v['top5_agreement']:.3f} | "
                     f"{v['top1_agreement']:.3f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="sigrl-vit-b32", help="model config name (random init)")
    parser.add_argument("--labels", type=int, default=81)
    parser.add_argument("--batches", default="1,8")
    parser.add_argument("--seconds", type=float, default=5.0, help="minimum timed seconds per row")
    parser.add_argument("--reps", type=int, default=3, help="minimum timed calls per row")
    parser.add_argument("--drift-images", type=int, default=32)
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results/<machine-id>)")
    args = parser.parse_args()
    report = _run(args)
    out = args.out or RESULTS / report["machine"]["id"]
    out.mkdir(parents=True, exist_ok=True)
    report = portable(report)  # no machine paths in committed results
    (out / "throughput.json").write_text(json.dumps(report, indent=2))
    text = to_markdown(report)
    (out / "throughput.md").write_text(text)
    print(text)
    print(f"wrote {out / 'throughput.json'} and {out / 'throughput.md'}")


if __name__ == "__main__":
    main()
