"""The naive user loop the bench compares against: what a user writes from the open_clip README.

One process, no decode pool: open each file with PIL, apply the model's preprocessing as a
torchvision transform (resize, center crop, to tensor, normalise), stack batches of 32, run the
PyTorch model in fp32 under no_grad. The label set is encoded once, as any careful user would; the
loop is naive about the image side only, which is where `sigrl tag` earns its speed-up.
"""

from __future__ import annotations

import time
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


@torch.no_grad()
def naive_loop(
    model: SigRL, paths: Sequence[str | Path], labels: Sequence[str], batch_size: int = BATCH_SIZE
) -> tuple[np.ndarray, float]:
    """Scores [n, N] for the files in `paths`, and the seconds the image loop took (labels excluded)."""
    model = model.eval()
    side = model.encode_labels(list(labels))
    transform = torchvision_transform(model.config.preprocess)
    out: list[torch.Tensor] = []
    start = time.perf_counter()
    for i in range(0, len(paths), batch_size):
        tensors = [transform(Image.open(p).convert("RGB")) for p in paths[i:i + batch_size]]
        out.append(model(torch.stack(tensors), side))  # [b, 3, S, S] -> [b, N]
    elapsed = time.perf_counter() - start
    return torch.cat(out).float().numpy(), elapsed


def naive_forward(model: SigRL, images: torch.Tensor, labels: Sequence[str]):
    """A closure running the naive loop's model call on already preprocessed images [b, 3, S, S]."""
    with torch.no_grad():
        side = model.encode_labels(list(labels))

    def call() -> torch.Tensor:
        with torch.no_grad():
            return model(images, side)  # [b, N]

    return call
