"""The training loop shared by both settings; they differ only in the loss and the recipe defaults.

A run folder holds:
    config.json          the resolved TrainConfig and model config
    metrics.jsonl        one JSON object per epoch (loss, lr, validation mAP, seconds)
    last.safetensors     the model after the latest epoch (a normal model checkpoint)
    state.safetensors    optimizer moments, RNG states and progress, for --resume
    best.safetensors     the model with the best validation mAP so far (the last one without --val)
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from sigrl.errors import SigrlError
from sigrl.metrics import mean_average_precision
from sigrl.checkpoint import load_tensors
from sigrl.model import SigRL, create_model, save_model
from sigrl.train import losses as L
from sigrl.train.batches import augment, batches, epoch_generator, steps_per_epoch
from sigrl.train.head_phase import cache_features, compiled, sample_batches
from sigrl.train.optim import build_optimizer, lr_at, param_groups, set_lr, warmup_cosine
from sigrl.train.recipe import TrainConfig, read_run_config
from sigrl.train.setup import RunData, compute_pseudo_labels, device_for, frozen_teacher, load_run_data, \
    model_config, teacher_features
from sigrl.train.state import load_state, save_state

log = logging.getLogger(__name__)


@dataclass
class Run:
    cfg: TrainConfig
    model: SigRL
    data: RunData
    device: torch.device
    optimizer: torch.optim.Optimizer
    teacher: torch.nn.Module | None
    logit: L.LogitScale | None
    pseudo: torch.Tensor | None
    label_h: torch.Tensor  # H [L, D] of the training labels (frozen text encoder)
    out: Path


def _autocast(device: torch.device, precision: str):
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    if precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported():
        # bf16 needs no gradient scaler (fp16 would); older GPUs without bf16 train in fp32
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast(device.type, enabled=False)


def _prepare(cfg: TrainConfig) -> Run:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = device_for(cfg)
    seed_everything(cfg.seed)
    model = create_model(model_config(cfg), seed=cfg.seed).to(device)
    data = load_run_data(cfg, model, torch.get_num_threads())
    need_teacher = cfg.setting == "ov" or cfg.loss == "em_pl"
    teacher = frozen_teacher(model) if need_teacher else None
    pseudo = compute_pseudo_labels(model, teacher, data.train, cfg, device) if cfg.setting == "spml" and \
        cfg.loss == "em_pl" else None
    logit = L.LogitScale(cfg.logit_init_scale).to(device) if cfg.setting == "spml" else None
    label_h = model.embed_labels(list(data.labels))  # [L, D]
    extra = list(logit.parameters()) if logit is not None else []
    optimizer = build_optimizer(param_groups(model, cfg, extra), cfg)
    return Run(cfg, model, data, device, optimizer, teacher, logit, pseudo, label_h, Path(cfg.out))


def _scores(run: Run, g: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
    """Scores [B, L] over the training labels; GMC runs on them inside the step so it trains."""
    return run.model.score_features(g, feats, run.model.label_side(run.label_h))


def _objective(run: Run, idx: torch.Tensor, scores: torch.Tensor, g: torch.Tensor | None = None,
               teacher_g: torch.Tensor | None = None) -> tuple[torch.Tensor, dict[str, float]]:
    """The setting's loss on one batch. OV adds distillation when the backbone trains (teacher_g given)."""
    cfg = run.cfg
    targets = run.data.train.targets[idx].to(run.device)  # [B, L]
    if cfg.setting == "ov":
        rank = L.ranking_loss(scores.float(), targets, cfg.margin, L.rank_scale(cfg.rank_scale, scores.shape[1]))
        if teacher_g is None:
            return rank, {"rank": float(rank.detach())}
        distill = L.distillation_loss(g, teacher_g)
        return rank + cfg.distill_weight * distill, {"rank": float(rank.detach()), "distill": float(distill.detach())}
    logits = run.logit(scores.float())
    if cfg.loss == "an":
        loss = L.an_loss(logits, targets)
    elif cfg.loss == "em":
        loss = L.em_loss(logits, targets, cfg.alpha)
    else:
        loss = L.em_pl_loss(logits, targets, run.pseudo[idx].to(run.device), cfg.alpha, cfg.beta)
    return loss, {}


def _loss(run: Run, idx: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
    """The end-to-end loss on one batch of normalised images x [B, 3, S, S]."""
    g, feats = run.model.encode_image(x)
    teacher_g = teacher_features(run.teacher, x) if run.cfg.setting == "ov" else None
    return _objective(run, idx, _scores(run, g, feats), g, teacher_g)


def _optimizer_step(run: Run, loss: torch.Tensor, step: int) -> None:
    if not torch.isfinite(loss):
        raise SigrlError(f"loss became {float(loss)} at step {step}; lower --lr / --head-lr")
    run.optimizer.zero_grad(set_to_none=True)
    loss.backward()
    run.optimizer.step()


def _add(sums: dict[str, float], loss: torch.Tensor, parts: dict[str, float]) -> None:
    for k, v in {"loss": float(loss.detach()), **parts}.items():
        sums[k] = sums.get(k, 0.0) + v


def _head_phase(run: Run) -> dict[str, float]:
    """cfg.head_steps steps of the heads alone on cached frozen-backbone features."""
    cfg, model = run.cfg, run.model
    start = time.perf_counter()
    cache = cache_features(model, run.data.train.images, cfg.flip, run.device, cfg.eval_batch_size)
    cache_seconds = time.perf_counter() - start
    score = compiled(lambda g, feats: _scores(run, g, feats), cfg.compile)
    plan = sample_batches(len(run.data.train), cfg.batch_size, cache.views, cfg.head_steps,
                          epoch_generator(cfg.seed, -1))
    model.train()
    sums: dict[str, float] = {}
    start = time.perf_counter()
    for step, (idx, view) in enumerate(tqdm(plan, desc="head phase", leave=False, disable=None)):
        g, feats = (t.to(run.device) for t in cache.batch(idx, view))
        set_lr(run.optimizer, 0.0, warmup_cosine(cfg.head_lr, cfg.min_lr, step, cfg.head_warmup_steps, cfg.head_steps))
        with _autocast(run.device, cfg.precision):
            loss, parts = _objective(run, idx, score(g, feats))
        _optimizer_step(run, loss, step)
        _add(sums, loss, parts)
    seconds = time.perf_counter() - start
    return {**{k: v / len(plan) for k, v in sums.items()}, "cache_seconds": round(cache_seconds, 2),
            "train_seconds": round(seconds, 2), "steps_per_second": round(len(plan) / max(seconds, 1e-9), 2)}


def _train_epoch(run: Run, epoch: int, step: int, total: int) -> tuple[int, dict[str, float]]:
    cfg, model = run.cfg, run.model
    model.train()
    gen = epoch_generator(cfg.seed, epoch)
    per_epoch = steps_per_epoch(len(run.data.train), cfg.batch_size)
    sums: dict[str, float] = {}
    bar = tqdm(batches(len(run.data.train), cfg.batch_size, gen), total=per_epoch, desc=f"epoch {epoch + 1}",
               leave=False, disable=None)
    for idx in bar:
        x = augment(run.data.train.images[idx], gen, cfg.flip, cfg.crop_scale).to(run.device)
        x = (x - model.pixel_mean) / model.pixel_std  # [B, 3, S, S]
        lr = lr_at(cfg, step, total, per_epoch)
        # the heads follow the backbone's schedule, scaled to their own peak rate
        set_lr(run.optimizer, lr, lr * cfg.head_lr / cfg.lr if cfg.lr > 0 else cfg.head_lr)
        with _autocast(run.device, cfg.precision):
            loss, parts = _loss(run, idx, x)
        _optimizer_step(run, loss, step)
        step += 1
        _add(sums, loss, parts)
        bar.set_postfix(loss=f"{float(loss.detach()):.4f}")
    return step, {k: v / per_epoch for k, v in sums.items()}


@torch.no_grad()
def validate(run: Run) -> float | None:
    """mAP over the training labels on the validation images (no unseen label is looked at)."""
    if run.data.val is None:
        return None
    model, val = run.model, run.data.val
    model.eval()
    side = model.label_side(run.label_h)
    scores = []
    for start in range(0, len(val), run.cfg.eval_batch_size):
        x = val.images[start:start + run.cfg.eval_batch_size].to(run.device).float()
        with _autocast(run.device, run.cfg.precision):
            scores.append(model((x - model.pixel_mean) / model.pixel_std, side).float().cpu())
    return mean_average_precision(torch.cat(scores).numpy(), val.targets.numpy())


def _summary(run: Run, progress: dict[str, Any]) -> dict[str, Any]:
    return {
        "setting": run.cfg.setting,
        "loss": run.cfg.loss if run.cfg.setting == "spml" else "ranking+distillation",
        "train_labels": list(run.data.labels),
        "unseen": list(run.data.unseen),
        "train_images": len(run.data.train),
        "spml_logit": run.logit.describe() if run.logit is not None else None,
        "train_config": run.cfg.to_dict(),
        **progress,
    }


def _end_epoch(run: Run, progress: dict[str, Any], record: dict[str, Any]) -> None:
    with (run.out / "metrics.jsonl").open("a") as f:
        f.write(json.dumps(record, sort_keys=True) + "\n")
    save_model(run.out / "last.safetensors", run.model, run.data.all_labels, _summary(run, progress))
    save_state(run.out / "state.safetensors", run.optimizer, run.logit, progress)
    if progress["best_epoch"] == progress["epoch"]:
        shutil.copyfile(run.out / "last.safetensors", run.out / "best.safetensors")


def _rates(run: Run) -> dict[str, float]:
    """The current peak rates: the top backbone layer's and the heads'."""
    groups = run.optimizer.param_groups
    return {"lr": max((g["lr"] for g in groups if not g.get("head")), default=0.0),
            "head_lr": max((g["lr"] for g in groups if g.get("head")), default=0.0)}


def _run_head_phase(run: Run, progress: dict[str, Any]) -> dict[str, Any]:
    """The head-only phase, validated and saved like an epoch (epoch 0 in metrics.jsonl)."""
    means = _head_phase(run)
    val = validate(run)
    progress = {**progress, "head_steps": run.cfg.head_steps, "best_epoch": 0, "best_val_mAP": val,
                "seconds": round(progress["seconds"] + means["cache_seconds"] + means["train_seconds"], 2)}
    record = {"epoch": 0, "phase": "head", "step": 0, "head_steps": run.cfg.head_steps, **_rates(run), **means,
              "val_mAP": val}
    log.info("head phase: %s", json.dumps(record))
    _end_epoch(run, progress, record)
    return progress


def train(cfg: TrainConfig, resume: bool = False, stop_after: int | None = None) -> dict[str, Any]:
    """Train (or continue) a run in `cfg.out`; returns the final progress record.

    resume: continue from the run folder's last completed epoch, with its own saved config.
    stop_after: end this call after that many epochs in total (the schedule still spans cfg.epochs).
    """
    out = Path(cfg.out)
    if resume:
        cfg = read_run_config(out)
    cfg = cfg.resolved()
    if not resume and (out / "state.safetensors").exists():
        raise SigrlError(f"{out} already holds a run; pass --resume to continue it or choose another --out")
    run = _prepare(cfg)
    out.mkdir(parents=True, exist_ok=True)
    progress: dict[str, Any] = {"epoch": 0, "step": 0, "best_epoch": 0, "best_val_mAP": None, "seconds": 0.0}
    if resume:
        progress = load_state(out / "state.safetensors", run.optimizer, run.logit)
        run.model.load_state_dict(load_tensors(out / "last.safetensors"))
        log.info("resumed %s at epoch %d (step %d)", out, progress["epoch"], progress["step"])
    else:
        cfg.write(out / "config.json", run.model.config.to_dict())
    has_heads = any(g.get("head") for g in run.optimizer.param_groups)
    if has_heads and progress.get("head_steps", 0) < cfg.head_steps:  # a fresh run (never split)
        progress = _run_head_phase(run, progress)
    elif cfg.head_steps and not has_heads:
        log.info("the %s head has no weights of its own: no head-only phase", cfg.variant)
    per_epoch = steps_per_epoch(len(run.data.train), cfg.batch_size)
    total = per_epoch * cfg.epochs
    last = cfg.epochs if stop_after is None else min(cfg.epochs, stop_after)
    for epoch in range(progress["epoch"], last):
        start = time.perf_counter()
        step, means = _train_epoch(run, epoch, progress["step"], total)
        train_seconds = time.perf_counter() - start
        val = validate(run)
        better = val is None or progress["best_val_mAP"] is None or val > progress["best_val_mAP"]
        progress = {**progress, "epoch": epoch + 1, "step": step,
                    "seconds": round(progress["seconds"] + time.perf_counter() - start, 2)}
        if better:
            progress.update(best_epoch=epoch + 1, best_val_mAP=val)
        record = {"epoch": epoch + 1, "step": step, **_rates(run), **means,
                  "val_mAP": val, "train_seconds": round(train_seconds, 2),
                  "images_per_second": round(per_epoch * cfg.batch_size / max(train_seconds, 1e-9), 1)}
        log.info("epoch %d: %s", epoch + 1, json.dumps(record))
        _end_epoch(run, progress, record)
    return progress


def seed_everything(seed: int) -> None:
    """Python, numpy and torch global generators (the loop itself draws from seeded generators)."""
    import random

    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
