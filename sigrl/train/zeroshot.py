"""Zero-shot scoring of a CLIP on a manifest, two ways:
- prompts (plain CLIP): cosine of the global image embedding and each label's prompt embedding;
- patch words: each label composed as the mean of its words' prompt embeddings ("red star" from
  "red" and "star"), scored by the best patch token's cosine with it. An unseen pairing of known
  words is never encoded as a string, and colour and shape must meet on one patch (the form the
  pretraining's patch loss trains).

Reports single-object top-1 over all labels (images with exactly one positive), multi-label mAP
over the seen and over the unseen label columns, and the chance level of each figure: 1/L for
top-1 and, for mAP, the mean positive rate of the classes (the expected AP of a random ranking).
"""

from __future__ import annotations

import logging
from typing import Any, Callable, Sequence

import numpy as np
import open_clip
import torch

from sigrl.config import PreprocessConfig, TextConfig
from sigrl.data.images import load_images, normalise
from sigrl.data.manifest import Manifest
from sigrl.metrics import mean_average_precision
from sigrl.model.backbone import encode_image_features
from sigrl.model.text import encode_labels

log = logging.getLogger(__name__)


@torch.no_grad()
def label_embeddings(clip: open_clip.CLIP, tokenizer: Callable[[list[str]], torch.Tensor],
                     labels: Sequence[str], prompt: str) -> torch.Tensor:
    """L2-normalised prompt embeddings [L, D]."""
    tokens = tokenizer([prompt.format(label=lab) for lab in labels])  # [L, C]
    return torch.nn.functional.normalize(clip.encode_text(tokens), dim=-1)


@torch.no_grad()
def image_embeddings(clip: open_clip.CLIP, images: torch.Tensor, preprocess: PreprocessConfig,
                     batch_size: int = 256) -> torch.Tensor:
    """L2-normalised image embeddings [N, D] from uint8 images [N, 3, S, S]."""
    out = [
        torch.nn.functional.normalize(clip.encode_image(normalise(images[i:i + batch_size], preprocess)), dim=-1)
        for i in range(0, len(images), batch_size)
    ]
    return torch.cat(out) if out else torch.empty(0, clip.text_projection.shape[1])


@torch.no_grad()
def word_label_embeddings(clip: open_clip.CLIP, tokenizer: Callable[[list[str]], torch.Tensor],
                          labels: Sequence[str], prompt: str) -> torch.Tensor:
    """[L, D]: each label the mean of its words' L2-normalised prompt embeddings (not unit length):
    the model's own word composition (TextConfig.compose "words")."""
    return encode_labels(clip, tokenizer, labels, prompt, compose="words")


@torch.no_grad()
def image_features(clip: open_clip.CLIP, images: torch.Tensor, preprocess: PreprocessConfig,
                   batch_size: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """L2-normalised global [N, D] and patch [N, P, D] embeddings from uint8 images [N, 3, S, S]."""
    glob, patches = [], []
    for i in range(0, len(images), batch_size):
        g, f = encode_image_features(clip.visual, normalise(images[i:i + batch_size], preprocess))
        glob.append(torch.nn.functional.normalize(g, dim=-1))
        patches.append(torch.nn.functional.normalize(f, dim=-1))
    return torch.cat(glob), torch.cat(patches)


def patch_word_scores(patches: torch.Tensor, composed: torch.Tensor, batch_size: int = 512) -> torch.Tensor:
    """[N, L]: the best patch's dot product with each composed label, patches [N, P, D], composed [L, D]."""
    return torch.cat([torch.einsum("npd,ld->nlp", patches[i:i + batch_size], composed).amax(-1)
                      for i in range(0, len(patches), batch_size)])


def _chance_map(targets: np.ndarray) -> float:
    pos, neg = (targets == 1).sum(0), (targets == -1).sum(0)
    has = pos > 0
    return float((pos[has] / (pos[has] + neg[has])).mean()) if has.any() else float("nan")


def _top1(scores: np.ndarray, targets: np.ndarray, labels: Sequence[str], unseen: set[str]) -> dict[str, Any]:
    single = (targets == 1).sum(1) == 1  # [n]
    truth = np.argmax(targets == 1, axis=1)
    hit = np.argmax(scores, axis=1) == truth
    is_unseen = np.array([labels[j] in unseen for j in truth])
    part = lambda m: float(hit[m].mean()) if m.any() else float("nan")  # noqa: E731
    return {
        "images": int(single.sum()),
        "all": part(single),
        "seen_truth": part(single & ~is_unseen),
        "unseen_truth": part(single & is_unseen),
        "chance": 1.0 / len(labels),
    }


def evaluate_scores(scores: np.ndarray, manifest: Manifest) -> dict[str, Any]:
    """The zero-shot figures from a score matrix [n, L] over `manifest.labels`."""
    targets = manifest.targets()
    labels = list(manifest.labels)
    seen_cols = [j for j, lab in enumerate(labels) if lab not in set(manifest.unseen)]
    unseen_cols = [j for j, lab in enumerate(labels) if lab in set(manifest.unseen)]
    report: dict[str, Any] = {
        "images": len(manifest),
        "top1_single_object": _top1(scores, targets, labels, set(manifest.unseen)),
        "map_all": mean_average_precision(scores, targets),
        "chance_map_all": _chance_map(targets),
    }
    for name, cols in (("seen", seen_cols), ("unseen", unseen_cols)):
        if cols:
            report[f"map_{name}"] = mean_average_precision(scores[:, cols], targets[:, cols])
            report[f"chance_map_{name}"] = _chance_map(targets[:, cols])
    return report


def zero_shot_report(clip: open_clip.CLIP, tokenizer: Callable[[list[str]], torch.Tensor],
                     preprocess: PreprocessConfig, manifest: Manifest,
                     prompt: str = TextConfig().prompt, threads: int = 2) -> dict[str, Any]:
    """Score every image of `manifest` against every label, by prompts and by patch words, and summarise."""
    clip.eval()
    images = load_images(manifest.image_paths(), preprocess, threads=threads)  # [N, 3, S, S]
    img, patches = image_features(clip, images, preprocess)  # [N, D], [N, P, D]
    txt = label_embeddings(clip, tokenizer, manifest.labels, prompt)  # [L, D]
    report = evaluate_scores((img @ txt.T).numpy(), manifest)
    report["prompt"] = prompt
    composed = word_label_embeddings(clip, tokenizer, manifest.labels, prompt)
    report["patch_words"] = evaluate_scores(patch_word_scores(patches, composed).numpy(), manifest)
    return report
