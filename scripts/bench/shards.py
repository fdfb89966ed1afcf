"""Tags/s from WebDataset tar shards against the same images as loose files (local engine).

    python scripts/bench/shards.py [--images 300] [--shards 3] [--rounds 3] [--model MODEL]

The same JPEGs (640x480, made from the sample photographs scripts/bench/tagging.py uses) are tagged by
`sigrl tag` in a subprocess, once as a folder of files and once as tar shards holding the same
bytes, alternating, `--rounds` times each; the table gives the median of each. "job" is the run's
own wall time from its metadata sidecar (process start-up excluded), "process" the whole command.
Both runs' tags are compared. Results: bench/results/<machine-id>/shards.{md,json}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, also under `python -P`
from photos import make_photos, photo_sources  # noqa: E402
from tagging import machine  # noqa: E402

LABELS = ["person", "cat", "dog", "rocket", "coffee cup", "flower", "building", "car", "sky", "tree"]


def write_shards(paths: list[Path], out: Path, shards: int) -> list[Path]:
    """`shards` tars holding the images as `KEY.jpg` members (no unpacking, same bytes)."""
    out.mkdir(parents=True, exist_ok=True)
    per = -(-len(paths) // shards)
    tars = []
    for s in range(shards):
        tar_path = out / f"{s:05d}.tar"
        with tarfile.open(tar_path, "w") as tar:
            for p in paths[s * per : (s + 1) * per]:
                tar.add(p, arcname=p.name)
        tars.append(tar_path)
    return tars


def run(inputs: str, labels: Path, out: Path, model: str, cache: Path) -> dict:
    cmd = [sys.executable, "-m", "sigrl.cli.main", "tag", inputs, "--labels", str(labels), "--out", str(out),
           "--model", model, "--label-cache", str(cache), "--overwrite", "--quiet"]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"sigrl tag failed ({done.returncode}): {done.stderr[-2000:]}")
    from sigrl.tagging.runs.metafile import read_meta
    from sigrl.tagging.outputs.writer import read_records

    meta = read_meta(out)
    last = meta["runs"][-1]
    tags = {Path(r["path"].split("#")[-1]).stem: [t["label"] for t in r["tags"]] for r in read_records(out)}
    return {"images": last["tagged"], "job_s": last["wall_s"], "process_s": round(wall, 2), "backend": meta["backend"],
            "precision": meta["precision"], "loadavg_before": round(load, 2), "tags": tags}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--shards", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default=None, help="default: the embedded model")
    parser.add_argument("--out", type=Path, default=None, help="default: bench/results/<machine-id>/")
    args = parser.parse_args()
    from sigrl.tagging.spec import resolve_model

    model = resolve_model(args.model)
    host = machine()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        photos = make_photos(photo_sources(), work / "photos", args.images, (640, 480))
        tars = write_shards(photos, work / "shards", args.shards)
        labels = work / "labels.txt"
        labels.write_text("\n".join(LABELS) + "\n")
        pattern = os.fspath(work / "shards" / f"{{00000..{args.shards - 1:05d}}}.tar")
        cache = work / "cache"
        run(os.fspath(work / "photos"), labels, work / "warm.jsonl", model, cache)  # label cache, file cache
        rounds: dict[str, list[dict]] = {"files": [], "shards": []}
        for _ in range(args.rounds):
            rounds["files"].append(run(os.fspath(work / "photos"), labels, work / "files.jsonl", model, cache))
            rounds["shards"].append(run(pattern, labels, work / "shards.jsonl", model, cache))
        same = rounds["files"][-1]["tags"] == rounds["shards"][-1]["tags"]
        shard_bytes = sum(t.stat().st_size for t in tars)
    rows = {}
    for name, runs in rounds.items():
        job = statistics.median(r["job_s"] for r in runs)
        process = statistics.median(r["process_s"] for r in runs)
        rows[name] = {"job_s": job, "process_s": process, "tags_per_s_job": round(args.images / job, 1),
                      "tags_per_s_process": round(args.images / process, 1),
                      "runs": [{k: v for k, v in r.items() if k != "tags"} for r in runs]}
    report = {"machine": {**host, "loadavg_end": [round(x, 2) for x in os.getloadavg()]}, "images": args.images,
              "shards": args.shards, "shard_bytes": shard_bytes, "model": os.path.basename(model), "rounds": args.rounds,
              "identical_tags": same, "rows": rows}
    out = args.out or Path(__file__).resolve().parents[2] / "bench" / "results" / host["id"]
    out.mkdir(parents=True, exist_ok=True)
    (out / "shards.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "shards.md").write_text(to_markdown(report))
    print(to_markdown(report))


def to_markdown(report: dict) -> str:
    m, rows = report["machine"], report["rows"]
    backend = rows["files"]["runs"][0]
    lines = [
        f"# sigrl tag: tar shards against loose files ({report['images']} JPEGs, 640x480)",
        "",
        f"`python scripts/bench/shards.py --images {report['images']} --shards {report['shards']} --rounds {report['rounds']}`; "
        f"model {report['model']} ({backend['backend']} {backend['precision']}), local engine, default options; "
        f"median of {report['rounds']} alternating runs each.",
        "",
        "| input | tags/s (job) | tags/s (process) | job s | process s |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, label in (("files", f"{report['images']} files in a folder"),
                        ("shards", f"{report['shards']} tar shards (brace pattern), same bytes")):
        r = rows[name]
        lines.append(f"| {label} | {r['tags_per_s_job']} | {r['tags_per_s_process']} | {r['job_s']:.2f} | {r['process_s']:.2f} |")
    lines += [
        "",
        f"Identical tags from both inputs: {'yes' if report['identical_tags'] else 'NO'}. "
        f"Machine: {m['cpu']}, {m['usable_cores']} usable cores; load average {m['loadavg_start'][0]} at the start, "
        f"{m['loadavg_end'][0]} at the end (shared machine: compare the rows, not the absolute figures).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
