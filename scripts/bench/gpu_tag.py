"""`sigrl tag` throughput on a CUDA GPU: the PyTorch backend at each precision on one folder of
640x480 JPEGs, with the random-init ViT-B/32 of the tagging bench (realistic inference cost; the tags
mean nothing). Not a test: it measures and writes gpu_tag.json and gpu_tag.md.

Every variant runs the real command in a subprocess. Images/s is the job's, from the run metadata
(model hash, label side, decoding, inference and writing; not process start or model load); the
metadata's timings say how much of it was inference and how long the job waited for decoding.

    python scripts/bench/gpu_tag.py --out bench/results/<machine-id>
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, also under `python -P`
from photos import PHOTO_LABELS, PHOTO_MODEL, make_photos, photo_sources  # noqa: E402
from tagging import TOPK  # noqa: E402
from sigrl.environment import portable


def photo_folder(work: Path, unique: int, copies: int) -> Path:
    """`unique` jittered 640x480 photos, hard-linked `copies` times into sub-folders of one folder."""
    base = work / "photos-vga"
    paths = make_photos(photo_sources(), base / "c0", unique, (640, 480))
    for c in range(1, copies):
        folder = base / f"c{c}"
        folder.mkdir(exist_ok=True)
        for p in paths:
            if not (folder / p.name).exists():
                os.link(p, folder / p.name)
    return base


def tag_once(folder: Path, labels: Path, out: Path, model: str, cache: Path, args: list[str], timeout: float) -> dict:
    cmd = [sys.executable, "-m", "sigrl.cli.main", "tag", str(folder), "--labels", str(labels), "--out", str(out),
           "--model", model, "--label-cache", str(cache), "--topk", str(TOPK), "--overwrite", "--quiet", *args]
    start = time.perf_counter()
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return {"command": " ".join(cmd[2:]), "status": f"timed out after {timeout:.0f} s"}
    wall = time.perf_counter() - start
    if done.returncode != 0:
        lines = [line for line in done.stderr.strip().splitlines() if line.strip()]
        return {"command": " ".join(cmd[2:]), "status": f"exit {done.returncode}: {' | '.join(lines[-3:])}"}
    from sigrl.tagging.runs.metafile import read_meta

    meta = read_meta(out)
    run = meta["runs"][-1]
    return {
        "command": " ".join(cmd[2:]), "status": "ran", "process_wall_s": round(wall, 2),
        "images": run["tagged"] + run["errors"], "errors": run["errors"], "job_wall_s": run["wall_s"],
        "images_per_s": run["images_per_s"], "timings": run["timings"], "device": meta["device"],
        "precision": meta["precision"], "decode": meta.get("decode", ""), "batch_size": meta["batch_size"], "workers": meta["workers"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--unique", type=int, default=256, help="distinct 640x480 JPEGs to make")
    parser.add_argument("--copies", type=int, default=4, help="hard-linked copies of them (images = unique x copies)")
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--precisions", default="fp32,fp16,bf16")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--model", default=PHOTO_MODEL)
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds per sigrl tag run")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "sigrl" / "bench" / "gpu_tag")
    parser.add_argument("--out", type=Path, required=True, help="folder for gpu_tag.json and gpu_tag.md")
    args = parser.parse_args()

    import torch

    from sigrl.machine import cpu_model, usable_cores

    args.work.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    folder = photo_folder(args.work, args.unique, args.copies)
    made_s = time.perf_counter() - start
    labels = args.work / "labels.txt"
    labels.write_text("\n".join(PHOTO_LABELS) + "\n")
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no CUDA device"
    report: dict[str, Any] = {
        "machine": {"cpu": cpu_model(), "usable_cores": usable_cores(), "gpu": gpu,
                    "torch": torch.__version__},
        "model": f"{args.model} (random init)", "labels": len(PHOTO_LABELS), "topk": TOPK,
        "images": args.unique * args.copies, "unique_images": args.unique, "photos_made_s": round(made_s, 2),
        "variants": {},
    }
    for precision in filter(None, args.precisions.split(",")):
        name = f"torch-{precision}-{args.device}"
        print(f"[gpu_tag] sigrl tag {name} on {report['images']} images ...", file=sys.stderr, flush=True)
        extra = ["--backend", "torch", "--device", args.device, "--precision", precision, "--batch-size", str(args.batch_size)]
        report["variants"][name] = tag_once(folder, labels, args.work / f"{name}.jsonl", args.model,
                                            args.work / "label-cache", extra, args.timeout)
    args.out.mkdir(parents=True, exist_ok=True)
    report = portable(report)  # no machine paths in committed results
    (args.out / "gpu_tag.json").write_text(json.dumps(report, indent=1) + "\n")
    (args.out / "gpu_tag.md").write_text(to_markdown(report))
    print(to_markdown(report))


def to_markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        f"# `sigrl tag` on {m['gpu']}", "",
        f"{report['images']} JPEGs of 640x480 ({report['unique_images']} distinct), {report['labels']} labels, "
        f"top-{report['topk']}, model {report['model']}; {m['cpu']}, {m['usable_cores']} usable cores, torch {m['torch']}.", "",
        "| variant | status | images | img/s (job) | batch | decode threads | inference s | waiting for decode s | process s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, v in report["variants"].items():
        if v["status"] != "ran":
            lines.append(f"| {name} | {v['status']} | - | - | - | - | - | - | - |")
            continue
        t = v["timings"]
        lines.append(f"| {name} | ran | {v['images']} | {v['images_per_s']:.1f} | {v['batch_size']} | {v['workers']} | "
                     f"{t.get('infer_s', 0):.2f} | {t.get('decode_wait_s', 0):.2f} | {v['process_wall_s']:.1f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
