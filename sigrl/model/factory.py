"""Creating, saving and loading SigRL models.

A model comes from a config (shipped name or JSON file, weights from the config's backbone), from a
sigrl checkpoint (everything inside the file), or from an open_clip spec ("open_clip:ViT-B-16:openai",
plain CLIP zero-shot since no head weights exist for it).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from sigrl import __version__
from sigrl.checkpoint import load_tensors, read_metadata, save_tensors
from sigrl.config import BackboneConfig, HeadConfig, ModelConfig, config_from_dict, load_config
from sigrl.errors import SigrlError
from sigrl.model.backbone import build_clip, load_clip
from sigrl.model.sigrl import SigRL

log = logging.getLogger(__name__)

MODEL_FORMAT = "sigrl-model"
OPEN_CLIP_PREFIX = "open_clip:"


def create_model(config: str | Path | ModelConfig, seed: int | None = 0) -> SigRL:
    """A model from a config; backbone weights as the config says, head weights freshly initialised."""
    cfg = config if isinstance(config, ModelConfig) else load_config(config)
    if seed is not None:
        torch.manual_seed(seed)
    loaded = load_clip(cfg.backbone.arch, cfg.backbone.pretrained)
    if cfg.preprocess is None:
        cfg = dataclasses.replace(cfg, preprocess=loaded.preprocess)
    log.info("created %s (backbone: %s)", cfg.name, loaded.source)
    return SigRL(cfg, loaded.clip, loaded.arch)


def from_open_clip(spec: str) -> SigRL:
    """"open_clip:ARCH[:TAG]" -> the plain CLIP zero-shot variant on that backbone."""
    parts = spec[len(OPEN_CLIP_PREFIX) :].split(":")
    if not parts[0] or len(parts) > 2:
        raise SigrlError(f"bad open_clip spec {spec!r}; use open_clip:ARCH or open_clip:ARCH:PRETRAINED")
    arch, tag = parts[0], (parts[1] if len(parts) == 2 else None)
    cfg = ModelConfig(
        name=f"clip-{arch}", backbone=BackboneConfig(arch=arch, pretrained=tag), head=HeadConfig(variant="clip")
    )
    return create_model(cfg)


def save_model(
    path: str | Path, model: SigRL, labels: Sequence[str] | None = None, summary: Mapping[str, Any] | None = None
) -> None:
    """Write a self-describing checkpoint: weights, resolved config, architecture, labels, summary."""
    meta = {
        "format": MODEL_FORMAT,
        "sigrl_version": __version__,
        "config": model.config.to_dict(),
        "arch": model.arch,
        "labels": list(labels) if labels is not None else None,
        "summary": dict(summary or {}),
    }
    save_tensors(Path(path), model.state_dict(), meta)


def _legacy_defaults(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """Checkpoints written before a head option existed used its old behaviour: say so explicitly."""
    head = config.get("head")
    if isinstance(head, Mapping) and head.get("gmc", True) and "gmc_residual" not in head:
        return {**config, "head": {**head, "gmc_residual": False}}  # the reference form
    return config


def load_model(path: str | Path) -> SigRL:
    """A model from a sigrl checkpoint; needs nothing but the file."""
    path = Path(path)
    meta = read_metadata(path)
    if meta.get("format") != MODEL_FORMAT:
        found = meta.get("format", "no sigrl metadata")
        raise SigrlError(f"{path}: not a sigrl model checkpoint ({found}); CLIP checkpoints go in backbone.pretrained")
    cfg = config_from_dict(_legacy_defaults(meta["config"]), where=f"{path} metadata")
    model = SigRL(cfg, build_clip(meta["arch"]), meta["arch"])
    try:
        model.load_state_dict(load_tensors(path), strict=True)
    except RuntimeError as err:  # missing, unexpected or mis-shaped tensors
        first = str(err).splitlines()[1].strip() if "\n" in str(err) else str(err)
        raise SigrlError(f"{path}: weights do not match its config ({first})") from None
    model.eval()
    return model


def checkpoint_labels(path: str | Path) -> list[str] | None:
    """The label set a checkpoint was trained or exported with, if it records one."""
    return read_metadata(path).get("labels")


def open_model(spec: str | Path) -> SigRL:
    """Any model reference: a checkpoint file, a config name or JSON file, or an open_clip spec."""
    text = str(spec)
    if text.startswith(OPEN_CLIP_PREFIX):
        return from_open_clip(text)
    if text.endswith(".safetensors"):
        return load_model(text)
    return create_model(text)
