"""Everything a run needs before its first step: the model config, data, teacher and pseudo-labels."""

from __future__ import annotations

import copy
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from sigrl.checkpoint import read_metadata
from sigrl.config import BackboneConfig, ModelConfig, load_config
from sigrl.data.manifest import Manifest, load_manifest
from sigrl.data.sampling import single_positive
from sigrl.errors import SigrlError
from sigrl.model import SigRL
from sigrl.model.backbone import CLIP_FORMAT, encode_image_features
from sigrl.model.factory import OPEN_CLIP_PREFIX
from sigrl.train.batches import ImageSet, load_image_set
from sigrl.train.losses import pseudo_positives
from sigrl.train.recipe import TrainConfig

log = logging.getLogger(__name__)


def model_config(cfg: TrainConfig) -> ModelConfig:
    """The model to train: from --init (config, CLIP checkpoint or open_clip spec) plus head options."""
    init = cfg.init
    if init.startswith(OPEN_CLIP_PREFIX):
        parts = init[len(OPEN_CLIP_PREFIX):].split(":")
        base = ModelConfig(name=f"sigrl-{parts[0]}", backbone=BackboneConfig(parts[0], parts[1] if len(parts) > 1 else None))
    elif init.endswith(".safetensors"):
        meta = read_metadata(init)
        if meta.get("format") != CLIP_FORMAT:
            raise SigrlError(f"{init}: --init takes a sigrl CLIP checkpoint (written by `sigrl pretrain`), a model "
                             "config or an open_clip spec")
        base = ModelConfig(name=f"sigrl-{Path(init).stem}", backbone=BackboneConfig(arch=None, pretrained=init))
    else:
        base = load_config(init)
    head: dict[str, Any] = {"variant": cfg.variant, "gmc": cfg.gmc, "gmc_residual": cfg.gmc_residual, "svfr": cfg.svfr}
    if cfg.topk is not None:
        head["topk"] = cfg.topk
    text = {"compose": cfg.compose} if cfg.compose is not None else {}
    return base.replace(head=head, text=text)


def device_for(cfg: TrainConfig) -> torch.device:
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


@dataclass
class RunData:
    train: ImageSet
    val: ImageSet | None
    labels: tuple[str, ...]  # training labels (the seen labels)
    all_labels: tuple[str, ...]  # stored in the checkpoint: what the model is meant to tag
    unseen: tuple[str, ...]


def _training_manifest(cfg: TrainConfig) -> Manifest:
    manifest = load_manifest(cfg.data)
    if cfg.setting == "spml" and manifest.missing != 0:
        # A fully annotated manifest: keep one seeded positive per image among the training labels.
        manifest = single_positive(manifest, cfg.spml_seed, labels=manifest.seen)
    return manifest


def load_run_data(cfg: TrainConfig, model: SigRL, threads: int) -> RunData:
    manifest = _training_manifest(cfg)
    labels = manifest.seen
    if len(labels) < 2:
        raise SigrlError(f"{cfg.data}: needs at least 2 seen labels to train, found {len(labels)}")
    pre = model.config.preprocess
    train = load_image_set(manifest, labels, pre, cfg.limit, cfg.seed, need_positive=True, threads=threads)
    val = None
    if cfg.val:
        vman = load_manifest(cfg.val)
        missing = set(labels) - set(vman.labels)
        if missing:
            raise SigrlError(f"{cfg.val}: validation manifest lacks training labels {sorted(missing)[:5]}")
        val = load_image_set(vman, labels, pre, cfg.val_limit, cfg.seed, threads=threads)
    all_labels = manifest.labels if cfg.setting == "ov" else labels
    return RunData(train, val, labels, tuple(all_labels), manifest.unseen if cfg.setting == "ov" else ())


def frozen_teacher(model: SigRL) -> torch.nn.Module:
    """A frozen copy of the initial image tower (distillation target and pseudo-label source)."""
    teacher = copy.deepcopy(model.clip.visual).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    return teacher


@torch.no_grad()
def teacher_features(teacher: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    return encode_image_features(teacher, x)[0]  # [B, D]


@torch.no_grad()
def compute_pseudo_labels(model: SigRL, teacher: torch.nn.Module, data: ImageSet, cfg: TrainConfig,
                          device: torch.device) -> torch.Tensor:
    """Pseudo-positives bool [n, L] from the initial CLIP's zero-shot softmax on un-augmented images."""
    temperature = cfg.pl_temperature
    if temperature is None:
        temperature = float(model.clip.logit_scale.exp())
    h = model.embed_labels(list(data.labels))  # [L, D]
    out = []
    for start in range(0, len(data), cfg.eval_batch_size):
        x = data.images[start:start + cfg.eval_batch_size].to(device).float()
        g = teacher_features(teacher, (x - model.pixel_mean) / model.pixel_std)
        out.append(pseudo_positives(g, h, temperature, cfg.pl_threshold).cpu())
    pseudo = torch.cat(out) & (data.targets != 1)
    per_image = pseudo.float().sum(1).mean().item()
    log.info("pseudo-positives: %.2f per image (temperature %.1f, threshold %.2f)", per_image, temperature,
             cfg.pl_threshold)
    if not math.isfinite(per_image):
        raise SigrlError("pseudo-labels are not finite; check the initial CLIP checkpoint")
    return pseudo
