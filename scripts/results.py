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
import os
import platform
import shlex
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from results_jobs import CLIP, DIAGNOSTIC_JOBS, JOBS, OV_JOBS, PRETRAIN_ARGS, UNSEEN_WORLD, WEIGHTLESS, Job
from results_render import clip_facts, render

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # the in-process steps (diagnostics, packing) import this checkout

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

    def run(self, key: str, cmd: list[str], log_name: str, shown: list[str] | None = None) -> None:
        """Run one command inside --out; record its command line (`shown`, when the one run names a
        path of this machine) and wall time."""
        print("$", shlex.join(cmd), flush=True)
        env = {**os.environ, "OMP_NUM_THREADS": str(self.args.threads)}
        start = time.perf_counter()
        with (self.out / "logs" / log_name).open("w") as log:
            proc = subprocess.run(cmd, cwd=self.out, stdout=log, stderr=subprocess.STDOUT, env=env)
        if proc.returncode != 0:
            raise SystemExit(f"command failed ({proc.returncode}), see {self.out / 'logs' / log_name}")
        with self.lock:
            self.ledger["steps"][key] = {"command": shlex.join(shown or cmd), "wall_seconds": round(time.perf_counter() - start, 1),
                                         "loadavg_after": round(os.getloadavg()[0], 2)}
        self.save()


# -- the steps -------------------------------------------------------------------------------------
def make_world(d: Driver, folder: str, seed: int, sizes: tuple[int, int, int]) -> None:
    if (d.out / folder / "test.jsonl").exists():
        return
    d.run(f"world {folder}", ["sigrl", "data", "synth", "--out", folder, "--seed", str(seed), "--train",
                              str(sizes[0]), "--val", str(sizes[1]), "--test", str(sizes[2])], f"{folder}.log")


def pretrain_cmd(d: Driver) -> list[str]:
    return ["sigrl", "pretrain", "--data", "world/train.jsonl", "--out", CLIP, "--steps", str(d.args.pretrain_steps),
            *PRETRAIN_ARGS, "--eval", "world/test.jsonl"]


def pretrain(d: Driver) -> None:
    if not (d.out / CLIP).exists():
        d.run("pretrain", pretrain_cmd(d), "pretrain.log")
    if "probe" not in d.ledger:  # does the image tower see shape? (scripts/shape_probe.py)
        probe = ["scripts/shape_probe.py", "--clip", CLIP, "--data", "world/test.jsonl", "--out", "evals/clip-probe.json"]
        d.run("probe", [sys.executable, str(REPO / probe[0]), *probe[1:]], "probe.log", shown=["python", *probe])
        d.ledger["probe"] = json.loads((d.out / "evals" / "clip-probe.json").read_text())
        d.save()


def _train_cmd(d: Driver, job: Job, seed: int) -> list[str]:
    a = d.args
    return ["sigrl", "train", "--setting", job.setting, "--data", "world/train.jsonl", "--val", "world/val.jsonl",
            "--init", CLIP, "--out", f"runs/{job.name}-s{seed}", "--seed", str(seed), "--limit", str(a.train_limit),
            "--val-limit", str(a.val_limit), "--batch-size", "32", "--topk", str(a.topk), "--head-steps",
            # the MKT and CLIP heads have no weights of their own: only end-to-end epochs can train them
            "0" if job.name in WEIGHTLESS else str(a.head_steps), "--epochs",
            str(a.mkt_epochs if job.name in WEIGHTLESS else a.epochs), "--warmup-epochs", str(a.warmup_epochs), "--precision",
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
    if job.name in OV_JOBS:  # the default-model candidates, also on a world they never saw
        _eval(d, f"{job.name}-s{seed}-unseen-world", f"{run}/best.safetensors", "own", "ov",
              f"{UNSEEN_WORLD}/test.jsonl")


def run_all(d: Driver) -> None:
    make_world(d, "world", 0, (20000, 1000, 5000))
    make_world(d, UNSEEN_WORLD, 1, (0, 0, d.args.test_limit))
    record_existing(d)
    pretrain(d)
    for key, variants, setting, data in (("clip-ov", "clip,mkt,patch-words", "ov", "world/test.jsonl"),
                                         ("clip-spml", "clip", "spml", "world/test.jsonl"),
                                         ("clip-ov-unseen-world", "clip,mkt,patch-words", "ov", f"{UNSEEN_WORLD}/test.jsonl")):
        _eval(d, key, CLIP, variants, setting, data)
    work = [(job, seed) for seed in d.args.seeds for job in JOBS if job.name in d.args.jobs_run]
    work += [(job, d.args.seeds[0]) for job in DIAGNOSTIC_JOBS if job.name in d.args.jobs_run]
    with ThreadPoolExecutor(max_workers=d.args.parallel) as pool:
        for future in [pool.submit(train_and_eval, d, job, seed) for job, seed in work]:
            future.result()
    for job, seed in work:
        key = f"{job.name}-s{seed}"
        if job.name not in WEIGHTLESS and key not in d.ledger.setdefault("diagnostics", {}):
            d.ledger["diagnostics"][key] = head_diagnostics(d, f"runs/{key}")
    d.save()


def pack_default(d: Driver) -> dict:
    """The OV run with the best validation mAP (never the test figures) among OV_JOBS and the seeds,
    stored in fp16: if a part of SigRL does not pay, the default drops it."""
    from sigrl.checkpoint import read_metadata
    from sigrl.default_model import FILENAME, pack

    candidates = []
    for name in OV_JOBS:
        for seed in d.args.seeds:
            ckpt = d.out / "runs" / f"{name}-s{seed}" / "best.safetensors"
            if ckpt.exists():
                candidates.append((read_metadata(ckpt)["summary"].get("best_val_mAP") or 0.0, name, seed, ckpt))
    if not candidates:
        raise SystemExit("no finished OV run to pack; run the OV setting first")
    val_map, name, seed, ckpt = max(candidates)
    target = REPO / "sigrl" / "default_model" / FILENAME
    source = str(ckpt.relative_to(d.out))
    pack(ckpt, target, {"selected_by": f"best validation mAP over {', '.join(OV_JOBS)} and seeds", "job": name,
                        "seed": seed, "packed_from": source})
    print(f"packed {source} -> {target.relative_to(REPO)} ({target.stat().st_size / 1e6:.1f} MB)")
    return {"from": source, "job": name, "seed": seed, "val_mAP": val_map, "bytes": target.stat().st_size}


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
        d.ledger["steps"]["pretrain"] = {"command": shlex.join(pretrain_cmd(d)),
                                         "wall_seconds": clip_facts(d.out)["train_seconds"],
                                         "loadavg_after": "n/a (run before the driver; training time)"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True, help="Folder for the world, the CLIP, runs and the ledger.")
    p.add_argument("--doc", type=Path, default=REPO / "docs" / "results.md")
    p.add_argument("--seeds", type=lambda s: [int(x) for x in s.split(",")], default=[0, 1, 2])
    p.add_argument("--jobs", dest="jobs_run", type=lambda s: s.split(","), default=[j.name for j in JOBS],
                   help="Which trainings to run (default: all but the diagnostic ov-sigrl-long).")
    p.add_argument("--pretrain-steps", type=int, default=2650, help="Steps of batch 128 for the world CLIP.")
    p.add_argument("--train-limit", type=int, default=2000)
    p.add_argument("--val-limit", type=int, default=400)
    p.add_argument("--test-limit", type=int, default=2000)
    p.add_argument("--head-steps", type=int, default=400)
    p.add_argument("--epochs", type=int, default=1,
                   help="End-to-end epochs after the head-only phase (1: as many as the MKT head gets).")
    p.add_argument("--mkt-epochs", type=int, default=1, help="End-to-end epochs of the weightless heads (MKT, CLIP).")
    p.add_argument("--warmup-epochs", type=float, default=0.3)
    p.add_argument("--topk", type=int, default=8)
    p.add_argument("--precision", default="bf16")
    p.add_argument("--compile", action=argparse.BooleanOptionalAction, default=False,
                   help="torch.compile the head phase (the committed tables were made with it; eager is faster).")
    p.add_argument("--parallel", type=int, default=2, help="Commands run at once.")
    p.add_argument("--threads", type=int, default=1, help="torch threads per command.")
    p.add_argument("--render-only", action="store_true")
    p.add_argument("--pack-default", action="store_true",
                   help="Also pack the trained OV run (any head) with the best validation mAP as sigrl/default_model.")
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
    ledger["clip"] = clip_facts(args.out)
    d.save()
    args.doc.write_text(render(ledger))
    print(f"wrote {args.doc}")


if __name__ == "__main__":
    main()
