"""The README's quick start as a user feels it: whole-process wall time and peak memory of
`sigrl tag examples/images --labels examples/labels.txt --out ...` with the model omitted, on the
embedded default model's export (ONNX Runtime, the default when onnxruntime is installed) and on
its checkpoint (`--backend torch`), alternated run by run so both see the same machine load.

    python scripts/bench/quickstart.py [--runs 3]

Results: bench/results/<machine-id>/quickstart.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "bench" / "results"
# Each run in a fresh wrapper, so the wrapper's RUSAGE_CHILDREN peak is that run's peak alone.
_WRAPPER = """
import resource, subprocess, sys, time
start = time.perf_counter()
code = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode
wall = time.perf_counter() - start
print(code, wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)
"""


def one_run(mode: str, out: Path, cache: Path) -> dict:
    cmd = ["sigrl", "tag", "examples/images", "--labels", "examples/labels.txt", "--out", str(out), "--overwrite"]
    if mode == "torch":
        cmd += ["--backend", "torch"]
    env = {**os.environ, "SIGRL_CACHE": str(cache)}
    line = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], cwd=REPO, env=env, capture_output=True, text=True,
                          check=True).stdout.split()
    if line[0] != "0":
        raise SystemExit(f"sigrl tag failed in mode {mode}: {' '.join(cmd)}")
    return {"wall_s": round(float(line[1]), 3), "peak_mb": round(int(line[2]) / 1024, 1)}


def main() -> None:
    from sigrl.machine import cpu_model, machine_id

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--runs", type=int, default=3)
    args = p.parse_args()
    runs: dict[str, list[dict]] = {"onnx": [], "torch": []}
    with tempfile.TemporaryDirectory() as tmp:
        for mode in runs:  # one unmeasured run each fills the label cache, as a user's second run finds it
            one_run(mode, Path(tmp) / f"{mode}.jsonl", Path(tmp) / "cache")
        for _ in range(args.runs):
            for mode in runs:
                runs[mode].append(one_run(mode, Path(tmp) / f"{mode}.jsonl", Path(tmp) / "cache"))
    summary = {mode: {"median_wall_s": statistics.median(r["wall_s"] for r in rs),
                      "median_peak_mb": statistics.median(r["peak_mb"] for r in rs), "runs": rs} for mode, rs in runs.items()}
    report = {"machine": machine_id(), "cpu": cpu_model(), "cores": os.cpu_count(), "loadavg_end": os.getloadavg()[0],
              "command": "sigrl tag examples/images --labels examples/labels.txt --out tags.jsonl", **summary}
    folder = RESULTS / machine_id()
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "quickstart.json").write_text(json.dumps(report, indent=1) + "\n")
    o, t = summary["onnx"], summary["torch"]
    md = [f"# Quick start, whole process ({report['cpu']}, {report['cores']} cores, load average {report['loadavg_end']:.1f} at the end)",
          "", f"`{report['command']}`, model omitted; median of {args.runs} alternated runs, label cache warm.", "",
          "| path | wall s | peak MB |", "|---|---:|---:|",
          f"| shipped export on ONNX Runtime (default with onnxruntime) | {o['median_wall_s']:.2f} | {o['median_peak_mb']:.0f} |",
          f"| checkpoint on PyTorch (`--backend torch`) | {t['median_wall_s']:.2f} | {t['median_peak_mb']:.0f} |",
          "", f"Ratio: {t['median_wall_s'] / o['median_wall_s']:.1f}x faster start, {t['median_peak_mb'] / o['median_peak_mb']:.1f}x less memory.",
          "", "    python scripts/bench/quickstart.py", ""]
    (folder / "quickstart.md").write_text("\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
