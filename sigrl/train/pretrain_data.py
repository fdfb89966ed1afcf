"""Everything a pretraining step draws from, built once: decoded images and token tensors.

Captions, hard-negative captions and the training label prompts are tokenised up front, so a step
only indexes tensors. The training labels are the labels that occur as a positive in the training
data: an unseen label never occurs there, so it never becomes a prompt, a target or a swap target.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch

from sigrl.config import PreprocessConfig
from sigrl.data.captions import CaptionSet, load_captions
from sigrl.data.hard_negatives import negative_captions, objects_from_meta
from sigrl.data.images import load_images
from sigrl.errors import SigrlError
from sigrl.model.text import word_mix

log = logging.getLogger(__name__)

# A bound on the in-memory image cache: pretraining here is for small worlds, not web-scale data.
MAX_CACHE_BYTES = 6 << 30


@dataclass
class PretrainData:
    images: torch.Tensor  # uint8 [N, 3, S, S]
    tokens: torch.Tensor  # [N, K, C] captions, shorter lists padded by cycling
    labels: tuple[str, ...] = ()  # training labels (label loss)
    label_tokens: torch.Tensor | None = None  # [L, C] prompt of each training label
    label_targets: torch.Tensor | None = None  # uint8 [N, L] 0/1
    words: tuple[str, ...] = ()  # the distinct words of the training labels (word loss)
    word_tokens: torch.Tensor | None = None  # [W, C] prompt of each word
    word_targets: torch.Tensor | None = None  # uint8 [N, W] 0/1: a positive label of the image has the word
    label_word_mix: torch.Tensor | None = None  # [L, W]: each training label as the mean of its words (patch loss)
    negative_tokens: torch.Tensor | None = None  # [N, K', C] false captions
    has_negative: torch.Tensor | None = None  # bool [N]: the image has at least one false caption

    def __len__(self) -> int:
        return len(self.images)


def tokenize_all(tokenizer: Callable[[list[str]], torch.Tensor], captions: Sequence[tuple[str, ...]]) -> torch.Tensor:
    """Token ids [N, K, C]: K captions per image, shorter lists padded by cycling through them (so a
    uniform pick over K stays close to uniform over each image's own captions). An empty list gives
    rows of the empty string."""
    k = max(1, max(len(c) for c in captions))
    flat = [c[j % len(c)] if c else "" for c in captions for j in range(k)]
    return tokenizer(flat).view(len(captions), k, -1)


def training_labels(pairs: CaptionSet) -> tuple[tuple[str, ...], torch.Tensor]:
    """The labels that occur as a positive, sorted, and the 0/1 targets [N, L] over them."""
    if pairs.positives is None:
        raise SigrlError("the label loss and hard negatives need sigrl manifests with targets, not caption tables")
    labels = tuple(sorted({lab for pos in pairs.positives for lab in pos}))
    column = {lab: j for j, lab in enumerate(labels)}
    targets = torch.zeros(len(pairs), len(labels), dtype=torch.uint8)
    for i, pos in enumerate(pairs.positives):
        targets[i, [column[lab] for lab in pos]] = 1
    return labels, targets


def label_words(labels: Sequence[str], targets: torch.Tensor) -> tuple[tuple[str, ...], torch.Tensor]:
    """The distinct words of `labels`, sorted, and the 0/1 targets [N, W]: an image has a word when
    one of its positive labels does ("red star" -> "red", "star"). Only training labels are split, so
    every word is one the training data shows; an unseen label is at most a new pairing of them."""
    words = tuple(sorted({w for lab in labels for w in lab.split()}))
    return words, ((targets.float() @ word_mix(labels, words)) > 0).to(torch.uint8)


def hard_negatives(pairs: CaptionSet, allowed: Sequence[str], count: int, seed: int) -> list[tuple[str, ...]]:
    rng = np.random.default_rng([seed, 7])
    out = []
    for meta in pairs.layouts or ():
        objects = objects_from_meta(meta)
        if objects is None:
            raise SigrlError("hard negatives need world manifests whose records carry their object layout (meta.objects)")
        out.append(negative_captions(objects, set(allowed), count, rng))
    return out


def load_pretrain_data(data: Sequence[str | Path], preprocess: PreprocessConfig, tokenizer: Any, *, threads: int,
                       label_prompt: str | None, prompt: str, label_loss: bool, negatives: int,
                       seed: int, word_loss: bool = False, patch_loss: bool = False) -> PretrainData:
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
    out = PretrainData(images, tokenize_all(tokenizer, pairs.captions))
    if label_loss or negatives or word_loss or patch_loss:
        out.labels, targets = training_labels(pairs)
        if label_loss or patch_loss:
            out.label_targets = targets
        if label_loss:
            out.label_tokens = tokenizer([prompt.format(label=lab) for lab in out.labels])
        if word_loss or patch_loss:
            out.words, out.word_targets = label_words(out.labels, targets)
            out.word_tokens = tokenizer([prompt.format(label=w) for w in out.words])
        if patch_loss:
            out.label_word_mix = word_mix(out.labels, out.words)
    if negatives:
        false = hard_negatives(pairs, out.labels, negatives, seed)
        out.has_negative = torch.tensor([bool(f) for f in false])
        out.negative_tokens = tokenize_all(tokenizer, false)
        log.info("hard negatives for %d of %d images", int(out.has_negative.sum()), len(false))
    return out
