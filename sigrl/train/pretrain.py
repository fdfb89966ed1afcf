"""CLIP pretraining on image-caption pairs: open_clip's model and tokenizer, sigrl's losses.

The model is `open_clip.model.CLIP` built from an open_clip model-config dict (a name shipped in
sigrl/model_configs/clip/ or any open_clip architecture; `conv_stem` adds a convolutional stem), the
tokenizer open_clip's BPE `SimpleTokenizer`. The loss is a symmetric caption InfoNCE
(sigrl.train.pretrain_losses: duplicate captions are not negatives, optional hard-negative captions)
plus, optionally, multi-positive sigmoid losses over the training labels' prompts, over their words,
and over patch tokens against labels composed of their words (the patch loss). The run is
bounded by a step count and/or wall-clock minutes; the learning rate warms up linearly and then
follows a cosine over the budget. The result is written only through `save_clip_checkpoint`, so
`load_clip(None, file)` reads it back.
"""

from __future__ import annotations

import logging
import math
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F

from sigrl.config import TextConfig
from sigrl.data.images import normalise
from sigrl.data.manifest import load_manifest
from sigrl.errors import SigrlError
from sigrl.model.backbone import (build_clip, build_tokenizer, default_preprocess, encode_image_features, resolve_arch,
                                  save_clip_checkpoint)
from sigrl.train.pretrain_data import PretrainData, load_pretrain_data
from sigrl.train.pretrain_losses import LabelSigmoidLoss, PatchLabelLoss, caption_loss
from sigrl.train.zeroshot import zero_shot_report

log = logging.getLogger(__name__)

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
    label_loss: float = 0.0  # weight of the multi-positive sigmoid loss over the training label prompts (0: off)
    word_loss: float = 0.0  # weight of the same sigmoid loss over the words of the training labels (0: off)
    patch_loss: float = 0.0  # weight of the label loss on patch tokens, labels composed of their words (0: off)
    hard_negatives: int = 0  # false captions made per image by a shape or colour swap (0: off)
    precision: str = "fp32"  # "bf16": autocast the towers (losses stay fp32)

    def __post_init__(self) -> None:
        if self.minutes is None and self.steps is None:
            raise SigrlError("give a time budget (--minutes) or a step count (--steps)")
        if self.precision not in ("fp32", "bf16"):
            raise SigrlError(f"--precision must be fp32 or bf16, got {self.precision!r}")
        if self.batch_size < 2:
            raise SigrlError("--batch-size must be at least 2 for a contrastive loss")


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


def _batch_step(clip: torch.nn.Module, data: PretrainData, idx: torch.Tensor, gen: torch.Generator,
                preprocess: Any, extra: Mapping[str, LabelSigmoidLoss], cfg: PretrainConfig) -> dict[str, torch.Tensor]:
    """The losses of one batch: the caption loss, plus the label, word and patch losses in `extra`."""
    batch = data.images[idx]  # [B, 3, S, S]
    flip = torch.rand(len(idx), generator=gen) < 0.5  # colour and shape survive a mirror
    batch = torch.where(flip.view(-1, 1, 1, 1), batch.flip(-1), batch)
    text = data.tokens[idx, torch.randint(data.tokens.shape[1], (len(idx),), generator=gen)]  # [B, C]
    # One text-tower call for captions, false captions, label prompts and word prompts alike.
    texts = {"caption": text}
    if data.negative_tokens is not None:
        texts["negative"] = data.negative_tokens[idx, torch.randint(data.negative_tokens.shape[1], (len(idx),),
                                                                   generator=gen)]
    if "label" in extra:
        texts["label"] = data.label_tokens
    if "word" in extra or "patch" in extra:
        texts["word"] = data.word_tokens
    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=cfg.precision == "bf16"):
        if "patch" in extra:  # the same pass, keeping the projected patch tokens
            img, patches = encode_image_features(clip.visual, normalise(batch, preprocess))  # [B, D], [B, P, D]
        else:
            img, patches = clip.encode_image(normalise(batch, preprocess)), None  # [B, D]
        txt = clip.encode_text(torch.cat(list(texts.values())))  # [sum of the groups, D]
    img, txt = F.normalize(img.float(), dim=-1), F.normalize(txt.float(), dim=-1)
    emb = dict(zip(texts, txt.split([len(t) for t in texts.values()])))
    has_negative = data.has_negative[idx] if data.has_negative is not None else None
    losses = {"caption": caption_loss(img, emb["caption"], clip.logit_scale.exp(), text, emb.get("negative"),
                                      has_negative)}
    if "word" in extra:
        losses["word"] = cfg.word_loss * extra["word"](img, emb["word"], data.word_targets[idx])
    if "label" in extra:
        losses["label"] = cfg.label_loss * extra["label"](img, emb["label"], data.label_targets[idx])
    if "patch" in extra:
        patches = F.normalize(patches.float(), dim=-1)
        losses["patch"] = cfg.patch_loss * extra["patch"](patches, emb["word"], data.label_word_mix,
                                                          data.label_targets[idx])
    return losses


def _extra_losses(cfg: PretrainConfig, train: PretrainData) -> dict[str, LabelSigmoidLoss]:
    """The sigmoid losses asked for, each with its own temperature and a bias at its targets' prior."""
    prior = lambda targets: float(targets.float().mean())  # noqa: E731
    out: dict[str, LabelSigmoidLoss] = {}
    if cfg.label_loss > 0:
        out["label"] = LabelSigmoidLoss(prior=prior(train.label_targets))
    if cfg.word_loss > 0:
        out["word"] = LabelSigmoidLoss(prior=prior(train.word_targets))
    if cfg.patch_loss > 0:
        out["patch"] = PatchLabelLoss(prior=prior(train.label_targets))
    return out


def pretrain(data: Sequence[str | Path], out: str | Path, cfg: PretrainConfig) -> dict[str, Any]:
    """Train a CLIP on the pairs in `data` (caption loss, optional label loss), save it to `out`, return the summary."""
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    torch.manual_seed(cfg.seed)
    arch = resolve_arch(cfg.arch)
    clip = build_clip(arch)
    preprocess = default_preprocess(arch)
    tokenizer = build_tokenizer(arch)
    train = load_pretrain_data(data, preprocess, tokenizer, threads=torch.get_num_threads(),
                               label_prompt=cfg.prompt if cfg.label_captions else None, prompt=cfg.prompt,
                               label_loss=cfg.label_loss > 0, negatives=cfg.hard_negatives, seed=cfg.seed,
                               word_loss=cfg.word_loss > 0, patch_loss=cfg.patch_loss > 0)
    if len(train) < cfg.batch_size:
        raise SigrlError(f"only {len(train)} image-caption pairs for a batch of {cfg.batch_size}; lower --batch-size")
    extra = _extra_losses(cfg, train)
    groups = _param_groups(clip, cfg.weight_decay)
    for loss_module in extra.values():
        groups[1]["params"] += list(loss_module.parameters())
    opt = torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.98), eps=1e-6)
    gen = torch.Generator().manual_seed(cfg.seed)
    order, cursor = torch.randperm(len(train), generator=gen), 0
    load_start = os.getloadavg()[0]
    clip.train()
    step, start, history = 0, time.perf_counter(), []
    while _progress(cfg, step, time.perf_counter() - start) < 1.0:
        if cursor + cfg.batch_size > len(order):  # a fresh permutation per epoch; drop the ragged tail
            order, cursor = torch.randperm(len(train), generator=gen), 0
        idx = order[cursor:cursor + cfg.batch_size]
        cursor += cfg.batch_size
        for group in opt.param_groups:
            group["lr"] = _lr_at(cfg, step, _progress(cfg, step, time.perf_counter() - start))
        parts = _batch_step(clip, train, idx, gen, preprocess, extra, cfg)
        loss = sum(parts.values())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():  # CLIP's clamp: the temperature may not fall below 1/100
            clip.logit_scale.clamp_(0, math.log(cfg.max_logit_scale))
        history.append({k: float(v.detach()) for k, v in parts.items()} | {"total": float(loss.detach())})
        step += 1
        if step % cfg.log_every == 0:
            elapsed = time.perf_counter() - start
            recent = {k: _mean([h[k] for h in history[-cfg.log_every:]]) for k in history[-1]}
            log.info("step %d  %s  %.0f img/s  lr %.2e", step, "  ".join(f"{k} {v:.4f}" for k, v in recent.items()),
                     step * cfg.batch_size / elapsed, opt.param_groups[0]["lr"])
        if not math.isfinite(history[-1]["total"]):
            raise SigrlError(f"loss became {history[-1]['total']} at step {step}; lower --lr")
    wall = time.perf_counter() - start
    summary = _summary(cfg, data, train, step, wall, load_start, history)
    if cfg.eval_manifest:
        report = zero_shot_report(clip, tokenizer, preprocess, load_manifest(cfg.eval_manifest), cfg.prompt,
                                  threads=torch.get_num_threads())
        summary["zero_shot"] = {"manifest": cfg.eval_manifest, **report}
    clip.eval()
    save_clip_checkpoint(out, clip, arch, preprocess, summary)
    log.info("wrote %s after %d steps in %.0f s", out, step, wall)
    return summary


def _summary(cfg: PretrainConfig, data: Sequence[str | Path], train: PretrainData, step: int, wall: float,
             load_start: float, history: list[dict[str, float]]) -> dict[str, Any]:
    head, tail = max(1, min(10, step // 4)), max(1, min(20, step // 4))  # a quarter of the run each when short
    recipe = ["caption loss" + (f" with {cfg.hard_negatives} hard negative(s) per image" if cfg.hard_negatives else "")]
    if cfg.label_loss:
        recipe.append(f"label sigmoid loss x{cfg.label_loss} over {len(train.labels)} training labels")
    if cfg.word_loss:
        recipe.append(f"word sigmoid loss x{cfg.word_loss} over the {len(train.words)} words of those labels")
    if cfg.patch_loss:
        recipe.append(f"patch label loss x{cfg.patch_loss} (best patch against each label's mean word prompt)")
    return {
        "recipe": " + ".join(recipe),
        "config": {k: (v if not isinstance(v, Mapping) else dict(v)) for k, v in asdict(cfg).items()},
        "data": [str(p) for p in data],
        "pairs": len(train),
        "training_labels": len(train.labels),
        "steps": step,
        "samples_seen": step * cfg.batch_size,
        "train_seconds": round(wall, 1),
        "images_per_second": round(step * cfg.batch_size / max(wall, 1e-9), 1),
        "threads": torch.get_num_threads(),
        "loadavg_start_end": [round(load_start, 2), round(os.getloadavg()[0], 2)],
        "loss_first": round(_mean([h["total"] for h in history[:head]]), 4),
        "loss_last": round(_mean([h["total"] for h in history[-tail:]]), 4),
        "loss_parts_last": {k: round(_mean([h[k] for h in history[-tail:]]), 4) for k in history[-1]} if history else {},
        # [step, mean total loss over the log_every steps before it]: is the run still learning?
        "loss_curve": [[i + cfg.log_every, round(_mean([h["total"] for h in history[i:i + cfg.log_every]]), 4)]
                       for i in range(0, step - cfg.log_every + 1, cfg.log_every)],
    }
