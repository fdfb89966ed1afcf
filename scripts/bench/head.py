"""SVFR head cost at ViT-B/16 dimensions (D=512, P=196): time per image and peak memory,
label-chunked vs unchunked, for N = 81 and 1006 labels at batch 8.

Each case runs in a fresh subprocess so that its peak resident memory (ru_maxrss) belongs to that
case alone; the head's peak is reported as that peak minus the resident size just before the head
runs (inputs and weights already allocated). Results go to bench/results/<machine-id>/head.json and
head.md, with the load average seen during the run (these machines are shared: compare rows of one
run, not runs).

    python scripts/bench/head.py            
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

D, P = 512, 196
RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
# Unchunked cases whose [B, P, N, D] tensors would need more than this are skipped, not run.
UNCHUNKED_LIMIT_GB = 8.0


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def run_case(n_labels: int, batch: int, chunk: int | None, repeats: int) -> dict:
    """One measurement, in this process (called in a subprocess by main)."""
    import torch

    from sigrl.model.scoring import local_scores
    from sigrl.model.svfr import SVFR

    torch.manual_seed(0)
    head = SVFR(D).eval()
    feats = torch.randn(batch, P, D)
    h = torch.randn(n_labels, D)
    context = torch.randn(n_labels, D)
    before = _rss_bytes()
    times = []
    with torch.no_grad():
        for _ in range(repeats):
            start = time.perf_counter()
            recon = head(feats, h, context, chunk)
            local_scores(recon, h, 16)
            times.append(time.perf_counter() - start)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return {
        "n_labels": n_labels,
        "batch": batch,
        "label_chunk": chunk,
        "seconds_per_image": min(times) / batch,
        "peak_head_bytes": max(0, peak - before),
        "threads": torch.get_num_threads(),
    }


def _unchunked_estimate_gb(n_labels: int, batch: int) -> float:
    # about four live [B, P, N, D] fp32 tensors (product, tanh, projection, softmax)
    return 4 * batch * P * n_labels * D * 4 / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--labels", default="81,1006")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--chunk", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--case", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.case:  # child process: one case, JSON on stdout
        n, chunk = args.case.split(":")
        print(json.dumps(run_case(int(n), args.batch, None if chunk == "none" else int(chunk), args.repeats)))
        return

    rows = []
    for n in (int(v) for v in args.labels.split(",")):
        for chunk in (args.chunk, None):
            if chunk is None and _unchunked_estimate_gb(n, args.batch) > UNCHUNKED_LIMIT_GB:
                est = _unchunked_estimate_gb(n, args.batch)
                rows.append({"n_labels": n, "batch": args.batch, "label_chunk": None, "skipped":
                             f"unchunked needs about {est:.0f} GB (> {UNCHUNKED_LIMIT_GB:.0f} GB limit on this machine)"})
                continue
            tag = f"{n}:{chunk if chunk else 'none'}"
            out = subprocess.run(
                [sys.executable, __file__, "--case", tag, "--batch", str(args.batch), "--repeats", str(args.repeats)],
                check=True, capture_output=True, text=True,
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)

    from sigrl.machine import cpu_model, machine_id

    report = {
        "machine": {"id": machine_id(), "cpu": cpu_model(), "cores": os.cpu_count(), "loadavg": os.getloadavg()},
        "dims": {"D": D, "P": P},
        "rows": rows,
    }
    out_dir = RESULTS / machine_id()
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "head.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        f"SVFR head at D={D}, P={P}, batch {args.batch}; {report['machine']['cpu']}, {report['machine']['cores']} cores, "
        f"load average {report['machine']['loadavg'][0]:.1f} at the end (shared machine)",
        "",
        "| N | label_chunk | ms / image | peak head memory |",
        "|---|---|---|---|",
    ]
    for r in rows:
        chunk = r["label_chunk"] or "none"
        if "skipped" in r:
            lines.append(f"| {r['n_labels']} | {chunk} | skipped | {r['skipped']} |")
        else:
            lines.append(f"| {r['n_labels']} | {chunk} | {r['seconds_per_image'] * 1e3:.0f} | {r['peak_head_bytes'] / 2**20:.0f} MiB |")
    (out_dir / "head.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
