"""Photographs for the measurements: camera-size and VGA JPEGs made from the sample photographs
that ship inside installed PyPI packages (scikit-image's data folder, matplotlib's and
scikit-learn's sample images), each a jittered crop, deterministic per seed. Used by tagging.py,
shards.py, gpu_tag.py and gpu_decode.py.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

PHOTO_MODEL = "sigrl-vit-b32"  # random init: realistic inference cost; tags are not meaningful
PHOTO_LABELS = [
    "person", "cat", "dog", "coffee cup", "rocket", "motorcycle", "flower", "building", "sky", "tree",
    "car", "astronaut", "food", "water", "grass", "road", "text", "portrait", "night sky", "machine",
]


def photo_sources() -> list[Path]:
    """Colour photographs shipped inside installed packages (whatever of them is installed)."""
    import importlib.util

    found = []
    wanted = {
        "skimage": ("data", ["astronaut.png", "chelsea.png", "coffee.png", "rocket.jpg", "motorcycle_left.png",
                             "motorcycle_right.png", "hubble_deep_field.jpg", "retina.jpg", "camera.png"]),
        "matplotlib": ("mpl-data/sample_data", ["grace_hopper.jpg"]),
        "sklearn": ("datasets/images", ["china.jpg", "flower.jpg"]),
    }
    for package, (folder, names) in wanted.items():
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            continue
        base = Path(list(spec.submodule_search_locations)[0]) / folder
        found += [base / n for n in names if (base / n).is_file()]
    if len(found) < 3:
        raise SystemExit("fewer than 3 sample photographs found; pip install scikit-image (bench only)")
    return found


def make_photos(sources: Sequence[Path], out: Path, count: int, size: tuple[int, int], seed: int = 0) -> list[Path]:
    """`count` JPEGs of `size` (every 4th portrait), each a jittered crop of a source photo; photo i
    is drawn with seed `seed + i`, so another seed gives a second, different set."""
    from PIL import Image, ImageEnhance

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / f"photo-{i:04d}.jpg" for i in range(count)]
    for i, path in enumerate(paths):
        if path.exists():
            continue
        rng = np.random.default_rng(seed + i)
        with Image.open(sources[i % len(sources)]) as im:
            im = im.convert("RGB")
        w, h = im.size
        cw, ch = int(w * rng.uniform(0.7, 1.0)), int(h * rng.uniform(0.7, 1.0))
        x, y = int(rng.integers(0, w - cw + 1)), int(rng.integers(0, h - ch + 1))
        im = im.crop((x, y, x + cw, y + ch))
        if rng.random() < 0.5:
            im = im.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        im = ImageEnhance.Brightness(im).enhance(rng.uniform(0.85, 1.15))
        target = size if i % 4 else (size[1], size[0])
        tmp = path.with_suffix(".tmp")
        im.resize(target, Image.Resampling.BICUBIC).save(tmp, "JPEG", quality=90)
        os.replace(tmp, path)
    return paths
