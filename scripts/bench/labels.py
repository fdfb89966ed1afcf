"""Large label sets (1,000 to 10,000 labels) on the CPU: the label side and the image side.

Label side: seconds and peak memory to encode N labels (text encoder + GMC + the head's label
constant) with the PyTorch runner and with the exported text graph on ONNX Runtime, label cache
off. Image side: ms/image and peak memory of scoring against those N labels with the chunked
head: the model's own head (PyTorch, `head.label_chunk`), the exported image graph (ONNX Runtime,
whole-N head, batch bounded by the runner), and the SVFR head alone at ViT-B/16 dimensions
(D = 512, P = 196, chunk 32), as scripts/bench/head.py measures it.

Each case runs in a fresh subprocess; its memory is the peak resident size while the measured call
runs minus the resident size just before (sampled, bench.timing.PeakRss). Results go to
bench/results/<machine-id>/labels.json and labels.md (or --out), with the load average seen (these
machines are shared: compare rows of one run, not runs).

    python scripts/bench/labels.py                        # embedded default model, N = 1000,5000,10000
    python scripts/bench/labels.py --labels 1000 --skip-vitb
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sigrl.environment import portable

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
IMAGE_REPEATS = 2
VITB_BATCH = 1


def _labels(n: int) -> list[str]:
    from sigrl.bench.scaling import label_set
    from sigrl.default_model import labels as default_labels

    return label_set(n, default_labels())


def label_case(backend: str, n: int, model: str, export: str | None) -> dict:
    """Encode n labels once (no cache); seconds and memory growth."""
    from sigrl.bench.timing import PeakRss

    runner = _open(backend, model, export)
    labels = _labels(n)
    with runner, PeakRss() as rss:
        start = time.perf_counter()
        side = runner.label_side(labels)
        seconds = time.perf_counter() - start
    assert len(side) == n
    return {"seconds": seconds, "peak_bytes": rss.growth_bytes}


def image_case(backend: str, n: int, model: str, export: str | None, batch: int) -> dict:
    """Score a batch against n labels (label-side tensors drawn at random: the cost does not depend
    on their values); ms/image (best of IMAGE_REPEATS) and memory growth."""
    import numpy as np

    from sigrl.bench.timing import PeakRss
    from sigrl.runtime.label_cache import LabelArrays

    runner = _open(backend, model, export)
    gen = np.random.default_rng(0)
    dim = int(runner.manifest.arch["embed_dim"]) if backend == "onnx" else runner.model.dim
    side = LabelArrays(embeddings=gen.standard_normal((n, dim), dtype=np.float32),
                       context=gen.standard_normal((n, dim), dtype=np.float32))
    size = runner.preprocess.image_size
    images = gen.integers(0, 256, (batch, size, size, 3), dtype=np.uint8)
    step = runner.max_batch(n)
    times = []
    with runner, PeakRss() as rss:
        for _ in range(IMAGE_REPEATS):
            start = time.perf_counter()
            for i in range(0, batch, step):
                runner._score(images[i : i + step], side)
            times.append(time.perf_counter() - start)
    return {"ms_per_image": min(times) / batch * 1e3, "peak_bytes": rss.growth_bytes, "batch": batch, "per_call": step}


def vitb_case(n: int) -> dict:
    from head import run_case

    row = run_case(n, VITB_BATCH, 32, 1)
    return {"ms_per_image": row["seconds_per_image"] * 1e3, "peak_bytes": row["peak_head_bytes"], "batch": VITB_BATCH}


def _open(backend: str, model: str, export: str | None):
    if backend == "onnx":
        from sigrl.runtime.onnx_runner import OnnxRunner

        runner = OnnxRunner(export)
    else:
        from sigrl.runtime.torch_runner import TorchRunner

        runner = TorchRunner(model, "cpu", "fp32")
    runner.progress = False
    return runner


def _child(kind: str, backend: str, n: int, args: argparse.Namespace, export: str | None) -> dict:
    cmd = [sys.executable, __file__, "--case", f"{kind}:{backend}:{n}", "--model", args.model,
           "--image-batch", str(args.image_batch)]
    if export:
        cmd += ["--export", export]
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        tail = (out.stderr.strip().splitlines() or ["no output"])[-1]
        return {"kind": kind, "backend": backend, "n_labels": n, "error": tail[:300]}
    row = json.loads(out.stdout.strip().splitlines()[-1])
    row.update(kind=kind, backend=backend, n_labels=n, process_s=time.perf_counter() - start)
    print(json.dumps(row), flush=True)
    return row


def _gmc_pair_gb(n: int, heads: int, dim: int) -> float:
    return n * n * heads * dim * 4 / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", default="1000,5000,10000")
    parser.add_argument("--model", default=None, help="checkpoint or config (default: the embedded default model)")
    parser.add_argument("--image-batch", type=int, default=4)
    parser.add_argument("--skip-vitb", action="store_true", help="leave out the ViT-B/16-sized head rows")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results/<machine-id>)")
    parser.add_argument("--only", default=None,
                        help="re-measure these cases (KIND:BACKEND, comma list: label:torch, image:onnx, vitb:torch) "
                             "and keep the other rows of the existing labels.json")
    parser.add_argument("--case", help=argparse.SUPPRESS)
    parser.add_argument("--export", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child process: one case, JSON on stdout
        kind, backend, n = args.case.split(":")
        if kind == "label":
            row = label_case(backend, int(n), args.model, args.export)
        elif kind == "image":
            row = image_case(backend, int(n), args.model, args.export, args.image_batch)
        else:
            row = vitb_case(int(n))
        print(json.dumps(row))
        return

    from sigrl.bench.inputs import resolve_model
    from sigrl.machine import cpu_model, machine_id
    from sigrl.export.exporter import export_model
    from sigrl.model.factory import open_model

    choice = resolve_model(args.model)
    args.model = choice.spec
    model = open_model(choice.spec)
    head = model.config.head
    sizes = [int(v) for v in args.labels.split(",")]
    out_dir = args.out or RESULTS / machine_id()
    only = set(args.only.split(",")) if args.only else None
    kept = []
    if only and (out_dir / "labels.json").is_file():
        kept = [r for r in json.loads((out_dir / "labels.json").read_text())["rows"]
                if f"{r['kind']}:{r['backend']}" not in only or r["n_labels"] not in sizes]
    cases = [(kind, backend) for kind, backend in
             [("label", "torch"), ("label", "onnx"), ("image", "torch"), ("image", "onnx"), ("vitb", "torch")]
             if (only is None or f"{kind}:{backend}" in only) and not (kind == "vitb" and args.skip_vitb)]
    load_start = os.getloadavg()
    rows = []
    with tempfile.TemporaryDirectory(prefix="sigrl-bench-labels-") as tmp:
        export_model(choice.spec, Path(tmp) / "export", format="onnx", precision="fp32")
        export = str(Path(tmp) / "export")
        for n in sizes:
            for kind, backend in cases:
                rows.append(_child(kind, backend, n, args, None if kind == "vitb" else export))
    rows = kept + rows
    report = {
        "machine": {"id": machine_id(), "cpu": cpu_model(), "cores": os.cpu_count(),
                    "loadavg_start": load_start, "loadavg_end": os.getloadavg()},
        "model": {"name": model.config.name, "note": choice.note, "dim": model.dim, "label_chunk": head.label_chunk,
                  "gmc": head.uses_gmc, "gmc_heads": head.gmc_heads, "gmc_head_dim": head.gmc_head_dim,
                  "prompt": model.config.text.prompt},
        "image_batch": args.image_batch,
        "remeasured": sorted(only) if only else [],
        "rows": rows,
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    report = portable(report)  # no machine paths in committed results
    (out_dir / "labels.json").write_text(json.dumps(report, indent=2) + "\n")
    text = render(report)
    (out_dir / "labels.md").write_text(text)
    print(text)


def _mib(row: dict) -> str:
    return f"{row['peak_bytes'] / 2**20:,.0f} MiB"


def render(report: dict) -> str:
    m, model = report["machine"], report["model"]
    by = {(r["kind"], r["backend"], r["n_labels"]): r for r in report["rows"]}
    sizes = sorted({r["n_labels"] for r in report["rows"]})
    lines = [
        f"# Large label sets: {model['name']} ({model['note']})",
        "",
        f"{m['cpu']}, {m['cores']} cores (shared machine), load average {m['loadavg_start'][0]:.1f} at the start, "
        f"{m['loadavg_end'][0]:.1f} at the end. Made by `python scripts/bench/labels.py`; each case in a fresh process, "
        "memory = peak resident size during the measured call minus the size just before it.",
        *([f"Re-measured in a later run (`--only`, the load average above is that run's): "
           f"{', '.join(report['remeasured'])}."] if report.get("remeasured") else []),
        "",
        "## Label side (once per label set, label cache off)",
        "",
        "| N | PyTorch s | PyTorch peak | ONNX Runtime s | ONNX Runtime peak | GMC pair term if held whole |",
        "|---:|---:|---:|---:|---:|---:|",
    ]

    def cell(row: dict | None, key: str, fmt) -> str:
        if row is None:
            return "not run"
        return f"failed: {row['error']}" if "error" in row else fmt(row[key])

    for n in sizes:
        t, o = by.get(("label", "torch", n)), by.get(("label", "onnx", n))
        whole = _gmc_pair_gb(n, model["gmc_heads"], model["gmc_head_dim"]) if model["gmc"] else 0.0
        lines.append(
            f"| {n:,} | {cell(t, 'seconds', lambda v: f'{v:.1f}')} | {cell(t, 'peak_bytes', lambda v: _mib(t))} | "
            f"{cell(o, 'seconds', lambda v: f'{v:.1f}')} | {cell(o, 'peak_bytes', lambda v: _mib(o))} | "
            f"{whole:,.1f} GB |"
        )
    lines += [
        "",
        f"## Image side (batch {report['image_batch']}; best of {IMAGE_REPEATS})",
        "",
        "| N | PyTorch ms/image (chunk {0}) | PyTorch peak | ONNX Runtime ms/image (images per call) | ONNX Runtime peak "
        "| SVFR head alone at ViT-B/16 dims, ms/image | its peak |".format(model["label_chunk"]),
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for n in sizes:
        t, o, v = by.get(("image", "torch", n)), by.get(("image", "onnx", n)), by.get(("vitb", "torch", n))
        onnx_ms = cell(o, "ms_per_image", lambda x: f"{x:.1f} ({o['per_call']})")
        lines.append(
            f"| {n:,} | {cell(t, 'ms_per_image', lambda x: f'{x:.1f}')} | {cell(t, 'peak_bytes', lambda x: _mib(t))} | "
            f"{onnx_ms} | {cell(o, 'peak_bytes', lambda x: _mib(o))} | "
            f"{cell(v, 'ms_per_image', lambda x: f'{x:,.0f}')} | {cell(v, 'peak_bytes', lambda x: _mib(v))} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
