"""Training data in memory: decoded uint8 images, dense targets, seeded order and augmentation.

Every random choice of an epoch (the order, flips, crops) comes from a generator seeded by
(run seed, epoch), so an epoch is the same whether the run was interrupted before it or not.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from sigrl.config import PreprocessConfig
from sigrl.data.images import load_images
from sigrl.data.manifest import Manifest
from sigrl.errors import SigrlError

log = logging.getLogger(__name__)


@dataclass
class ImageSet:
    images: torch.Tensor  # uint8 [n, 3, S, S]
    targets: torch.Tensor  # int8 [n, L] in {+1, -1, 0}
    labels: tuple[str, ...]
    indices: np.ndarray  # record indices in the source manifest

    def __len__(self) -> int:
        return len(self.images)


def seeded_subset(n: int, limit: int | None, seed: int) -> np.ndarray:
    """Sorted indices of a seeded random subset of size `limit` (all when None or larger)."""
    if limit is None or limit >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).permutation(n)[:limit])


def load_image_set(
    manifest: Manifest,
    labels: Sequence[str],
    preprocess: PreprocessConfig,
    limit: int | None = None,
    seed: int = 0,
    need_positive: bool = False,
    threads: int = 2,
) -> ImageSet:
    """Decode a manifest's images (optionally a seeded subset) with their targets over `labels`.

    need_positive drops images with no +1 among `labels` (the OV recipe skips them: they carry no
    ranking pair).
    """
    targets = manifest.targets(labels)  # [n, L]
    keep = seeded_subset(len(manifest), limit, seed)
    if need_positive:
        has_pos = (targets[keep] == 1).any(axis=1)
        if not has_pos.all():
            log.info("skipping %d of %d images without a positive label", int((~has_pos).sum()), len(keep))
        keep = keep[has_pos]
    if len(keep) == 0:
        raise SigrlError(f"manifest {manifest.name!r}: no usable images (none has a positive among the labels)")
    all_paths = manifest.image_paths()
    paths = [all_paths[i] for i in keep]
    start = time.perf_counter()
    images = load_images(paths, preprocess, threads=threads)
    log.info("decoded %d images of %s in %.1f s", len(images), manifest.name, time.perf_counter() - start)
    return ImageSet(images, torch.from_numpy(targets[keep]), tuple(labels), keep)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed * 1_000_003 + epoch)


def _random_resized_crop(image: torch.Tensor, scale: float, gen: torch.Generator) -> torch.Tensor:
    """A crop of area fraction in [scale, 1] and aspect in [3/4, 4/3], resized back. [3, S, S] float."""
    _, h, w = image.shape
    area = float(torch.empty(1).uniform_(scale, 1.0, generator=gen)) * h * w
    log_ratio = float(torch.empty(1).uniform_(np.log(3 / 4), np.log(4 / 3), generator=gen))
    ratio = float(np.exp(log_ratio))
    cw = int(round(min(w, np.sqrt(area * ratio))))
    ch = int(round(min(h, np.sqrt(area / ratio))))
    top = int(torch.randint(0, h - ch + 1, (1,), generator=gen))
    left = int(torch.randint(0, w - cw + 1, (1,), generator=gen))
    crop = image[:, top:top + ch, left:left + cw].unsqueeze(0)
    return F.interpolate(crop, size=(h, w), mode="bilinear", align_corners=False).squeeze(0)


def augment(images: torch.Tensor, gen: torch.Generator, flip: bool, crop_scale: float) -> torch.Tensor:
    """Light augmentation of uint8 [B, 3, S, S] -> float [B, 3, S, S] in 0..255.

    Colour and shape, the world's label content, survive a mirror and a mild crop; stronger
    policies (RandAugment's colour operations) would change colour labels, so they are left out.
    """
    x = images.float()
    if crop_scale < 1.0:
        x = torch.stack([_random_resized_crop(img, crop_scale, gen) for img in x])
    if flip:
        mirror = torch.rand(len(x), generator=gen) < 0.5
        x = torch.where(mirror.view(-1, 1, 1, 1), x.flip(-1), x)
    return x


def batches(n: int, batch_size: int, gen: torch.Generator) -> Iterator[torch.Tensor]:
    """Index batches of one epoch in a seeded order; the ragged tail is dropped when n > batch_size."""
    order = torch.randperm(n, generator=gen)
    stop = n - n % batch_size if n > batch_size else n
    for start in range(0, stop, batch_size):
        yield order[start:start + batch_size]


def steps_per_epoch(n: int, batch_size: int) -> int:
    return max(1, n // batch_size) if n > batch_size else 1
