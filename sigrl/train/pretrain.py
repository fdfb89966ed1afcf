"""Contrastive CLIP pretraining on image-caption pairs, with open_clip's own model and loss.

The model is `open_clip.model.CLIP` built from an open_clip model-config dict (a name shipped in
sigrl/model_configs/clip/ or any open_clip architecture), the loss is `open_clip.loss.ClipLoss`
and the tokenizer open_clip's BPE `SimpleTokenizer`. The run is bounded by wall-clock minutes
(and/or a step count); the learning rate warms up linearly and then follows a cosine over the
budget. The result is written only through `save_clip_checkpoint`, so `load_clip(None, file)`
reads it back.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import open_clip
import torch

from sigrl.config import TextConfig
from sigrl.data.captions import CaptionSet, load_captions
from sigrl.data.images import load_images, normalise
from sigrl.data.manifest import load_manifest
from sigrl.errors import SigrlError
from sigrl.model.backbone import build_clip, build_tokenizer, default_preprocess, resolve_arch, save_clip_checkpoint
from sigrl.train.zeroshot import zero_shot_report

log = logging.getLogger(__name__)

# A bound on the in-memory image cache: pretraining here is for small worlds, not web-scale data.
MAX_CACHE_BYTES = 6 << 30


@dataclass(frozen=True)
class PretrainConfig:
    arch: str | Mapping[str, Any] = "clip-world-tiny"
    minutes: float | None = 20.0
    steps: int | None = None  # an optional step bound (exact and machine-independent)
    seed: int = 0
    batch_size: int = 128
    lr: float = 1e-3
    weight_decay: float = 0.1
    warmup_steps: int = 50
    max_logit_scale: float = 100.0
    threads: int = 0  # torch intra-op threads; 0 keeps torch's default
    log_every: int = 20
    eval_manifest: str | None = None  # zero-shot report on this manifest after training
    prompt: str = field(default_factory=lambda: TextConfig().prompt)
    label_captions: bool = False  # also caption images with `prompt` per positive label (sigrl manifests)

    def __post_init__(self) -> None:
        if self.minutes is None and self.steps is None:
            raise SigrlError("give a time budget (--minutes) or a step count (--steps)")
        if self.batch_size < 2:
            raise SigrlError("--batch-size must be at least 2 for a contrastive loss")


def _tokenize_all(tokenizer: Any, captions: Sequence[tuple[str, ...]]) -> torch.Tensor:
    """Token ids [N, K, C]: K captions per image, shorter lists padded by cycling through them (so a
    uniform pick over K stays close to uniform over each image's own captions)."""
    k = max(len(c) for c in captions)
    flat = [c[j % len(c)] for c in captions for j in range(k)]
    return tokenizer(flat).view(len(captions), k, -1)


def _param_groups(clip: torch.nn.Module, weight_decay: float) -> list[dict[str, Any]]:
    # no decay on gains, biases, embeddings' scale: the usual CLIP recipe
    decay = [p for n, p in clip.named_parameters() if p.ndim >= 2 and "logit_scale" not in n]
    rest = [p for n, p in clip.named_parameters() if p.ndim < 2 or "logit_scale" in n]
    return [{"params": decay, "weight_decay": weight_decay}, {"params": rest, "weight_decay": 0.0}]


def _lr_at(cfg: PretrainConfig, step: int, progress: float) -> float:
    warm = min(1.0, (step + 1) / max(1, cfg.warmup_steps))
    return cfg.lr * warm * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _progress(cfg: PretrainConfig, step: int, elapsed: float) -> float:
    parts = []
    if cfg.steps is not None:
        parts.append(step / cfg.steps)
    if cfg.minutes is not None:
        parts.append(elapsed / (cfg.minutes * 60.0))
    return max(parts)


def _mean(values: Sequence[float]) -> float:
    return sum(values) / max(1, len(values))


def _load_data(data: Sequence[str | Path], preprocess: Any, threads: int,
               label_prompt: str | None) -> tuple[CaptionSet, torch.Tensor]:
    pairs = load_captions(data, label_prompt)
    need = len(pairs) * 3 * preprocess.image_size ** 2
    if need > MAX_CACHE_BYTES:
        raise SigrlError(
            f"{len(pairs)} images at {preprocess.image_size}px need {need >> 20} MiB in memory; "
            "pretrain on fewer images or a smaller image size"
        )
    start = time.perf_counter()
    images = load_images(pairs.image_paths, preprocess, threads=threads)  # [N, 3, S, S] uint8
    log.info("decoded %d images in %.1f s", len(images), time.perf_counter() - start)
    return pairs, images


def pretrain(data: Sequence[str | Path], out: str | Path, cfg: PretrainConfig) -> dict[str, Any]:
    """Train a CLIP contrastively on the pairs in `data`, save it to `out`, return the summary."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    arch = resolve_arch(cfg.arch)
    clip = build_clip(arch)
    preprocess = default_preprocess(arch)
    tokenizer = build_tokenizer(arch)
    pairs, images = _load_data(data, preprocess, torch.get_num_threads(), cfg.prompt if cfg.label_captions else None)
    if len(pairs) < cfg.batch_size:
        raise SigrlError(f"only {len(pairs)} image-caption pairs for a batch of {cfg.batch_size}; lower --batch-size")
    tokens = _tokenize_all(tokenizer, pairs.captions)  # [N, K, C]

    loss_fn = open_clip.loss.ClipLoss()
    opt = torch.optim.AdamW(_param_groups(clip, cfg.weight_decay), lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    gen = torch.Generator().manual_seed(cfg.seed)
    order, cursor = torch.randperm(len(pairs), generator=gen), 0
    load_start = os.getloadavg()[0]
    clip.train()
    step, start, losses = 0, time.perf_counter(), []
    while _progress(cfg, step, time.perf_counter() - start) < 1.0:
        if cursor + cfg.batch_size > len(order):  # a fresh permutation per epoch; drop the ragged tail
            order, cursor = torch.randperm(len(pairs), generator=gen), 0
        idx = order[cursor:cursor + cfg.batch_size]
        cursor += cfg.batch_size
        batch = images[idx]  # [B, 3, S, S]
        flip = torch.rand(len(idx), generator=gen) < 0.5  # colour and shape survive a mirror
        batch = torch.where(flip.view(-1, 1, 1, 1), batch.flip(-1), batch)
        pick = torch.randint(tokens.shape[1], (len(idx),), generator=gen)
        text = tokens[idx, pick]  # [B, C]

        for group in opt.param_groups:
            group["lr"] = _lr_at(cfg, step, _progress(cfg, step, time.perf_counter() - start))
        img_f, txt_f, scale = clip(normalise(batch, preprocess), text)
        loss = loss_fn(img_f, txt_f, scale)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():  # CLIP's clamp: the temperature may not fall below 1/100
            clip.logit_scale.clamp_(0, math.log(cfg.max_logit_scale))
        losses.append(float(loss.detach()))
        step += 1
        if step % cfg.log_every == 0:
            elapsed = time.perf_counter() - start
            log.info("step %d  loss %.4f  %.0f img/s  lr %.2e", step, sum(losses[-cfg.log_every:]) / cfg.log_every,
                     step * cfg.batch_size / elapsed, opt.param_groups[0]["lr"])
        if not math.isfinite(losses[-1]):
            raise SigrlError(f"loss became {losses[-1]} at step {step}; lower --lr")
    wall = time.perf_counter() - start
    summary: dict[str, Any] = {
        "recipe": "contrastive (open_clip ClipLoss)",
        "config": {k: (v if not isinstance(v, Mapping) else dict(v)) for k, v in asdict(cfg).items()},
        "data": [str(p) for p in data],
        "pairs": len(pairs),
        "steps": step,
        "samples_seen": step * cfg.batch_size,
        "train_seconds": round(wall, 1),
        "images_per_second": round(step * cfg.batch_size / max(wall, 1e-9), 1),
        "threads": torch.get_num_threads(),
        "loadavg_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        # means over the first 10 and last 20 steps (a quarter of the run each when it is short)
        "loss_first": round(_mean(losses[:max(1, min(10, step // 4))]), 4),
        "loss_last": round(_mean(losses[-max(1, min(20, step // 4)):]), 4),
    }
    if cfg.eval_manifest:
        report = zero_shot_report(clip, tokenizer, preprocess, load_manifest(cfg.eval_manifest), cfg.prompt,
                                  threads=torch.get_num_threads())
        summary["zero_shot"] = {"manifest": cfg.eval_manifest, **report}
    clip.eval()
    save_clip_checkpoint(out, clip, arch, preprocess, summary)
    log.info("wrote %s after %d steps in %.0f s", out, step, wall)
    return summary
