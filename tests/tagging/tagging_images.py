"""Small picture generators for the tagging tests."""

import numpy as np
from PIL import Image


def smooth_image(width: int, height: int, seed: int = 0) -> np.ndarray:
    """A smooth colourful uint8 [H, W, 3] picture (JPEG-friendly, orientation-revealing)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    phase = rng.uniform(0, 6, size=3)
    img = np.stack(
        [
            128 + 100 * np.sin(x / (width / 3.1) + phase[0]),
            128 + 100 * np.cos(y / (height / 2.3) + phase[1]),
            255 * (x + 2 * y) / (width + 2 * height),
        ],
        axis=-1,
    )
    return np.clip(img, 0, 255).astype(np.uint8)


def save(path, array: np.ndarray, **kwargs) -> None:
    Image.fromarray(array).save(path, **kwargs)
