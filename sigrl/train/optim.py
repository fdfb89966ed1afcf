"""What trains, at which learning rate: trainable parameters, layer-wise lr decay, the schedule."""

from __future__ import annotations

import logging
import math
from typing import Any, Iterable

import torch
from torch import nn

from sigrl.model import SigRL
from sigrl.train.recipe import TrainConfig

log = logging.getLogger(__name__)


def _visual_layers(model: SigRL, blocks: int) -> list[tuple[int, list[tuple[str, nn.Parameter]]]]:
    """(layer id, named params) of the image tower that train; top layer id = depth + 1.

    Layer 0 is the patch/position embedding and ln_pre, layer i the i-th block, depth + 1 the
    final norm and projection. `blocks` = K trains the last K blocks (-1: the whole tower).
    """
    visual = model.clip.visual
    resblocks = visual.transformer.resblocks
    depth = len(resblocks)
    k = depth if blocks < 0 else min(blocks, depth)
    layers: list[tuple[int, list[tuple[str, nn.Parameter]]]] = []
    if blocks < 0:
        stem = [(n, p) for n, p in visual.named_parameters() if not n.startswith(("transformer.", "ln_post", "proj"))]
        layers.append((0, stem))
    for i in range(depth - k, depth):
        layers.append((i + 1, [(f"transformer.resblocks.{i}.{n}", p) for n, p in resblocks[i].named_parameters()]))
    top = [(n, p) for n, p in visual.named_parameters() if n.startswith(("ln_post", "proj"))]
    layers.append((depth + 1, top))
    return layers


def set_trainable(model: SigRL, blocks: int) -> list[nn.Parameter]:
    """Freeze everything, then unfreeze the chosen image-tower layers, GMC and SVFR."""
    for p in model.parameters():
        p.requires_grad_(False)
    params = [p for _, named in _visual_layers(model, blocks) for _, p in named]
    for module in (model.gmc, model.svfr):
        if module is not None:
            params.extend(module.parameters())
    for p in params:
        p.requires_grad_(True)
    return params


def param_groups(
    model: SigRL, cfg: TrainConfig, extra: Iterable[nn.Parameter] = ()
) -> list[dict[str, Any]]:
    """AdamW/Adam groups: lr scale decay^(depth + 1 - layer) per backbone layer; no weight decay on 1-D params.

    The fresh heads (GMC, SVFR) and any `extra` parameters (the SPML logit scale) form groups of
    their own marked `head`: `set_lr` gives them the head rate instead of the backbone's.
    """
    set_trainable(model, cfg.trainable_blocks)
    depth = len(model.clip.visual.transformer.resblocks)
    layers = [(layer, named, False) for layer, named in _visual_layers(model, cfg.trainable_blocks)]
    head = [(f"head.{n}", p) for m in (model.gmc, model.svfr) if m is not None for n, p in m.named_parameters()]
    head += [(f"extra.{i}", p) for i, p in enumerate(extra)]
    if head:
        layers.append((depth + 1, head, True))
    groups = []
    for layer, named, is_head in layers:
        scale = 1.0 if is_head else cfg.layer_decay ** (depth + 1 - layer)
        decay = [p for _, p in named if p.ndim >= 2]
        flat = [p for _, p in named if p.ndim < 2]
        for params, wd in ((decay, cfg.weight_decay), (flat, 0.0)):
            if params:
                groups.append({"params": params, "weight_decay": wd, "lr_scale": scale, "layer": layer,
                               "head": is_head})
    n_train = sum(p.numel() for g in groups for p in g["params"])
    log.info("trainable parameters: %d in %d groups (layer decay %.2f)", n_train, len(groups), cfg.layer_decay)
    return groups


def build_optimizer(groups: list[dict[str, Any]], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999))
    return torch.optim.Adam(groups, lr=cfg.lr)


def lr_at(cfg: TrainConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Linear warm-up over `warmup_epochs`, then a cosine from lr down to min_lr at the last step."""
    return warmup_cosine(cfg.lr, cfg.min_lr, step, int(round(cfg.warmup_epochs * steps_per_epoch)), total_steps)


def warmup_cosine(peak: float, floor: float, step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    return floor + 0.5 * (peak - floor) * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float, head_lr: float) -> None:
    """Backbone groups get lr times their layer scale, head groups head_lr."""
    for group in optimizer.param_groups:
        group["lr"] = head_lr if group.get("head") else lr * group.get("lr_scale", 1.0)
