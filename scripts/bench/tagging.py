"""End-to-end tagging throughput: `sigrl tag` against the loop a user would write, same model, same
images, same decision rule (top-5), in one run. Not a test: it measures and writes a report.

Image sets (built once, cached under --work):
- photos-12mp: camera-size JPEGs (4000x3000, some portrait), re-encoded from the real photographs
  that ship inside installed PyPI packages (scikit-image's data folder, matplotlib's and
  scikit-learn's sample images): random crop, flip and brightness per copy, upscaled, quality 90;
- photos-vga: the same kind of copies at 640x480;
- world: the procedural world's test images (64x64 PNG) with the embedded default model;
- photos-12mp-world: the 12 MP photos with the embedded default model (64x64 input, 64 labels).

Cases: every case runs `sigrl tag` as a subprocess (the real command: process start, model load,
label cache, decode pool, writer) and the naive loop in this process (PIL open + convert, the
model's preprocessing as torchvision transforms, batches of 32, PyTorch fp32 forward, one process),
side by side. Reported per case: images/s of both (sigrl's over its job and over the whole process),
the ratio, tag-set agreement, and where the time went (decode vs inference).

    python scripts/bench/tagging.py
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sigrl.environment import portable

sys.path.insert(0, str(Path(__file__).resolve().parent))  # the sibling scripts, also under `python -P`
from photos import PHOTO_LABELS, PHOTO_MODEL, make_photos, photo_sources  # noqa: E402

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"
TOPK = 5
NAIVE_BATCH = 32


# -- the two contenders ----------------------------------------------------------------------------
def run_sigrl_tag(folder: Path, labels: Path, out: Path, model: str, cache: Path, extra: Sequence[str] = ()) -> dict:
    """The real command in a subprocess; returns its metadata's last run plus the process wall time."""
    cmd = [sys.executable, "-m", "sigrl.cli.main", "tag", str(folder), "--labels", str(labels), "--out", str(out),
           "--model", model, "--label-cache", str(cache), "--overwrite", "--quiet", *extra]
    load = os.getloadavg()[0]
    start = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode not in (0, 1):
        raise SystemExit(f"sigrl tag failed ({done.returncode}): {done.stderr[-2000:]}")
    from sigrl.tagging.runs.metafile import read_meta

    meta = read_meta(out)
    run = meta["runs"][-1]
    return {"command": " ".join(cmd[2:]), "process_wall_s": round(wall, 2), "job_wall_s": run["wall_s"],
            "images": run["tagged"] + run["errors"], "errors": run["errors"], "timings": run["timings"],
            "decode": meta["decode"], "rechecked": run.get("rechecked", 0),
            "backend": meta["backend"], "precision": meta["precision"], "batch_size": meta["batch_size"],
            "workers": meta["workers"], "loadavg_before": round(load, 2), "loadavg_after": round(os.getloadavg()[0], 2)}


def sigrl_tags(out: Path) -> dict[str, list[str]]:
    from sigrl.tagging.outputs.writer import read_records

    return {Path(r["path"]).name: [t["label"] for t in r["tags"]] for r in read_records(out)}


def naive_loop(model_spec: str, paths: Sequence[Path], labels: Sequence[str]) -> dict:
    """What a user writes: PIL + torchvision transforms, batches of 32, torch fp32, one process."""
    import torch

    from sigrl.bench.naive import naive_loop as run_naive
    from sigrl.model.factory import open_model

    load = os.getloadavg()[0]
    run = run_naive(open_model(model_spec), paths, labels, batch_size=NAIVE_BATCH)
    order = np.argsort(-run.scores, axis=1, kind="stable")[:, :TOPK]
    tags = {Path(p).name: [labels[j] for j in row] for p, row in zip(paths, order)}
    return {"wall_s": round(run.seconds, 2), "images": len(paths), "decode_preprocess_s": round(run.decode_seconds, 2),
            "forward_s": round(run.forward_seconds, 2), "torch_threads": torch.get_num_threads(), "tags": tags,
            "loadavg_before": round(load, 2), "loadavg_after": round(os.getloadavg()[0], 2)}


def decode_only(paths: Sequence[Path], preprocess: Any, workers: int, exact: bool = False) -> float:
    """images/s of sigrl's decode pool alone (JPEG decode, drafted unless exact; EXIF, resize, crop)."""
    from sigrl.tagging.decode import DecodeOptions
    from sigrl.tagging.scoring.pipeline import iter_batches

    start = time.perf_counter()
    batches = iter_batches(paths, preprocess, batch_size=8, workers=workers, decoding=DecodeOptions(mode="exact" if exact else "fast"))
    n = sum(len(b) for b in batches)
    return n / (time.perf_counter() - start)


def agreement(a: dict[str, list[str]], b: dict[str, list[str]]) -> dict[str, float]:
    keys = sorted(set(a) & set(b))
    same = [set(a[k]) == set(b[k]) for k in keys]
    jaccard = [len(set(a[k]) & set(b[k])) / len(set(a[k]) | set(b[k])) for k in keys]
    top1 = [a[k][:1] == b[k][:1] for k in keys]
    # Share of b's tags that a also gave (for top-k rules: the mean fraction of the k tags kept).
    kept = sum(len(set(a[k]) & set(b[k])) for k in keys) / max(1, sum(len(b[k]) for k in keys))
    return {"images": len(keys), "identical_tag_sets": round(float(np.mean(same)), 4), "tag_agreement": round(kept, 4),
            "mean_jaccard": round(float(np.mean(jaccard)), 4), "top1": round(float(np.mean(top1)), 4)}


# -- cases -----------------------------------------------------------------------------------------
def run_case(name: str, folder: Path, labels: list[str], model: str, variants: dict[str, tuple[str, list[str]]],
             work: Path, naive_model: str) -> dict:
    """One image set: the naive loop, then each sigrl variant (model reference, extra CLI args)."""
    label_file = work / f"{name}.labels.txt"
    label_file.write_text("\n".join(labels) + "\n")
    paths = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    cache = work / "label-cache"
    print(f"[{name}] {len(paths)} images: naive loop ...", file=sys.stderr, flush=True)
    naive = naive_loop(naive_model, paths, labels)
    naive_ips = naive["images"] / naive["wall_s"]
    case = {"images": len(paths), "labels": len(labels), "naive": {k: v for k, v in naive.items() if k != "tags"},
            "naive_images_per_s": round(naive_ips, 3), "variants": {}}
    one = work / f"{name}.one"  # one image: a warm-up run that fills the label cache
    one.mkdir(exist_ok=True)
    if not (one / paths[0].name).exists():
        os.symlink(paths[0].resolve(), one / paths[0].name)
    for vname, (ref, extra) in variants.items():
        print(f"[{name}] sigrl tag {vname} ...", file=sys.stderr, flush=True)
        out = work / f"{name}.{vname}.jsonl"
        run_sigrl_tag(one, label_file, out, ref, cache, extra)
        result = run_sigrl_tag(folder, label_file, out, ref, cache, extra)
        job_ips, proc_ips = result["images"] / result["job_wall_s"], result["images"] / result["process_wall_s"]
        result.update({
            "images_per_s_job": round(job_ips, 3), "images_per_s_process": round(proc_ips, 3),
            "speedup_job": round(job_ips / naive_ips, 2), "speedup_process": round(proc_ips / naive_ips, 2),
            "agreement_with_naive": agreement(sigrl_tags(out), naive["tags"]),
        })
        case["variants"][vname] = result
    reference = next((v for v in case["variants"] if v.endswith("fp32")), None)
    for vname, result in case["variants"].items():  # precision's own effect, decoding held equal
        if reference and vname != reference:
            result["agreement_with_" + reference] = agreement(
                sigrl_tags(work / f"{name}.{vname}.jsonl"), sigrl_tags(work / f"{name}.{reference}.jsonl"))
    return case


def cold_start(export: Path, image: Path, work: Path) -> dict:
    """Wall time of `sigrl tag` on one image with an export directory, label cache cold then warm,
    and whether torch was imported on the way (checked in the process itself at exit)."""
    labels = work / "cold.labels.txt"
    labels.write_text("\n".join(PHOTO_LABELS) + "\n")
    probe = ("import atexit, sys; atexit.register(lambda: print('TORCH', 'torch' in sys.modules, file=sys.stderr)); "
             "sys.argv = ['sigrl'] + sys.argv[1:]; from sigrl.cli.main import main; main()")
    cache = work / "cold-cache"
    for stale in cache.glob("*.npz") if cache.exists() else []:
        stale.unlink()
    # The same command with only the tag module registered: what the entry point costs once every
    # command module imports its heavy dependencies lazily.
    alone = ("import atexit, sys; atexit.register(lambda: print('TORCH', 'torch' in sys.modules, file=sys.stderr)); "
             "import typer; from sigrl.cli.tag import tag; app = typer.Typer(); app.command()(tag); "
             "sys.argv = ['sigrl'] + sys.argv[2:]; app()")
    out = {}
    for state, code in (("cold label cache", probe), ("warm label cache", probe), ("warm, tag module alone", alone)):
        cmd = [sys.executable, "-c", code, "tag", str(image), "--labels", str(labels), "--out",
               str(work / "cold.jsonl"), "--model", str(export), "--label-cache", str(cache), "--overwrite", "--quiet"]
        start = time.perf_counter()
        done = subprocess.run(cmd, capture_output=True, text=True)
        wall = time.perf_counter() - start
        out[state] = {"wall_s": round(wall, 2), "exit": done.returncode, "torch_imported": "TORCH True" in done.stderr}
    return out


def machine() -> dict:
    from sigrl.machine import cpu_model, machine_id, usable_cores

    return {"id": machine_id(), "cpu": cpu_model(), "cores": os.cpu_count(), "usable_cores": usable_cores(),
            "loadavg_start": [round(x, 2) for x in os.getloadavg()]}


# -- the run ---------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos-12mp", type=int, default=120, help="camera-size JPEGs")
    parser.add_argument("--photos-vga", type=int, default=200, help="640x480 JPEGs")
    parser.add_argument("--world", type=int, default=200, help="world test images (0: skip)")
    parser.add_argument("--work", type=Path, default=Path.home() / ".cache" / "sigrl" / "bench" / "tagging")
    parser.add_argument("--out", type=Path, default=None, help="results folder (default bench/results/<machine-id>)")
    parser.add_argument("--only", default="", help="comma-separated cases to run (photos-12mp, photos-vga, world, "
                        "photos-12mp-world, cold); the other cases of an earlier report in --out are kept")
    parser.add_argument("--world-model", default=None, help="checkpoint for the world case (default: the embedded model)")
    parser.add_argument("--photo-seed", type=int, default=0, help="draws a different set of photos (kept in its own "
                        "folder), e.g. to check --decode checked on photos its margins were not measured on")
    args = parser.parse_args()
    only = set(filter(None, args.only.split(",")))
    wanted = lambda case: not only or case in only  # noqa: E731
    from sigrl.bench.inputs import ensure_export, resolve_model, world_test_split

    work = args.work
    work.mkdir(parents=True, exist_ok=True)
    report: dict[str, Any] = {"machine": machine(), "topk": TOPK, "naive_batch": NAIVE_BATCH, "cases": {}}
    out = args.out or RESULTS / report["machine"]["id"]
    if only and (out / "tagging.json").is_file():
        earlier = json.loads((out / "tagging.json").read_text())
        report["cases"] = {k: v for k, v in earlier.get("cases", {}).items() if k not in only}
        report.update({k: v for k, v in earlier.items() if k == "cold_start" and "cold" not in only})
    sources = photo_sources()
    report["photo_sources"] = [str(p) for p in sources]
    export = ensure_export(PHOTO_MODEL)
    if export.directory is None:
        raise SystemExit(f"cannot export {PHOTO_MODEL}: {export.error}")
    fp32, int8, exact, checked = [], ["--precision", "int8"], ["--decode", "exact"], ["--decode", "checked"]
    seeded = f"-seed{args.photo_seed}" if args.photo_seed else ""
    report["photo_seed"] = args.photo_seed
    if wanted("photos-12mp"):
        folder = work / f"photos-12mp{seeded}"
        make_photos(sources, folder, args.photos_12mp, (4000, 3000), args.photo_seed)
        report["cases"]["photos-12mp"] = run_case("photos-12mp", folder, PHOTO_LABELS, PHOTO_MODEL, {
            "onnx-fp32": (str(export.directory), fp32), "onnx-fp32-checked": (str(export.directory), checked),
            "onnx-fp32-exact": (str(export.directory), exact),
            "torch-fp32-exact": (PHOTO_MODEL, ["--backend", "torch", *exact]),
        }, work, PHOTO_MODEL)
    if wanted("photos-vga"):
        folder = work / f"photos-vga{seeded}"
        make_photos(sources, folder, args.photos_vga, (640, 480), args.photo_seed)
        report["cases"]["photos-vga"] = run_case("photos-vga", folder, PHOTO_LABELS, PHOTO_MODEL, {
            "onnx-fp32": (str(export.directory), fp32), "onnx-int8": (str(export.directory), int8),
        }, work, PHOTO_MODEL)
    if args.world and wanted("world"):
        from sigrl.data.manifest import load_manifest
        from sigrl.data.world_vocab import all_labels

        choice = resolve_model(args.world_model)
        manifest = load_manifest(world_test_split(args.world, work))
        folder = manifest.image_paths()[0].parent
        world_export = ensure_export(choice.spec, work)
        variants = {"torch-fp32": (choice.spec, fp32), "torch-fp32-batch32": (choice.spec, ["--batch-size", "32"]),
                    "torch-bf16": (choice.spec, ["--precision", "bf16"])}
        if world_export.directory is not None:
            variants["onnx-int8"] = (str(world_export.directory), int8)
        report["cases"]["world"] = run_case("world", folder, list(all_labels()), choice.spec, variants, work, choice.spec)
        report["cases"]["world"]["model"] = f"{choice.spec} ({choice.note})"
    if args.world and wanted("photos-12mp-world"):
        # A small-input model with 64 crowded labels on camera photos: decoding is nearly all the
        # work, and near-ties are everywhere (the hard case for --decode checked).
        from sigrl.data.world_vocab import all_labels

        choice = resolve_model(args.world_model)
        world_export = ensure_export(choice.spec, work)
        folder = work / f"photos-12mp{seeded}"
        make_photos(sources, folder, args.photos_12mp, (4000, 3000), args.photo_seed)
        if world_export.directory is not None:
            ref = str(world_export.directory)
            report["cases"]["photos-12mp-world"] = run_case("photos-12mp-world", folder, list(all_labels()), choice.spec, {
                "onnx-fp32": (ref, fp32), "onnx-fp32-checked": (ref, checked), "onnx-fp32-exact": (ref, exact),
            }, work, choice.spec)
            report["cases"]["photos-12mp-world"]["model"] = f"{choice.spec} ({choice.note})"
    for name in ("photos-12mp", "photos-vga"):
        if wanted(name) and name in report["cases"]:
            report["cases"][name]["decode_only_images_per_s"] = _decode_rates(work / f"{name}{seeded}", report["cases"][name], export)
    if wanted("cold"):
        image = sorted((work / "photos-vga").glob("*.jpg"))[:1] or make_photos(sources, work / "photos-vga", 1, (640, 480))
        report["cold_start"] = cold_start(export.directory, image[0], work)
    report["machine"]["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    out.mkdir(parents=True, exist_ok=True)
    report = portable(report)  # no machine paths in committed results
    (out / "tagging.json").write_text(json.dumps(report, indent=1) + "\n")
    (out / "tagging.md").write_text(to_markdown(report))
    print(to_markdown(report))


def _decode_rates(folder: Path, case: dict, export: Any) -> dict:
    """Decode-only throughput of sigrl's pool (2 threads) against the naive loop's PIL + transforms."""
    from sigrl.runtime.manifest import read_manifest

    paths = sorted(folder.glob("*.jpg"))
    pre = read_manifest(export.directory).preprocess
    naive = case["naive"]
    return {"sigrl_pool_2_threads": round(decode_only(paths, pre, 2), 2),
            "sigrl_pool_2_threads_exact": round(decode_only(paths, pre, 2, exact=True), 2),
            "sigrl_1_thread": round(decode_only(paths[: max(8, len(paths) // 4)], pre, 0), 2),
            "naive_pil_torchvision": round(naive["images"] / naive["decode_preprocess_s"], 2)}


def _rechecks(v: dict) -> str:
    if v.get("decode") != "checked":
        return "-"
    return f"{v['rechecked']} images, {v['timings'].get('recheck_s', 0)} s"


def _kept(a: dict) -> str:
    return f"{a['tag_agreement']:.1%}" if "tag_agreement" in a else "-"


def _decode_rate(rates: dict, variant: str) -> str:
    if variant.endswith("-exact") and "sigrl_pool_2_threads_exact" in rates:
        return f"{rates['sigrl_pool_2_threads_exact']} (pool, exact decode)"
    return f"{rates.get('sigrl_pool_2_threads', '-')} (pool), {rates.get('sigrl_1_thread', '-')} (1 thread)"


def to_markdown(report: dict) -> str:
    m = report["machine"]
    lines = [
        "# `sigrl tag` against the naive loop (same model, images and top-5 rule)", "",
        f"{m['cpu']}, {m['usable_cores']} usable cores; load average {m['loadavg_start'][0]} at the start and "
        f"{m.get('loadavg_end', ['?'])[0]} at the end (shared machine: compare rows of one run). "
        f"Naive loop: PIL + torchvision transforms, batches of {report['naive_batch']}, PyTorch fp32, one process.", "",
        "| case | images | labels | sigrl variant | sigrl img/s (job) | sigrl img/s (process) | naive img/s | "
        "speed-up (job) | speed-up (process) | identical tag sets | tag agreement | mean Jaccard | load before/after |",
        "| --- | ---: | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    for name, case in report["cases"].items():
        for vname, v in case["variants"].items():
            a = v["agreement_with_naive"]
            lines.append(
                f"| {name} | {case['images']} | {case['labels']} | {vname} (batch {v['batch_size']}, {v['workers']} threads) | "
                f"{v['images_per_s_job']:.2f} | {v['images_per_s_process']:.2f} | {case['naive_images_per_s']:.2f} | "
                f"{v['speedup_job']:.2f}x | {v['speedup_process']:.2f}x | {a['identical_tag_sets']:.1%} | {_kept(a)} | "
                f"{a['mean_jaccard']:.3f} | {v['loadavg_before']}/{v['loadavg_after']} |")
    lines += [""] + [f"- {name}: model {case.get('model', PHOTO_MODEL + ' (random init)')}" for name, case in report["cases"].items()]
    if report.get("photo_seed"):
        lines.append(f"- photos drawn with --photo-seed {report['photo_seed']} (a different set from the default one)")
    lines += ["", "Where the time goes (seconds over the whole set):", "",
              "| case | who | decode / wait for decode | inference | near-ties decoded again in full | write | decode-only img/s |",
              "| --- | --- | ---: | ---: | ---: | ---: | --- |"]
    for name, case in report["cases"].items():
        n = case["naive"]
        rates = case.get("decode_only_images_per_s") or {}
        lines.append(f"| {name} | naive | {n['decode_preprocess_s']} (decode + preprocess) | {n['forward_s']} | - | - | "
                     f"{rates.get('naive_pil_torchvision', '-')} |")
        for vname, v in case["variants"].items():
            t = v["timings"]
            lines.append(f"| {name} | sigrl {vname} | {t.get('decode_wait_s', 0)} (waiting; decoding overlaps) | "
                         f"{t.get('infer_s', 0)} | {_rechecks(v)} | {t.get('write_s', 0)} | "
                         f"{_decode_rate(rates, vname)} |")
    lines += ["", "Each variant against sigrl's plain fp32 run (fast decode):", ""]
    for name, case in report["cases"].items():
        for vname, v in case["variants"].items():
            for key, a in v.items():
                if key.startswith("agreement_with_") and key != "agreement_with_naive":
                    lines.append(f"- {name} {vname} vs {key[15:]}: identical tag sets {a['identical_tag_sets']:.1%}, "
                                 f"tag agreement {_kept(a)}, mean Jaccard {a['mean_jaccard']:.3f}, top-1 {a['top1']:.1%}")
    if "cold_start" in report:
        lines += ["", "Cold start: `sigrl tag` on one 640x480 JPEG with the ONNX export directory:", ""]
        for state, c in report["cold_start"].items():
            lines.append(f"- {state}: {c['wall_s']} s wall, exit {c['exit']}, torch imported: {c['torch_imported']}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
