"""Training steps per second on the world model (clip-world-tiny backbone, 48 training labels):
the end-to-end step every head update cost before the head-only phase existed, against a head step
on cached backbone features, eager and under torch.compile. The three run side by side in one
process, so their ratios hold on a shared machine even when the absolute figures drift.

    python scripts/bench/train_step.py [--batch 32] [--steps 20]

Results: bench/results/<machine-id>/train_step-<precision>.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parents[2] / "bench" / "results"


def _model():
    from sigrl.config import BackboneConfig, ModelConfig
    from sigrl.model import create_model

    cfg = ModelConfig(name="bench", backbone=BackboneConfig(arch="clip-world-tiny")).replace(head={"topk": 8})
    return create_model(cfg, seed=0)


def _rate(step, steps: int) -> float:
    step()  # warm-up (and the compile, for the compiled case)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return steps / (time.perf_counter() - start)


def measure(batch: int, steps: int, labels: int, precision: str) -> dict:
    from sigrl.train.head_phase import compiled
    from sigrl.train.losses import rank_scale, ranking_loss

    torch.manual_seed(0)
    model = _model().train()
    h = torch.randn(labels, model.dim)
    targets = torch.where(torch.rand(batch, labels) < 0.05, 1, -1)
    images = torch.randn(batch, 3, 64, 64)
    params = [p for m in (model.gmc, model.svfr) for p in m.parameters()]
    params += list(model.clip.visual.parameters())
    opt = torch.optim.AdamW(params, lr=1e-6)
    with torch.no_grad():
        g0, f0 = model.encode_image(images)

    def loss_of(scores):
        return ranking_loss(scores.float(), targets, 1.0, rank_scale("sqrt_n", labels))

    def update(loss):
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    score = lambda g, f: model.score_features(g, f, model.label_side(h))  # noqa: E731
    fast = compiled(score, True)
    cases = {
        "end-to-end step (backbone + heads)": lambda: update(loss_of(score(*model.encode_image(images)))),
        "head step on cached features, eager": lambda: update(loss_of(score(g0, f0))),
        "head step on cached features, compiled": lambda: update(loss_of(fast(g0, f0))),
    }
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=precision == "bf16"):
        return {name: round(_rate(step, steps), 2) for name, step in cases.items()}


def main() -> None:
    from sigrl.machine import cpu_model, machine_id

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--labels", type=int, default=48)
    p.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    p.add_argument("--out", type=Path, default=None, help="Folder for the results (default bench/results/<machine-id>).")
    args = p.parse_args()
    load = os.getloadavg()[0]
    rates = measure(args.batch, args.steps, args.labels, args.precision)
    report = {"machine": {"id": machine_id(), "cpu": cpu_model(), "cores": os.cpu_count(),
                          "threads": torch.get_num_threads(), "loadavg_start_end": [load, os.getloadavg()[0]]},
              "batch": args.batch, "labels": args.labels, "precision": args.precision, "steps_per_second": rates}
    base = rates["end-to-end step (backbone + heads)"]
    lines = [f"# Training steps per second ({report['machine']['cpu']}, {torch.get_num_threads()} threads, "
             f"load {load:.1f} -> {os.getloadavg()[0]:.1f})", "",
             f"clip-world-tiny + SigRL head, batch {args.batch}, {args.labels} labels, {args.precision}, "
             f"`python scripts/bench/train_step.py --batch {args.batch} --steps {args.steps} --precision {args.precision}`.", "",
             "| step | steps/s | vs end-to-end |", "|---|---:|---:|"]
    lines += [f"| {name} | {rate:.2f} | {rate / base:.1f}x |" for name, rate in rates.items()]
    out = args.out or RESULTS / machine_id()
    out.mkdir(parents=True, exist_ok=True)
    (out / f"train_step-{args.precision}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"train_step-{args.precision}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
