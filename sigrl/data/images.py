"""Decoding image files into model-sized uint8 tensors (resize shorter side, center crop)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from sigrl.config import PreprocessConfig
from sigrl.errors import SigrlError
from sigrl.decode import DecodeError, decode


def load_rgb(path: Path, preprocess: PreprocessConfig) -> np.ndarray:
    """One image as uint8 [S, S, 3] after the model's resize + center crop.

    The same decoder as `sigrl tag` (EXIF orientation, every colour mode, JPEG DCT downscaling
    with its quality margin), so training, evaluation and tagging see identical pixels.
    """
    try:
        return decode(path, preprocess)
    except DecodeError as err:
        raise SigrlError(f"{path}: cannot use this image ({err.reason}); check the manifest's root and paths") from None


def load_images(paths: Sequence[Path], preprocess: PreprocessConfig, threads: int = 2) -> torch.Tensor:
    """All images as one uint8 tensor [N, 3, S, S] (Pillow releases the GIL, so threads help)."""
    with ThreadPoolExecutor(max(1, threads)) as pool:
        arrays = list(pool.map(lambda p: load_rgb(Path(p), preprocess), paths, chunksize=64))
    if not arrays:
        return torch.empty((0, 3, preprocess.image_size, preprocess.image_size), dtype=torch.uint8)
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()  # [N, 3, S, S]


def normalise(images: torch.Tensor, preprocess: PreprocessConfig) -> torch.Tensor:
    """uint8 [N, 3, S, S] -> float32 normalised with the model's mean/std."""
    mean = torch.tensor(preprocess.mean, dtype=torch.float32).view(1, 3, 1, 1)
    std = torch.tensor(preprocess.std, dtype=torch.float32).view(1, 3, 1, 1)
    return (images.float() / 255.0 - mean) / std
