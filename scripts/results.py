"""Produce docs/results.md: the OV and SPML comparisons on the procedural world, several seeds.

Every training and evaluation is a `sigrl` command run as a subprocess; the exact command lines,
their wall times and the raw JSON reports go into a ledger next to the runs, and the document is
rendered from that ledger (so it can be re-rendered without re-running anything: --render-only).
Finished steps are skipped when their outputs exist, so an interrupted run continues.

    python scripts/results.py --clip /work/artifacts/clip-world-tiny.safetensors \
        --world /work/artifacts/world --runs /work/artifacts/results
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import time
from pathlib import Path

OV_ROWS = [  # (row name, run name or None, variant evaluated)
    ("CLIP zero-shot (initial backbone)", None, "clip"),
    ("MKT-style head, zero-shot (initial backbone)", None, "mkt"),
    ("MKT-style head, trained", "ov-mkt", "own"),
    ("SigRL", "ov-sigrl", "own"),
    ("SigRL w/o GMC", "ov-no-gmc", "own"),
    ("SigRL w/o SVFR", "ov-no-svfr", "own"),
    ("CLIP head on the SigRL-trained backbone", "ov-sigrl", "clip"),
    ("MKT head on the SigRL-trained backbone", "ov-sigrl", "mkt"),
]
OV_TRAIN = {"ov-mkt": ["--variant", "mkt"], "ov-sigrl": [], "ov-no-gmc": ["--no-gmc"], "ov-no-svfr": ["--no-svfr"]}
OV_ORDER = ("ov-sigrl", "ov-mkt", "ov-no-gmc", "ov-no-svfr")  # the main comparison first
DIAG_OV = {"ov-sigrl-lr10x": [], "ov-mkt-lr10x": ["--variant", "mkt"]}
DIAG_ROWS = [("MKT-style head, trained, lr x10", "ov-mkt-lr10x", "own"), ("SigRL, lr x10", "ov-sigrl-lr10x", "own")]
# The world CLIP's own logit scale is ~15 after a short pretraining: its softmax over 48 labels
# rarely passes 0.3, so EM+PL is also tried at CLIP's usual temperature 100.
DIAG_SPML = {"spml-em_pl-t100": ["--loss", "em_pl", "--pl-temperature", "100"]}
SPML_TRAIN = {"spml-an": ["--loss", "an"], "spml-em": ["--loss", "em"], "spml-em_pl": ["--loss", "em_pl"]}
SPML_ROWS = [("CLIP zero-shot (initial backbone)", None, "clip"), ("AN", "spml-an", "own"),
             ("EM", "spml-em", "own"), ("EM+PL", "spml-em_pl", "own"),
             ("EM+PL, pseudo-label temperature 100 (diagnostic)", "spml-em_pl-t100", "own")]


def _run(cmd: list[str], ledger: dict, key: str, log_path: Path) -> float:
    print("$", shlex.join(cmd), flush=True)
    start = time.perf_counter()
    with log_path.open("w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(f"command failed ({proc.returncode}), see {log_path}")
    ledger["steps"][key] = {"command": shlex.join(cmd), "wall_seconds": round(wall, 1),
                            "loadavg_after": round(os.getloadavg()[0], 2)}
    return wall


def _finished(run: Path, epochs: int) -> bool:
    metrics = run / "metrics.jsonl"
    if not (run / "best.safetensors").exists() or not metrics.exists():
        return False
    return len(metrics.read_text().splitlines()) >= epochs


def _train(args, ledger, name: str, extra: list[str], seed: int, setting: str, lr: float | None = None) -> Path:
    run = args.runs / f"{name}-s{seed}"
    cmd = ["sigrl", "train", "--setting", setting, "--data", str(args.world / "train.jsonl"),
           "--val", str(args.world / "val.jsonl"), "--init", str(args.clip), "--out", str(run),
           "--seed", str(seed), "--epochs", str(args.epochs), "--limit", str(args.train_limit),
           "--val-limit", str(args.val_limit), "--batch-size", "32", "--topk", str(args.topk),
           "--warmup-epochs", str(args.warmup_epochs), "--precision", args.precision,
           "--lr", str(lr if lr is not None else (args.spml_lr if setting == "spml" else args.ov_lr))] + extra
    key = f"train {name} s{seed}"
    if _finished(run, args.epochs):
        if key not in ledger["steps"]:  # run by hand with the same command: take its own timing
            from sigrl.checkpoint import read_metadata

            seconds = read_metadata(run / "last.safetensors")["summary"].get("seconds", 0.0)
            ledger["steps"][key] = {"command": shlex.join(cmd), "wall_seconds": seconds,
                                    "loadavg_after": "n/a (run outside the driver; loop time only)"}
        return run
    if run.exists():
        import shutil

        shutil.rmtree(run)
    _run(cmd, ledger, key, args.runs / f"{name}-s{seed}.log")
    return run


def _eval(args, ledger, key: str, checkpoint: Path, variants: str, setting: str) -> dict:
    out = args.runs / f"{key}.eval.json"
    if not (out.exists() and f"eval {key}" in ledger["steps"]):
        cmd = ["sigrl", "eval", "--checkpoint", str(checkpoint), "--data", str(args.world / "test.jsonl"),
               "--variants", variants, "--setting", setting, "--limit", str(args.test_limit), "--json", str(out)]
        _run(cmd, ledger, f"eval {key}", args.runs / f"{key}.eval.log")
    return json.loads(out.read_text())[str(checkpoint)]


def run_all(args, ledger: dict, save) -> None:
    for seed in args.seeds:
        if "ov" in args.settings:
            for name in [n for n in OV_ORDER if n in args.ov_runs]:
                run = _train(args, ledger, name, OV_TRAIN[name], seed, "ov")
                save()
                variants = "own,clip,mkt" if name == "ov-sigrl" else "own"
                ledger["evals"][f"{name}-s{seed}"] = _eval(args, ledger, f"{name}-s{seed}", run / "best.safetensors",
                                                           variants, "ov")
                save()
        if "spml" in args.settings:
            for name, extra in SPML_TRAIN.items():
                run = _train(args, ledger, name, extra, seed, "spml")
                save()
                ledger["evals"][f"{name}-s{seed}"] = _eval(args, ledger, f"{name}-s{seed}", run / "best.safetensors",
                                                           "own", "spml")
                save()
    for seed in args.diag_seeds:  # the heads' learning rate, the suspected limit of a short budget
        for name, extra in DIAG_OV.items():
            threads = ["--threads", str(args.diag_threads)] if args.diag_threads else []
            run = _train(args, ledger, name, threads + extra, seed, "ov", lr=args.diag_lr)
            save()
            ledger["evals"][f"{name}-s{seed}"] = _eval(args, ledger, f"{name}-s{seed}", run / "best.safetensors",
                                                       "own", "ov")
            save()
        for name, extra in DIAG_SPML.items():
            threads = ["--threads", str(args.diag_threads)] if args.diag_threads else []
            run = _train(args, ledger, name, threads + extra, seed, "spml")
            save()
            ledger["evals"][f"{name}-s{seed}"] = _eval(args, ledger, f"{name}-s{seed}", run / "best.safetensors",
                                                       "own", "spml")
            save()
    # the initial backbone needs no training and no seed
    ledger["evals"]["clip-ov"] = _eval(args, ledger, "clip-ov", args.clip, "clip,mkt", "ov")
    ledger["evals"]["clip-spml"] = _eval(args, ledger, "clip-spml", args.clip, "clip", "spml")
    save()


def pack_default(args, ledger: dict) -> dict:
    """The OV SigRL run with the best validation mAP (never the test figures), stored in fp16."""
    from sigrl.checkpoint import read_metadata
    from sigrl.default_model import FILENAME, pack

    candidates = []
    for seed in args.seeds:
        ckpt = args.runs / f"ov-sigrl-s{seed}" / "best.safetensors"
        if ckpt.exists():
            candidates.append((read_metadata(ckpt)["summary"].get("best_val_mAP") or 0.0, seed, ckpt))
    if not candidates:
        sys.exit("no finished ov-sigrl run to pack; run the OV setting first")
    val_map, seed, ckpt = max(candidates)
    out = Path(__file__).resolve().parents[1] / "sigrl" / "default_model" / FILENAME
    pack(ckpt, out, {"selected_by": "best validation mAP over ov-sigrl seeds", "seed": seed})
    info = {"from": str(ckpt), "seed": seed, "val_mAP": val_map, "bytes": out.stat().st_size,
            "test": ledger["evals"].get(f"ov-sigrl-s{seed}", {}).get("results", {}).get("own")}
    print(f"packed {ckpt} -> {out} ({out.stat().st_size / 1e6:.1f} MB)")
    return info


# -- rendering -------------------------------------------------------------------------------------
def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    pct = [100 * v for v in values]
    if len(pct) == 1:
        return f"{pct[0]:.1f}"
    return f"{statistics.mean(pct):.1f} ± {statistics.stdev(pct):.1f}"


def _collect(ledger: dict, run: str | None, variant: str, seeds: list[int], base: str) -> list[dict]:
    if run is None:
        found = ledger["evals"].get(base)
        return [found["results"][variant]] if found else []
    out = []
    for s in seeds:
        found = ledger["evals"].get(f"{run}-s{s}")
        if found and variant in found["results"]:
            out.append(found["results"][variant])
    return out


def _train_seconds(ledger: dict, run: str | None, seeds: list[int]) -> str:
    if run is None:
        return "-"
    walls = [ledger["steps"][f"train {run} s{s}"]["wall_seconds"] for s in seeds
             if f"train {run} s{s}" in ledger["steps"]]
    return " / ".join(f"{w:.0f}" for w in walls) if walls else "-"


def _clip_summary(path: Path) -> dict:
    from sigrl.checkpoint import file_sha256, read_metadata

    summary = read_metadata(path).get("summary", {})
    return {"sha256": file_sha256(path), "steps": summary.get("steps"),
            "train_seconds": summary.get("train_seconds"),
            "minutes": summary.get("config", {}).get("minutes"), "seed": summary.get("config", {}).get("seed"),
            "zero_shot": summary.get("zero_shot", {})}


def preamble(ledger: dict) -> list[str]:
    cfg, clip = ledger["config"], ledger.get("clip", {})
    zs = clip.get("zero_shot", {})
    return [
        "## Setup", "",
        f"- World: `{cfg['world']}` (`sigrl data synth --out DIR --seed 0`: 20,000 train / 1,000 val / 5,000 test "
        "scenes at 64 px; 8 colours x 8 shapes = 64 labels, 16 of them unseen and compositional; training "
        "scenes contain seen labels only).",
        f"- Backbone: `{cfg['clip']}` (sha256 `{clip.get('sha256', '?')[:16]}...`), a clip-world-tiny CLIP from "
        f"`sigrl pretrain --data {cfg['world']}/train.jsonl --out FILE --minutes {clip.get('minutes', '?')} --seed "
        f"{clip.get('seed', '?')} --eval {cfg['world']}/test.jsonl` ({clip.get('steps', '?')} steps in {clip.get('train_seconds', '?')} s; its own zero-shot "
        f"mAP on the 5,000 test images: {zs.get('map_all', float('nan')):.3f} over all labels, chance "
        f"{zs.get('chance_map_all', float('nan')):.3f}).",
        f"- Budget per training run (2 shared CPU cores, other jobs running; see the load averages below): "
        f"a seeded random {cfg['train_limit']} training images, {cfg['epochs']} epochs of batch 32, "
        f"validation on {cfg['val_limit']} val images after each epoch, test on the first {cfg['test_limit']} "
        f"test images, `--precision {cfg['precision']}` autocast. Seeds: {', '.join(map(str, ledger['seeds']))} "
        "(the seed sets the initialisation of the heads, the image subset, the order and the augmentation).",
        "- Reference recipe (DESIGN.md section 3) kept: loss = per-image ranking hinge + L1 distillation to the "
        "frozen initial image tower; last 2 blocks + ln_post + proj + GMC + SVFR train; layer-wise lr decay 0.65; "
        f"AdamW (OV, lr {cfg['ov_lr']}, wd 0.05, none on 1-D); cosine to 1e-7; images without a seen positive skipped.",
        f"- Changed for the budget or the world: {cfg['epochs']} epochs instead of 20 (warm-up "
        f"{cfg['warmup_epochs']} epoch instead of 2); local score over the top {cfg['topk']} of 64 patches "
        "(reference: 16 of 196); augmentation is flip + random-resized-crop only (RandAugment's colour operations "
        f"would change colour labels); SPML: full fine-tune with Adam at lr {cfg['spml_lr']} (reference 1e-5, which "
        "does not move in a few dozen steps), EM alpha 0.1, PL beta 0.7 / threshold 0.3 with the initial CLIP's "
        "own temperature, and a learnable logit scale `exp(t) * sqrt(N) * score + b` before the sigmoid (SigRL "
        "scores are label-normalised cosines; the map is monotone, so mAP is unaffected by it directly).",
        "- Model selection: the epoch with the best validation mAP over the 48 seen labels (no unseen label is "
        "looked at before testing). SPML: one positive per training image, chosen with seed 0 among the seen "
        "labels; evaluated over the 48 seen labels with full test annotations.",
        "- Metrics: mAP skips classes without a positive (`sigrl.metrics` default); ZSL runs the model on the 16 "
        "unseen labels only (GMC and the score normalisation see that set) over images with an unseen positive; "
        "GZSL runs it on all 64 labels over all test images; F1@k is micro-averaged over images' top-k. Cells "
        "are mean ± sample standard deviation over seeds, in percent.",
        "",
    ]


def render(ledger: dict) -> str:
    seeds, cfg = ledger["seeds"], ledger["config"]
    lines = ["# Results on the procedural world", "",
             "Generated by `scripts/results.py` from the ledger "
             f"`{cfg['runs']}/ledger.json`; do not edit by hand (the reading at the end comes from "
             "`docs/results-reading.md`).", ""]
    lines += preamble(ledger)
    lines += ["## Open vocabulary (trained on the 48 seen labels; ZSL = 16 unseen labels, GZSL = all 64)", "",
              "| model | ZSL mAP | ZSL F1@3 | ZSL F1@5 | GZSL mAP | GZSL F1@3 | GZSL F1@5 | n seeds | train wall s |",
              "|---|---|---|---|---|---|---|---|---|"]
    for row, run, variant in OV_ROWS:
        found = _collect(ledger, run, variant, seeds, "clip-ov")
        cells = [_cell([f[part][m] for f in found]) for part in ("zsl", "gzsl") for m in ("mAP", "F1@3", "F1@5")]
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {len(found)} | {_train_seconds(ledger, run, seeds)} |")
    diag = [(r, run, v) for r, run, v in DIAG_ROWS if any(k.startswith(run) for k in ledger["evals"])]
    if diag:
        lines += ["", f"### Diagnostic: ten times the OV learning rate ({cfg.get('diag_lr')}), same budget", "",
                  "| model | ZSL mAP | ZSL F1@3 | ZSL F1@5 | GZSL mAP | GZSL F1@3 | GZSL F1@5 | n seeds | train wall s |",
                  "|---|---|---|---|---|---|---|---|---|"]
        dseeds = cfg.get("diag_seeds", seeds)
        for row, run, variant in diag:
            found = _collect(ledger, run, variant, dseeds, "")
            cells = [_cell([f[p][m] for f in found]) for p in ("zsl", "gzsl") for m in ("mAP", "F1@3", "F1@5")]
            lines.append(f"| {row} | " + " | ".join(cells) + f" | {len(found)} | {_train_seconds(ledger, run, dseeds)} |")
    lines += ["", "## Single positive (SigRL head, 48 seen labels, one observed positive per training image)", "",
              "| loss | mAP | n seeds | train wall s |", "|---|---|---|---|"]
    for row, run, variant in SPML_ROWS:
        found = _collect(ledger, run, variant, seeds, "clip-spml")
        lines.append(f"| {row} | {_cell([f['mAP'] for f in found])} | {len(found)} | "
                     f"{_train_seconds(ledger, run, seeds)} |")
    lines += ["", "## Exact commands and wall times", ""]
    if ledger.get("driver"):
        lines += [f"Driver (re-running it reuses finished run folders and re-renders): `{ledger['driver']}`", ""]
    lines += ["```"]
    for key, step in ledger["steps"].items():
        lines.append(f"# {key}: {step['wall_seconds']} s (load average after: {step['loadavg_after']})")
        lines.append(step["command"])
    lines += ["```", ""]
    if ledger.get("default_model"):
        d = ledger["default_model"]
        lines += ["## Embedded default model", "",
                  f"`sigrl/default_model/sigrl-world.safetensors`: run `{d['from']}` (seed {d['seed']}, chosen by "
                  f"validation mAP {100 * d['val_mAP']:.1f} over seen labels), weights in fp16, "
                  f"{d['bytes'] / 1e6:.1f} MB. Rebuild: the driver command above with `--pack-default` "
                  "(it reuses finished runs and trains missing ones); `sigrl.default_model.load_default()` loads it.",
                  ""]
    if ledger.get("notes"):
        lines += ["## Reading", "", ledger["notes"], ""]
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clip", type=Path, default=Path("/work/artifacts/clip-world-tiny.safetensors"))
    p.add_argument("--world", type=Path, default=Path("/work/artifacts/world"))
    p.add_argument("--runs", type=Path, default=Path("/work/artifacts/results"))
    p.add_argument("--doc", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "results.md")
    p.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1])
    p.add_argument("--settings", default="ov,spml")
    p.add_argument("--ov-runs", type=lambda s: s.split(","), default=list(OV_ORDER),
                   help="Which OV trainings to run (default: all four).")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--warmup-epochs", type=float, default=0.3)
    p.add_argument("--train-limit", type=int, default=400)
    p.add_argument("--val-limit", type=int, default=160)
    p.add_argument("--test-limit", type=int, default=600)
    p.add_argument("--topk", type=int, default=8)
    p.add_argument("--precision", default="bf16")
    p.add_argument("--ov-lr", type=float, default=1e-4)
    p.add_argument("--spml-lr", type=float, default=1e-4)
    p.add_argument("--diag-lr", type=float, default=1e-3)
    p.add_argument("--diag-threads", type=int, default=1, help="The diagnostic runs overlapped the main ones.")
    p.add_argument("--diag-seeds", type=lambda s: [int(x) for x in s.split(",") if x], default=[0])
    p.add_argument("--notes", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "results-reading.md",
                   help="Markdown appended as the reading section.")
    p.add_argument("--render-only", action="store_true")
    p.add_argument("--pack-default", action="store_true",
                   help="Also pack the OV SigRL run with the best validation mAP as sigrl/default_model.")
    args = p.parse_args()
    args.runs.mkdir(parents=True, exist_ok=True)
    ledger_path = args.runs / "ledger.json"
    ledger = json.loads(ledger_path.read_text()) if ledger_path.exists() else {"steps": {}, "evals": {}}
    ledger["seeds"] = args.seeds
    ledger["config"] = {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "render_only"}
    ledger["machine"] = {"cpus": os.cpu_count(), "platform": platform.platform()}

    def save() -> None:
        ledger_path.write_text(json.dumps(ledger, indent=2, sort_keys=True))

    if not args.render_only:
        ledger["driver"] = shlex.join(["python", "scripts/results.py", *sys.argv[1:]])
        args.settings = args.settings.split(",")
        run_all(args, ledger, save)
    if args.pack_default:
        ledger["default_model"] = pack_default(args, ledger)
    if args.notes and args.notes.exists():
        ledger["notes"] = args.notes.read_text()
    ledger["clip"] = _clip_summary(args.clip)
    save()
    args.doc.write_text(render(ledger))
    print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
