"""The naive user loop the bench compares against: what a user writes from the open_clip README.

One process, no decode pool: open each file with PIL, apply the model's preprocessing as a
torchvision transform (resize, center crop, to tensor, normalise), stack batches of 32, run the
PyTorch model in fp32 under no_grad. The label set is encoded once, as any careful user would; the
loop is naive about the image side only, which is where `sigrl tag` earns its speed-up.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from sigrl.config import PreprocessConfig
from sigrl.model.sigrl import SigRL

BATCH_SIZE = 32


def torchvision_transform(pre: PreprocessConfig):
    """The model's preprocessing as a user would write it with torchvision."""
    from torchvision import transforms as T

    modes = {"bicubic": T.InterpolationMode.BICUBIC, "bilinear": T.InterpolationMode.BILINEAR,
             "nearest": T.InterpolationMode.NEAREST}
    return T.Compose([
        T.Resize(pre.resize_size, interpolation=modes[pre.interpolation]),
        T.CenterCrop(pre.image_size),
        T.ToTensor(),
        T.Normalize(pre.mean, pre.std),
    ])


@dataclass
class NaiveRun:
    scores: np.ndarray  # [n, N]
    seconds: float  # the image loop, labels excluded
    decode_seconds: float  # PIL open + torchvision preprocessing
    forward_seconds: float


@torch.no_grad()
def naive_loop(
    model: SigRL, paths: Sequence[str | Path], labels: Sequence[str], batch_size: int = BATCH_SIZE
) -> NaiveRun:
    """Scores for the files in `paths`, with where the loop's time went."""
    model = model.eval()
    side = model.encode_labels(list(labels))
    transform = torchvision_transform(model.config.preprocess)
    out: list[torch.Tensor] = []
    decode = forward = 0.0
    start = time.perf_counter()
    for i in range(0, len(paths), batch_size):
        a = time.perf_counter()
        batch = torch.stack([transform(Image.open(p).convert("RGB")) for p in paths[i:i + batch_size]])
        b = time.perf_counter()
        out.append(model(batch, side).float())  # [b, 3, S, S] -> [b, N]
        decode, forward = decode + b - a, forward + time.perf_counter() - b
    elapsed = time.perf_counter() - start
    return NaiveRun(torch.cat(out).numpy(), elapsed, decode, forward)


def naive_forward(model: SigRL, images: torch.Tensor, labels: Sequence[str]):
    """A closure running the naive loop's model call on already preprocessed images [b, 3, S, S]."""
    with torch.no_grad():
        side = model.encode_labels(list(labels))

    def call() -> torch.Tensor:
        with torch.no_grad():
            return model(images, side)  # [b, N]

    return call
