"""Decoding image files into model-sized uint8 tensors (resize shorter side, center crop)."""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image

from sigrl.config import PreprocessConfig
from sigrl.errors import SigrlError

log = logging.getLogger(__name__)

_RESAMPLE = {
    "bicubic": Image.Resampling.BICUBIC,
    "bilinear": Image.Resampling.BILINEAR,
    "nearest": Image.Resampling.NEAREST,
}


def load_rgb(path: Path, preprocess: PreprocessConfig) -> np.ndarray:
    """One image as uint8 [S, S, 3] after the model's resize + center crop."""
    try:
        with Image.open(path) as img:
            img.draft("RGB", (preprocess.resize_size, preprocess.resize_size))  # cheap JPEG downscale
            img = img.convert("RGB")
            w, h = img.size
            scale = preprocess.resize_size / min(w, h)
            if (w, h) != (preprocess.image_size, preprocess.image_size):
                size = (max(1, round(w * scale)), max(1, round(h * scale)))
                img = img.resize(size, _RESAMPLE[preprocess.interpolation])
                left = (img.width - preprocess.image_size) // 2
                top = (img.height - preprocess.image_size) // 2
                img = img.crop((left, top, left + preprocess.image_size, top + preprocess.image_size))
            return np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise SigrlError(f"{path}: image file not found; check the manifest's root and paths") from None
    except OSError as err:
        raise SigrlError(f"{path}: cannot decode image ({err})") from None


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
