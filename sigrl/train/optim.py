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
    """AdamW/Adam groups: lr scale decay^(depth + 1 - layer) per layer; no weight decay on 1-D params.

    The heads (GMC, SVFR) and any `extra` parameters (the SPML logit scale) share the top layer's
    scale 1. Groups carry `lr_scale`; `set_lr` multiplies it with the scheduled rate.
    """
    set_trainable(model, cfg.trainable_blocks)
    depth = len(model.clip.visual.transformer.resblocks)
    layers = _visual_layers(model, cfg.trainable_blocks)
    head = [(f"head.{n}", p) for m in (model.gmc, model.svfr) if m is not None for n, p in m.named_parameters()]
    head += [(f"extra.{i}", p) for i, p in enumerate(extra)]
    layers[-1] = (depth + 1, layers[-1][1] + head)
    groups = []
    for layer, named in layers:
        scale = cfg.layer_decay ** (depth + 1 - layer)
        decay = [p for _, p in named if p.ndim >= 2]
        flat = [p for _, p in named if p.ndim < 2]
        for params, wd in ((decay, cfg.weight_decay), (flat, 0.0)):
            if params:
                groups.append({"params": params, "weight_decay": wd, "lr_scale": scale, "layer": layer})
    n_train = sum(p.numel() for g in groups for p in g["params"])
    log.info("trainable parameters: %d in %d groups (layer decay %.2f)", n_train, len(groups), cfg.layer_decay)
    return groups


def build_optimizer(groups: list[dict[str, Any]], cfg: TrainConfig) -> torch.optim.Optimizer:
    if cfg.optimizer == "adamw":
        return torch.optim.AdamW(groups, lr=cfg.lr, betas=(0.9, 0.999))
    return torch.optim.Adam(groups, lr=cfg.lr)


def lr_at(cfg: TrainConfig, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """Linear warm-up over `warmup_epochs`, then a cosine from lr down to min_lr at the last step."""
    warm = int(round(cfg.warmup_epochs * steps_per_epoch))
    if step < warm:
        return cfg.lr * (step + 1) / warm
    span = max(1, total_steps - warm)
    progress = min(1.0, (step - warm) / span)
    return cfg.min_lr + 0.5 * (cfg.lr - cfg.min_lr) * (1.0 + math.cos(math.pi * progress))


def set_lr(optimizer: torch.optim.Optimizer, lr: float) -> None:
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
