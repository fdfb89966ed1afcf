"""Evaluation of checkpoints on a manifest: OV (ZSL / GZSL) and SPML figures, several heads at once.

One backbone pass per batch feeds every requested head, so `clip`, `mkt` and the checkpoint's own
head are compared on exactly the same image features:

- `clip`: the CLS cosine only (plain CLIP zero-shot), parameter-free;
- `mkt`: top-k local + global on raw patches, parameter-free;
- `patch-words`: each label composed of its words' prompts, scored by the best patch (the world
  CLIP's patch loss; parameter-free);
- `own`: the checkpoint's head as trained (SigRL or a trained ablation);
- `no-gmc` / `no-svfr`: the trained SigRL head with one module removed at evaluation time.

ZSL runs the model on the unseen labels only (GMC and the score normalisation see that set, as a
zero-shot user would) and keeps images with at least one unseen positive; GZSL runs it on all
labels and all images. mAP skips classes without a positive (`sigrl.metrics.DEFAULT_EMPTY`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from sigrl.checkpoint import read_metadata
from sigrl.config import BackboneConfig, HeadConfig, ModelConfig
from sigrl.data.images import load_images
from sigrl.data.manifest import Manifest
from sigrl.errors import SigrlError
from sigrl.metrics import mean_average_precision, precision_recall_f1_at_k
from sigrl.model import SigRL, create_model
from sigrl.model.backbone import CLIP_FORMAT
from sigrl.model.factory import open_model

log = logging.getLogger(__name__)

VARIANTS = ("clip", "mkt", "patch-words", "own", "no-gmc", "no-svfr")
DEFAULT_VARIANTS = ("clip", "mkt", "own")


def open_for_eval(spec: str | Path) -> tuple[SigRL, dict[str, Any]]:
    """A model and its checkpoint summary from a sigrl checkpoint, a sigrl CLIP checkpoint (zero-shot:
    clip head, and mkt), a config name or an open_clip spec."""
    text = str(spec)
    if text.endswith(".safetensors"):
        meta = read_metadata(text)
        if meta.get("format") == CLIP_FORMAT:
            cfg = ModelConfig(name=Path(text).stem, backbone=BackboneConfig(arch=None, pretrained=text),
                              head=HeadConfig(variant="clip"))
            return create_model(cfg).eval(), {"init": text}
        return open_model(text).eval(), dict(meta.get("summary") or {})
    return open_model(text).eval(), {}


def describe_head(head: HeadConfig) -> str:
    if head.variant != "sigrl":
        return head.variant
    if head.gmc and head.svfr:
        return "sigrl"
    return "sigrl-no-gmc" if head.svfr else ("sigrl-no-svfr" if head.gmc else "mkt")


def variant_model(model: SigRL, variant: str) -> SigRL:
    """The same backbone (shared, not copied) under another head; trained modules are reused."""
    if variant == "own":
        return model
    head, text = model.config.head, {}
    if variant in ("clip", "mkt"):  # the baselines as published: label prompts, whatever the checkpoint composes
        changes: dict[str, Any] = {"variant": variant}
        text = {"compose": "prompt"}
    elif variant == "patch-words":
        changes, text = {"variant": "patch"}, {"compose": "words"}
    elif variant in ("no-gmc", "no-svfr"):
        if not (head.uses_gmc and head.uses_svfr):
            raise SigrlError(f"variant {variant!r} needs a checkpoint with a full SigRL head (this one is "
                             f"{describe_head(head)})")
        changes = {"gmc": variant != "no-gmc", "svfr": variant != "no-svfr"}
    else:
        raise SigrlError(f"unknown variant {variant!r}; choose from {', '.join(VARIANTS)}")
    clone = SigRL(model.config.replace(head=changes, text=text), model.clip, model.arch)
    if clone.gmc is not None:
        clone.gmc = model.gmc
    if clone.svfr is not None:
        clone.svfr = model.svfr
    return clone.eval()


@torch.no_grad()
def score_variants(
    models: Mapping[str, SigRL],
    images: torch.Tensor,
    label_sets: Mapping[str, Sequence[str]],
    batch_size: int = 128,
) -> dict[str, dict[str, np.ndarray]]:
    """{variant: {label set name: scores [n, N]}} from uint8 images [n, 3, S, S].

    All models must share one backbone; it runs once per batch. Label sets are embedded once per
    way of embedding them (prompts or words).
    """
    base = next(iter(models.values()))
    device = base.pixel_mean.device
    embedded: dict[tuple[Any, str], torch.Tensor] = {}  # (TextConfig, set) -> H [N, D]
    for m in models.values():
        for name, labels in label_sets.items():
            if (m.config.text, name) not in embedded:
                embedded[(m.config.text, name)] = m.embed_labels(list(labels))
    sides = {(v, s): m.label_side(embedded[(m.config.text, s)]) for v, m in models.items() for s in label_sets}
    out: dict[tuple[str, str], list[torch.Tensor]] = {key: [] for key in sides}
    for start in range(0, len(images), batch_size):
        x = images[start:start + batch_size].to(device).float()
        x = (x - base.pixel_mean) / base.pixel_std  # [b, 3, S, S]
        g, feats = base.encode_image(x)  # [b, D], [b, P, D]
        for (v, s), side in sides.items():
            out[(v, s)].append(models[v].score_features(g, feats, side).float().cpu())
    result: dict[str, dict[str, np.ndarray]] = {v: {} for v in models}
    for (v, s), parts in out.items():
        result[v][s] = torch.cat(parts).numpy()
    return result


def _summary(scores: np.ndarray, targets: np.ndarray, ks: Sequence[int] = (3, 5)) -> dict[str, float]:
    out: dict[str, float] = {"mAP": mean_average_precision(scores, targets), "n_images": int(len(scores))}
    for k in ks:
        if k <= scores.shape[1]:
            out[f"F1@{k}"] = precision_recall_f1_at_k(scores, targets, k)["f1"]
    return out


def ov_report(scores_all: np.ndarray, scores_unseen: np.ndarray, targets_all: np.ndarray,
              targets_unseen: np.ndarray) -> dict[str, dict[str, float]]:
    """ZSL on images with an unseen positive (unseen-only label set), GZSL on all labels and images."""
    keep = (targets_unseen == 1).any(axis=1)
    if not keep.any():
        raise SigrlError("no image has an unseen positive label; ZSL metrics are undefined on this manifest")
    return {"zsl": _summary(scores_unseen[keep], targets_unseen[keep]), "gzsl": _summary(scores_all, targets_all)}


def evaluate(
    model: SigRL,
    manifest: Manifest,
    setting: str,
    variants: Sequence[str] = DEFAULT_VARIANTS,
    labels: Sequence[str] | None = None,
    limit: int | None = None,
    batch_size: int = 128,
    threads: int = 2,
    images: torch.Tensor | None = None,
) -> dict[str, Any]:
    """Figures per variant. OV: {"zsl": {...}, "gzsl": {...}}; SPML: {"mAP": ...} over `labels`
    (default: the manifest's labels). `images` (uint8, already decoded) skips decoding."""
    start = time.perf_counter()
    if limit is not None and limit < len(manifest):
        manifest = manifest.subset(range(limit))
    if images is None:
        images = load_images(manifest.image_paths(), model.config.preprocess, threads=threads)
    models = {v: variant_model(model, v) for v in variants}
    if setting == "ov":
        if not manifest.unseen:
            raise SigrlError(f"manifest {manifest.name!r} names no unseen labels; OV evaluation needs them "
                             "(or use --setting spml)")
        sets = {"all": manifest.labels, "unseen": manifest.unseen}
        scores = score_variants(models, images, sets, batch_size)
        t_all, t_unseen = manifest.targets(), manifest.targets(manifest.unseen)
        results = {v: ov_report(s["all"], s["unseen"], t_all, t_unseen) for v, s in scores.items()}
    elif setting == "spml":
        labels = tuple(labels or manifest.labels)
        scores = score_variants(models, images, {"labels": labels}, batch_size)
        targets = manifest.targets(labels)
        results = {v: {"mAP": mean_average_precision(s["labels"], targets), "n_labels": len(labels)}
                   for v, s in scores.items()}
    else:
        raise SigrlError(f"setting must be ov or spml, got {setting!r}")
    seconds = time.perf_counter() - start
    log.info("evaluated %d variants on %d images in %.1f s", len(models), len(images), seconds)
    return {"setting": setting, "manifest": manifest.name, "n_images": len(images),
            "head": describe_head(model.config.head), "results": results, "seconds": round(seconds, 2)}


def format_table(report: Mapping[str, Any]) -> str:
    """A fixed-width text table of an `evaluate` report (percentages)."""
    rows = []
    if report["setting"] == "ov":
        rows.append(f"{'variant':<10} {'ZSL mAP':>8} {'F1@3':>6} {'F1@5':>6}   {'GZSL mAP':>8} {'F1@3':>6} {'F1@5':>6}")
        for v, r in report["results"].items():
            z, g = r["zsl"], r["gzsl"]
            pct = lambda d, k: f"{100 * d[k]:.1f}" if k in d else "-"  # noqa: E731
            rows.append(f"{v:<10} {pct(z, 'mAP'):>8} {pct(z, 'F1@3'):>6} {pct(z, 'F1@5'):>6}   "
                        f"{pct(g, 'mAP'):>8} {pct(g, 'F1@3'):>6} {pct(g, 'F1@5'):>6}")
    else:
        rows.append(f"{'variant':<10} {'mAP':>6}")
        rows += [f"{v:<10} {100 * r['mAP']:>6.1f}" for v, r in report["results"].items()]
    return "\n".join(rows)
