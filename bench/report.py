"""The bench's outputs: bench.json (everything, with the environment header), bench.csv (one line
per row), bench.md (the tables) and bench.png (throughput against mAP with the Pareto front, and
head scaling). The plot needs matplotlib (`pip install 'sigrl[bench]'`); without it the other files
are still written and the report says how to get the plot.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any, Sequence

from sigrl.environment import portable

PLOT_HINT = "pip install 'sigrl[bench]' (matplotlib) and re-run to get bench.png"

CSV_FIELDS = (
    "row", "backend", "precision", "device", "status", "reason", "export", "parity", "artifact_bytes", "mAP",
    "mAP_delta_vs_torch_fp32", "F1@3", "drift_vs_torch_fp32", "latency_p50_ms", "latency_p95_ms",
    "latency_p99_ms", "latency_outliers", "latency_reps", "model_images_per_s", "best_batch", "e2e_images_per_s",
    "e2e_speedup_vs_naive", "peak_rss_bytes", "peak_device_bytes",
)


def flat_row(row: dict[str, Any]) -> dict[str, Any]:
    """One row as the flat record of the CSV (times in ms)."""
    out = {k: row.get(k) for k in CSV_FIELDS}
    lat = row.get("latency")
    if lat:
        out.update(latency_p50_ms=lat["p50_s"] * 1e3, latency_p95_ms=lat["p95_s"] * 1e3,
                   latency_p99_ms=lat["p99_s"] * 1e3, latency_outliers=lat["outliers"], latency_reps=lat["reps"])
    thr = row.get("throughput")
    if thr:
        out.update(model_images_per_s=thr["images_per_s"], best_batch=thr["best_batch"])
    return out


def _num(value: Any, fmt: str) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return format(value, fmt)


def _mb(value: Any) -> str:
    return "-" if value is None else f"{value / 2**20:.1f}"


def markdown(result: dict[str, Any]) -> str:
    env, data, model = result["environment"], result["data"], result["model"]
    gpu = env["backends"]["torch"]["detail"]
    load = result["load_average"]
    lines = [
        f"Model: `{model['spec']}` ({model['note']}). Data: {data['name'] or data['manifest']} "
        f"({data['images']} images, {data['labels']} labels).",
        f"Machine: {env['cpu']}, {env['cores']} cores; torch {gpu}. Load average (1 min) "
        f"{load['start'][0]:.1f} at start, {load['end'][0]:.1f} at end: the machine is shared, compare rows of one run.",
        "",
        "| row | status | export | parity | size MB | mAP | ΔmAP | F1@3 | max drift | p50 ms | p95 ms | p99 ms "
        "| outliers | model img/s (batch) | end-to-end img/s | × naive | peak RSS MB |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["rows"]:
        f = flat_row(row)
        status = row["status"] if row["status"] == "ran" else f"{row['status']}: {row.get('reason', '')}"
        thr = "-" if f["model_images_per_s"] is None else f"{f['model_images_per_s']:.1f} ({f['best_batch']})"
        outl = "-" if f["latency_outliers"] is None else f"{f['latency_outliers']}/{f['latency_reps']}"
        lines.append(
            f"| {row['row']} | {status} | {row['export']} | {row['parity']} | {_mb(row.get('artifact_bytes'))} "
            f"| {_num(f['mAP'], '.4f')} | {_num(f['mAP_delta_vs_torch_fp32'], '+.4f')} | {_num(f['F1@3'], '.4f')} "
            f"| {_num(f['drift_vs_torch_fp32'], '.1e')} | {_num(f['latency_p50_ms'], '.2f')} "
            f"| {_num(f['latency_p95_ms'], '.2f')} | {_num(f['latency_p99_ms'], '.2f')} | {outl} | {thr} "
            f"| {_num(f['e2e_images_per_s'], '.1f')} | {_num(f['e2e_speedup_vs_naive'], '.2f')} "
            f"| {_mb(row.get('peak_rss_bytes'))}"
            f"{'' if row.get('peak_device_bytes') is None else ' (GPU ' + _mb(row['peak_device_bytes']) + ')'} |"
        )
    lines += ["", *scaling_markdown(result.get("head_scaling") or {})]
    return "\n".join(lines) + "\n"


def scaling_markdown(scaling: dict[str, Any]) -> list[str]:
    cases = scaling.get("cases") or []
    if not cases:
        return [f"Head scaling: not measured ({scaling.get('error', 'no --labels-sweep')})."]
    variants = list(dict.fromkeys(c["variant"] for c in cases))
    sizes = sorted({c["n_labels"] for c in cases})
    by = {(c["variant"], c["n_labels"]): c for c in cases}
    lines = [
        "Head scaling: ms per image of the full model (backbone + head) vs label count, "
        "with the resident-memory growth while it ran.",
        "",
        "| labels | " + " | ".join(variants) + " |",
        "|---:|" + "---:|" * len(variants),
    ]
    for n in sizes:
        cells = []
        for v in variants:
            c = by.get((v, n))
            if c is None or c.get("status") != "ran":
                cells.append("-" if c is None else c["status"][:40])
            else:
                cells.append(f"{c['seconds_per_image'] * 1e3:.2f} ms ({c['head_peak_bytes'] / 2**20:.0f} MB)")
        lines.append(f"| {n} | " + " | ".join(cells) + " |")
    return lines


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points no other point beats on both axes (higher is better on both), by x."""
    order = sorted(range(len(points)), key=lambda i: (-points[i][0], -points[i][1]))
    front, best_y = [], -math.inf
    for i in order:
        if points[i][1] > best_y:
            front.append(i)
            best_y = points[i][1]
    return sorted(front, key=lambda i: points[i][0])


def plot(result: dict[str, Any], path: Path) -> bool:
    """Write the PNG; False (nothing written) when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
        import matplotlib.ticker
    except ImportError:
        return False
    ran = [r for r in result["rows"] if r["status"] == "ran" and not math.isnan(r.get("mAP", math.nan))]
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(13, 5))
    pts = [(r["throughput"]["images_per_s"], r["mAP"]) for r in ran]
    for i, ((x, y), r) in enumerate(zip(pts, ran)):
        ax.scatter([x], [y], s=40, zorder=3)
        # staggered offsets keep the names of nearby points apart
        ax.annotate(r["row"], (x, y), textcoords="offset points", xytext=(6, 6 - 11 * (i % 3)), fontsize=8)
    front = pareto_front(pts)
    if front:
        fx, fy = [pts[i][0] for i in front], [pts[i][1] for i in front]
        ax.plot(fx, fy, "--", color="gray", zorder=2)
        ax.scatter(fx, fy, s=160, facecolors="none", edgecolors="black", zorder=4, label="Pareto front")
        ax.legend(loc="best")
    xs = [x for x, _ in pts]
    log_x = bool(xs) and max(xs) > 10 * min(xs)  # a log axis only where the rows span a decade
    if log_x:
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    ax.margins(x=0.25, y=0.15)
    ax.set_xlabel("model-only throughput at best batch (images/s" + (", log)" if log_x else ")"))
    ax.set_ylabel("mAP")
    ax.set_title(f"{Path(result['model']['spec']).name} on {result['data']['images']} images")
    ax.grid(True, alpha=0.3)
    cases = [c for c in (result.get("head_scaling") or {}).get("cases", []) if c.get("status") == "ran"]
    for variant in dict.fromkeys(c["variant"] for c in cases):
        cs = sorted((c for c in cases if c["variant"] == variant), key=lambda c: c["n_labels"])
        ax2.plot([c["n_labels"] for c in cs], [c["seconds_per_image"] * 1e3 for c in cs], "o-", label=variant)
    ax2.set_xscale("log")
    ax2.set_yscale("log")
    for axis in (ax2.xaxis, ax2.yaxis):
        axis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
        axis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    if cases:
        ax2.set_xticks(sorted({c["n_labels"] for c in cases}))
    ax2.set_xlabel("labels N")
    ax2.set_ylabel("ms per image (full model)")
    ax2.set_title("head scaling")
    ax2.grid(True, alpha=0.3)
    if cases:
        ax2.legend()
    fig.suptitle(f"sigrl bench: {result['environment']['cpu']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def default_out_dir(quick: bool, machine: str, reference: bool = False) -> Path:
    """Where a run writes without --out: sigrl-bench/<machine-id>/ (sigrl-bench-quick/ with --quick),
    in the working directory. The committed reference results, bench/results/<machine-id>/, are
    written only when asked for with `reference` (--reference: scripts/bench/gpu.sh); a quick run's small
    numbers never go there."""
    if reference:
        return Path("bench/results") / machine
    return Path("sigrl-bench-quick" if quick else "sigrl-bench") / machine


def write_reports(result: dict[str, Any], out: Path) -> dict[str, Path]:
    """Write every output into `out`; returns {kind: path} of the files written."""
    out.mkdir(parents=True, exist_ok=True)
    result = portable(json.loads(json.dumps(result, default=str)))  # no machine paths in committed results
    files = {"json": out / "bench.json", "csv": out / "bench.csv", "markdown": out / "bench.md"}
    files["json"].write_text(json.dumps(result, indent=2, default=str) + "\n")
    with open(files["csv"], "w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for row in result["rows"]:
            writer.writerow(flat_row(row))
    files["markdown"].write_text(markdown(result))
    if plot(result, out / "bench.png"):
        files["plot"] = out / "bench.png"
    return files


def below_floor(result: dict[str, Any], floor: float) -> list[str]:
    """Rows whose mAP is below `floor` (NaN counts as below), and rows that failed: a gate must not
    pass because the row it guards crashed. Rows unavailable on this machine do not count."""
    return [r["row"] for r in result["rows"]
            if r["status"] == "failed" or (r["status"] == "ran" and not r["mAP"] >= floor)]
