"""Produce docs/results.md: the OV and SPML comparisons on the procedural world, several seeds.

One command from a clean checkout (after the README's install):

    python scripts/results.py --out results-world

builds whatever --out lacks: the world (`sigrl data synth`), the pretrained CLIP (`sigrl pretrain`,
an hour on 2 cores by default), every training run and every evaluation, then renders the document.
Every step is a `sigrl` command run inside --out with paths relative to it, so the ledger and the
document name no folder of the machine that produced them. A step whose output exists is skipped,
so an interrupted driver continues where it stopped, and --render-only re-renders from the ledger.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shlex
import statistics
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the in-process steps (diagnostics, packing) import this checkout
CLIP = "clip-world-tiny.safetensors"
UNSEEN_WORLD = "world-seed1"  # a world the models never saw: the default model's check


@dataclass(frozen=True)
class Job:
    name: str  # run folder prefix; the seed is appended
    setting: str
    args: tuple[str, ...] = ()
    variants: str = "own"  # heads evaluated on the trained backbone


JOBS = [
    Job("ov-mkt", "ov", ("--variant", "mkt")),
    Job("ov-sigrl", "ov", ()),
    Job("ov-sigrl-refgmc", "ov", ("--reference-gmc",)),
    Job("ov-no-gmc", "ov", ("--no-gmc",)),
    Job("ov-no-svfr", "ov", ("--no-svfr",)),
    Job("spml-an", "spml", ("--loss", "an")),
    Job("spml-em", "spml", ("--loss", "em")),
    Job("spml-em_pl", "spml", ("--loss", "em_pl")),
]
# Run for the first seed only: does SVFR gain from a longer head phase?
DIAGNOSTIC_JOBS = [Job("ov-sigrl-long", "ov", ("--head-steps", "1500"))]
# (row, run or None for the initial backbone, variant, which row its differences are taken against)
OV_ROWS = [
    ("CLIP zero-shot (initial backbone)", None, "clip"),
    ("MKT-style head, untrained (initial backbone)", None, "mkt"),
    ("MKT-style head, trained", "ov-mkt", "own"),
    ("SigRL, reference GMC", "ov-sigrl-refgmc", "own"),
    ("SigRL (residual GMC, the default)", "ov-sigrl", "own"),
    ("SigRL w/o GMC", "ov-no-gmc", "own"),
    ("SigRL w/o SVFR", "ov-no-svfr", "own"),
    ("SigRL, 5x the head steps (diagnostic, first seed)", "ov-sigrl-long", "own"),
]
OV_BASE = "MKT-style head, trained"
SPML_ROWS = [("CLIP zero-shot (initial backbone)", None, "clip"), ("AN", "spml-an", "own"),
             ("EM", "spml-em", "own"), ("EM+PL", "spml-em_pl", "own")]
SPML_BASE = "CLIP zero-shot (initial backbone)"


@dataclass
class Driver:
    args: argparse.Namespace
    ledger: dict
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def out(self) -> Path:
        return self.args.out

    def save(self) -> None:
        with self.lock:
            (self.out / "ledger.json").write_text(json.dumps(self.ledger, indent=2, sort_keys=True))

    def run(self, key: str, cmd: list[str], log_name: str) -> None:
        """Run one sigrl command inside --out; record its command line and wall time."""
        print("$", shlex.join(cmd), flush=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(self.args.threads)}
        start = time.perf_counter()
        with (self.out / "logs" / log_name).open("w") as log:
            proc = subprocess.run(cmd, cwd=self.out, stdout=log, stderr=subprocess.STDOUT, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"command failed ({proc.returncode}), see {self.out / 'logs' / log_name}")
        with self.lock:
            self.ledger["steps"][key] = {"command": shlex.join(cmd), "wall_seconds": round(time.perf_counter() - start, 1),
                                         "loadavg_after": round(os.getloadavg()[0], 2)}
        self.save()


# -- the steps -------------------------------------------------------------------------------------
def make_world(d: Driver, folder: str, seed: int, sizes: tuple[int, int, int]) -> None:
    if (d.out / folder / "test.jsonl").exists():
        return
    d.run(f"world {folder}", ["sigrl", "data", "synth", "--out", folder, "--seed", str(seed), "--train",
                              str(sizes[0]), "--val", str(sizes[1]), "--test", str(sizes[2])], f"{folder}.log")


def pretrain(d: Driver) -> None:
    cmd = ["sigrl", "pretrain", "--data", "world/train.jsonl", "--arch", "clip-world-tiny", "--out", CLIP,
           "--minutes", str(d.args.pretrain_minutes), "--seed", "0", "--eval", "world/test.jsonl"]
    if not (d.out / CLIP).exists():
        d.run("pretrain", cmd, "pretrain.log")


def _train_cmd(d: Driver, job: Job, seed: int) -> list[str]:
    a = d.args
    return ["sigrl", "train", "--setting", job.setting, "--data", "world/train.jsonl", "--val", "world/val.jsonl",
            "--init", CLIP, "--out", f"runs/{job.name}-s{seed}", "--seed", str(seed), "--limit", str(a.train_limit),
            "--val-limit", str(a.val_limit), "--batch-size", "32", "--topk", str(a.topk), "--head-steps",
            # the MKT head has no weights of its own: only end-to-end epochs can train it
            "0" if job.name == "ov-mkt" else str(a.head_steps), "--epochs",
            str(a.mkt_epochs if job.name == "ov-mkt" else a.epochs), "--warmup-epochs", str(a.warmup_epochs), "--precision",
            a.precision, "--threads", str(a.threads), "--compile" if a.compile else "--no-compile", *job.args]


def _eval(d: Driver, key: str, checkpoint: str, variants: str, setting: str, data: str = "world/test.jsonl") -> None:
    out = f"evals/{key}.json"
    if (d.out / out).exists() and f"eval {key}" in d.ledger["steps"]:
        return
    d.run(f"eval {key}", ["sigrl", "eval", "--checkpoint", checkpoint, "--data", data, "--variants", variants,
                          "--setting", setting, "--limit", str(d.args.test_limit), "--json", out], f"eval-{key}.log")
    with d.lock:
        d.ledger["evals"][key] = json.loads((d.out / out).read_text())[checkpoint]
    d.save()


def train_and_eval(d: Driver, job: Job, seed: int) -> None:
    run, key = f"runs/{job.name}-s{seed}", f"train {job.name} s{seed}"
    if (d.out / run / "best.safetensors").exists() and (d.out / run / "state.safetensors").exists():
        if key not in d.ledger["steps"]:  # run by hand with the same command: its own timing counts
            from sigrl.checkpoint import read_metadata

            seconds = read_metadata(d.out / run / "last.safetensors")["summary"].get("seconds")
            with d.lock:
                d.ledger["steps"][key] = {"command": shlex.join(_train_cmd(d, job, seed)), "wall_seconds": seconds,
                                          "loadavg_after": "n/a (run beside the driver; training loop time)"}
    else:
        if (d.out / run).exists():
            import shutil

            shutil.rmtree(d.out / run)  # an interrupted run starts over
        d.run(key, _train_cmd(d, job, seed), f"train-{job.name}-s{seed}.log")
    _eval(d, f"{job.name}-s{seed}", f"{run}/best.safetensors", job.variants, job.setting)
    if job.name == "ov-sigrl":  # the default-model candidates, also on a world they never saw
        _eval(d, f"{job.name}-s{seed}-unseen-world", f"{run}/best.safetensors", "own,clip", "ov",
              f"{UNSEEN_WORLD}/test.jsonl")


def run_all(d: Driver) -> None:
    make_world(d, "world", 0, (20000, 1000, 5000))
    make_world(d, UNSEEN_WORLD, 1, (0, 0, d.args.test_limit))
    record_existing(d)
    pretrain(d)
    for key, variants, setting, data in (("clip-ov", "clip,mkt", "ov", "world/test.jsonl"),
                                         ("clip-spml", "clip", "spml", "world/test.jsonl"),
                                         ("clip-ov-unseen-world", "clip", "ov", f"{UNSEEN_WORLD}/test.jsonl")):
        _eval(d, key, CLIP, variants, setting, data)
    work = [(job, seed) for seed in d.args.seeds for job in JOBS if job.name in d.args.jobs_run]
    work += [(job, d.args.seeds[0]) for job in DIAGNOSTIC_JOBS if job.name in d.args.jobs_run]
    with ThreadPoolExecutor(max_workers=d.args.parallel) as pool:
        for future in [pool.submit(train_and_eval, d, job, seed) for job, seed in work]:
            future.result()
    for job, seed in work:
        key = f"{job.name}-s{seed}"
        if job.name != "ov-mkt" and key not in d.ledger.setdefault("diagnostics", {}):
            d.ledger["diagnostics"][key] = head_diagnostics(d, f"runs/{key}")
    d.save()


def pack_default(d: Driver) -> dict:
    """The OV SigRL run with the best validation mAP (never the test figures), stored in fp16."""
    from sigrl.checkpoint import read_metadata
    from sigrl.default_model import FILENAME, pack

    candidates = []
    for seed in d.args.seeds:
        ckpt = d.out / "runs" / f"ov-sigrl-s{seed}" / "best.safetensors"
        if ckpt.exists():
            candidates.append((read_metadata(ckpt)["summary"].get("best_val_mAP") or 0.0, seed, ckpt))
    if not candidates:
        raise SystemExit("no finished ov-sigrl run to pack; run the OV setting first")
    val_map, seed, ckpt = max(candidates)
    target = REPO / "sigrl" / "default_model" / FILENAME
    source = str(ckpt.relative_to(d.out))
    pack(ckpt, target, {"selected_by": "best validation mAP over ov-sigrl seeds", "seed": seed,
                        "packed_from": source})
    print(f"packed {source} -> {target.relative_to(REPO)} ({target.stat().st_size / 1e6:.1f} MB)")
    return {"from": source, "seed": seed, "val_mAP": val_map, "bytes": target.stat().st_size}


def head_diagnostics(d: Driver, run: str, images: int = 64) -> dict:
    """What a trained head does: GMC's gate and how far it keeps labels apart, and how far SVFR's
    reconstructed patches moved from the raw ones (cosine 1: SVFR is the identity, i.e. MKT)."""
    import torch

    from sigrl.data.images import load_images
    from sigrl.data.manifest import load_manifest
    from sigrl.model import load_model

    model = load_model(d.out / run / "best.safetensors")
    manifest = load_manifest(d.out / "world" / "test.jsonl")
    unit = lambda x: torch.nn.functional.normalize(x, dim=-1)  # noqa: E731

    def pairwise(x: torch.Tensor) -> float:
        cos = unit(x) @ unit(x).T
        return float((cos.sum() - cos.diagonal().sum()) / (len(x) * (len(x) - 1)))

    with torch.no_grad():
        h = model.embed_labels(list(manifest.labels))
        out = {"pairwise_cosine_H": round(pairwise(h), 4)}
        if model.gmc is not None:
            out["gmc_gate"] = round(float(model.gmc.gate), 4) if model.gmc.gate is not None else None
            out["pairwise_cosine_Hg"] = round(pairwise(model.gmc(h)), 4)
        if model.svfr is not None:
            x = load_images(manifest.image_paths()[:images], model.config.preprocess, threads=1).float()
            _, feats = model.encode_image((x - model.pixel_mean) / model.pixel_std)
            recon = model.svfr(feats, h, model.label_side(h).context, model.config.head.label_chunk)
            out["svfr_cosine_R_F"] = round(float((unit(recon) * unit(feats)).sum(-1).mean()), 4)
    return out


# -- rendering -------------------------------------------------------------------------------------
def _values(ledger: dict, run: str | None, variant: str, base: str, metric) -> list[float]:
    keys = [base] if run is None else [f"{run}-s{s}" for s in ledger["seeds"]]
    found = [ledger["evals"][k]["results"][variant] for k in keys
             if k in ledger["evals"] and variant in ledger["evals"][k]["results"]]
    return [100 * metric(f) for f in found]


def _cell(values: list[float]) -> str:
    if not values:
        return "-"
    if len(values) == 1:
        return f"{values[0]:.1f}"
    return f"{statistics.mean(values):.1f} ± {statistics.stdev(values):.1f}"


def _difference(a: list[float], b: list[float]) -> str:
    """Mean difference a - b, starred where it exceeds 2 standard errors (Welch; a single value is
    a deterministic figure with no seed variance)."""
    if not a or not b:
        return "-"
    var = lambda v: statistics.variance(v) / len(v) if len(v) > 1 else 0.0  # noqa: E731
    diff, se = statistics.mean(a) - statistics.mean(b), math.sqrt(var(a) + var(b))
    if se == 0:
        return f"{diff:+.1f} (n/a)" if len(a) == len(b) == 1 else f"{diff:+.1f}"
    return f"{diff:+.1f}{' *' if abs(diff) > 2 * se else ''}"


def _table(ledger: dict, rows, base_row: str, base_key: str, metrics: dict) -> list[str]:
    values = {row: {m: _values(ledger, run, variant, base_key, f) for m, f in metrics.items()}
              for row, run, variant in rows}
    first = next(iter(metrics))
    lines = ["| model | " + " | ".join(metrics) + f" | {' / '.join(k for k in metrics if 'mAP' in k)} minus "
             f"{base_row} | seeds | train wall s |", "|---" * (len(metrics) + 4) + "|"]
    for row, run, _ in rows:
        cells = [_cell(values[row][m]) for m in metrics]
        diffs = " / ".join(_difference(values[row][m], values[base_row][m]) for m in metrics if "mAP" in m)
        walls = [ledger["steps"][f"train {run} s{s}"]["wall_seconds"] for s in ledger["seeds"]
                 if run and f"train {run} s{s}" in ledger["steps"]]
        diffs = "-" if row == base_row else diffs
        lines.append(f"| {row} | " + " | ".join(cells) + f" | {diffs} | {len(values[row][first])} | "
                     + (" / ".join(f"{w:.0f}" for w in walls) or "-") + " |")
    return lines


def _clip_facts(out: Path) -> dict:
    from sigrl.checkpoint import file_sha256, read_metadata

    summary = read_metadata(out / CLIP).get("summary", {})
    return {"sha256": file_sha256(out / CLIP), "steps": summary.get("steps"),
            "train_seconds": summary.get("train_seconds"), "images_per_second": summary.get("images_per_second"),
            "zero_shot": summary.get("zero_shot", {})}


def render(ledger: dict) -> str:
    cfg, clip = ledger["config"], ledger["clip"]
    zs = clip.get("zero_shot", {})
    ov = {"ZSL mAP": lambda r: r["zsl"]["mAP"], "ZSL F1@3": lambda r: r["zsl"]["F1@3"],
          "GZSL mAP": lambda r: r["gzsl"]["mAP"], "GZSL F1@3": lambda r: r["gzsl"]["F1@3"]}
    lines = ["# Results on the procedural world", "",
             f"Generated by `{ledger.get('driver', 'python scripts/results.py')}` (paths below are inside its "
             "--out folder); do not edit by hand. The reading at the end comes from `docs/results-reading.md`.", "",
             "## Setup", "",
             "- World: `sigrl data synth --out world --seed 0` (20,000 train / 1,000 val / 5,000 test scenes at "
             "64 px; 8 colours x 8 shapes = 64 labels, 16 of them unseen and compositional; training scenes "
             "contain seen labels only).",
             f"- Backbone: `{CLIP}` (sha256 `{clip['sha256'][:16]}...`) from `{ledger['steps'].get('pretrain', {}).get('command', 'sigrl pretrain')}`: "
             f"{clip['steps']} steps of batch 128 in {clip['train_seconds']} s ({clip['images_per_second']} img/s). "
             f"Its zero-shot mAP on the 5,000 test images: **{zs.get('map_all', float('nan')):.3f}** over all 64 labels "
             f"(seen {zs.get('map_seen', float('nan')):.3f}, unseen {zs.get('map_unseen', float('nan')):.3f}; chance "
             f"{zs.get('chance_map_all', float('nan')):.3f}).",
             f"- Every training run: a seeded random {cfg['train_limit']} training images; {cfg['head_steps']} "
             f"head-only steps of batch 32 on cached backbone features (head lr 1e-3, 50 warm-up steps, "
             f"cosine), then {cfg['epochs']} end-to-end epoch(s); the MKT head, which has no weights of its "
             f"own, trains its backbone end to end for {cfg['mkt_epochs']} epoch(s) instead (backbone lr as "
             f"the recipe, warm-up {cfg['warmup_epochs']} epoch). Validation mAP over the seen labels on {cfg['val_limit']} val "
             f"images picks the checkpoint; `--precision {cfg['precision']}`; local score over the top "
             f"{cfg['topk']} of 64 patches. Seeds {', '.join(map(str, ledger['seeds']))} (initialisation, image "
             "subset, order, augmentation). Test: the first "
             f"{cfg['test_limit']} test images.",
             "- OV recipe: ranking hinge on sqrt(N)-scaled scores (margin 1) + L1 distillation; last 2 blocks + "
             "ln_post + proj train with layer decay 0.65 (AdamW 1e-4, wd 0.05). SPML: full fine-tune (Adam 1e-5) "
             "with a learnable logit scale; EM alpha 0.1, EM+PL beta 0.7 / threshold 0.3.",
             "- Metrics: mAP over classes with a positive; ZSL = the 16 unseen labels scored as a set, on images "
             "with an unseen positive; GZSL = all 64 labels on all images; F1@3 micro-averaged. Cells are "
             "mean ± sample standard deviation over seeds, in percent. The difference column is the row's mean "
             "minus the reference row's, marked * where it exceeds 2 standard errors (Welch, from the seed "
             "spreads; rows without training are deterministic).", "",
             "## Open vocabulary (trained on the 48 seen labels)", ""]
    lines += _table(ledger, OV_ROWS, OV_BASE, "clip-ov", ov)
    lines += ["", "## Single positive (SigRL head, 48 seen labels, one observed positive per training image)", ""]
    lines += _table(ledger, SPML_ROWS, SPML_BASE, "clip-spml", {"mAP": lambda r: r["mAP"]})
    lines += ["", f"## On a world the models never saw (`{UNSEEN_WORLD}`: seed 1, first {cfg['test_limit']} test images)",
              "", "| model | GZSL mAP | ZSL mAP |", "|---|---|---|"]
    for row, run, variant, base in (("CLIP zero-shot (initial backbone)", None, "clip", "clip-ov-unseen-world"),
                                    ("SigRL, default recipe", "ov-sigrl", "own", "")):
        keys = [base] if run is None else [f"{run}-s{s}-unseen-world" for s in ledger["seeds"]]
        found = [ledger["evals"][k]["results"][variant] for k in keys if k in ledger["evals"]]
        lines.append(f"| {row} | {_cell([100 * f['gzsl']['mAP'] for f in found])} | "
                     f"{_cell([100 * f['zsl']['mAP'] for f in found])} |")
    lines += ["", "## What the trained heads do (first 64 test images, all 64 labels)", "",
              "Mean pairwise cosine of the label embeddings H and of GMC's output Hg (the reference GMC's "
              "collapse shows as Hg near 1), GMC's residual gate, and the mean cosine between SVFR's "
              "reconstructed patches R and the raw patches F (1 = SVFR changes nothing).", "",
              "| run | H | Hg | gate | cos(R, F) |", "|---|---|---|---|---|"]
    for key, diag in sorted(ledger.get("diagnostics", {}).items()):
        cells = [diag.get(k) for k in ("pairwise_cosine_H", "pairwise_cosine_Hg", "gmc_gate", "svfr_cosine_R_F")]
        lines.append(f"| {key} | " + " | ".join("-" if c is None else f"{c:.3f}" for c in cells) + " |")
    if ledger.get("default_model"):
        dm = ledger["default_model"]
        lines += ["", f"The embedded default model is `{dm['from']}` (seed {dm['seed']}, the best validation mAP "
                  f"{100 * dm['val_mAP']:.1f} over seen labels among the seeds), weights in fp16, "
                  f"{dm['bytes'] / 1e6:.1f} MB."]
    lines += ["", "## Commands and wall times", "",
              f"Machine: {ledger['machine']['cpus']} CPUs, {ledger['machine']['platform']}; "
              f"{cfg['parallel']} commands at a time, {cfg['threads']} thread(s) each. Run inside the --out folder:",
              "", "```"]
    for key, step in sorted(ledger["steps"].items()):
        lines += [f"# {key}: {step['wall_seconds']} s (load average after: {step['loadavg_after']})", step["command"]]
    lines += ["```", ""]
    notes = REPO / "docs" / "results-reading.md"
    if notes.exists():
        lines += ["## Reading", "", notes.read_text()]
    return "\n".join(lines)


def _driver_line(argv: list[str], out_name: str) -> str:
    """The command line as given, with --out shown by its folder name only."""
    rest, skip = [], False
    for a in argv:
        if skip or a.startswith("--out="):
            skip = False
            continue
        skip = a == "--out"
        if not skip:
            rest.append(a)
    return shlex.join(["python", "scripts/results.py", "--out", out_name, *rest])


def record_existing(d: Driver) -> None:
    """Steps done before the driver ran (the same commands, by hand): their own figures go in the ledger."""
    if (d.out / CLIP).exists() and "pretrain" not in d.ledger["steps"]:
        facts = _clip_facts(d.out)
        d.ledger["steps"]["pretrain"] = {
            "command": shlex.join(["sigrl", "pretrain", "--data", "world/train.jsonl", "--arch", "clip-world-tiny",
                                   "--out", CLIP, "--minutes", str(d.args.pretrain_minutes), "--seed", "0",
                                   "--eval", "world/test.jsonl"]),
            "wall_seconds": facts["train_seconds"], "loadavg_after": "n/a (run before the driver; training time)"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="Folder for the world, the CLIP, runs and the ledger.")
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "results.md")
    p.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    p.add_argument("--jobs", dest="jobs_run", type=lambda s: s.split(","), default=[j.name for j in JOBS + DIAGNOSTIC_JOBS],
                   help="Which trainings to run (default: all).")
    p.add_argument("--pretrain-minutes", type=float, default=50.0)
    p.add_argument("--train-limit", type=int, default=2000)
    p.add_argument("--val-limit", type=int, default=400)
    p.add_argument("--test-limit", type=int, default=2000)
    p.add_argument("--head-steps", type=int, default=400)
    p.add_argument("--epochs", type=int, default=0, help="End-to-end epochs after the head-only phase.")
    p.add_argument("--mkt-epochs", type=int, default=1, help="End-to-end epochs of the (weightless) MKT head.")
    p.add_argument("--warmup-epochs", type=float, default=0.3)
    p.add_argument("--topk", type=int, default=8)
    p.add_argument("--precision", default="bf16")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                   help="torch.compile the head phase (the committed tables were made with it; eager is faster).")
    p.add_argument("--parallel", type=int, default=2, help="Commands run at once.")
    p.add_argument("--threads", type=int, default=1, help="torch threads per command.")
    p.add_argument("--render-only", action="store_true")
    p.add_argument("--pack-default", action="store_true",
                   help="Also pack the OV SigRL run with the best validation mAP as sigrl/default_model.")
    args = p.parse_args()
    args.out = args.out.resolve()
    (args.out / "logs").mkdir(parents=True, exist_ok=True)
    (args.out / "evals").mkdir(exist_ok=True)
    path = args.out / "ledger.json"
    ledger = json.loads(path.read_text()) if path.exists() else {"steps": {}, "evals": {}}
    ledger.update(seeds=args.seeds, machine={"cpus": os.cpu_count(), "platform": platform.platform()},
                  config={k: v for k, v in vars(args).items() if not isinstance(v, Path) and k != "render_only"})
    d = Driver(args, ledger)
    if not args.render_only:
        ledger["driver"] = _driver_line(sys.argv[1:], args.out.name)
        run_all(d)
    if args.pack_default:
        ledger["default_model"] = pack_default(d)
    ledger["clip"] = _clip_facts(args.out)
    d.save()
    args.doc.write_text(render(ledger))
    print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
