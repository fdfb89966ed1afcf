"""The head-only phase: the fresh heads train on frozen backbone features computed once.

While the backbone is frozen its features of an image never change, so they are computed once per
run (one view per augmentation kept: the image and its mirror) and every head step reads them from
memory. That turns a head step from "backbone forward + head" into "head" alone, which is what lets
a run take thousands of head steps on two CPU cores before the (slower) end-to-end epochs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable

import torch

from sigrl.errors import SigrlError
from sigrl.model import SigRL

log = logging.getLogger(__name__)

# Cached features live in RAM: a bound so a large dataset fails with advice instead of swapping.
MAX_CACHE_BYTES = 8 << 30

ScoreFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


@dataclass
class FeatureCache:
    g: torch.Tensor  # [V, n, D] global features, one row per view and image
    feats: torch.Tensor  # [V, n, P, D] patch features

    @property
    def views(self) -> int:
        return self.g.shape[0]

    def batch(self, idx: torch.Tensor, view: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(g [B, D], F [B, P, D]) of images `idx`, each in its own view."""
        return self.g[view, idx], self.feats[view, idx]


@torch.no_grad()
def cache_features(model: SigRL, images: torch.Tensor, mirror: bool, device: torch.device,
                   batch_size: int = 128) -> FeatureCache:
    """Frozen-backbone features of uint8 images [n, 3, S, S] (and of their mirror images), in fp32."""
    n, views = len(images), 2 if mirror else 1
    tokens = (images.shape[-1] // _patch_size(model)) ** 2
    need = views * n * (tokens + 1) * model.dim * 4
    if need > MAX_CACHE_BYTES:
        raise SigrlError(f"caching backbone features of {n} images needs {need >> 20} MiB; "
                         "train on fewer images (--limit) or skip the head-only phase (--head-steps 0)")
    was_training = model.training
    model.eval()
    g_all, f_all = [], []
    for v in range(views):
        gs, fs = [], []
        for start in range(0, n, batch_size):
            x = images[start:start + batch_size].to(device).float()
            x = x.flip(-1) if v == 1 else x
            g, feats = model.encode_image((x - model.pixel_mean) / model.pixel_std)
            gs.append(g.float().cpu())
            fs.append(feats.float().cpu())
        g_all.append(torch.cat(gs))
        f_all.append(torch.cat(fs))
    model.train(was_training)
    return FeatureCache(torch.stack(g_all), torch.stack(f_all))


def _patch_size(model: SigRL) -> int:
    size = model.clip.visual.patch_size
    return size[0] if isinstance(size, (tuple, list)) else int(size)


def compiled(fn: ScoreFn, enabled: bool) -> ScoreFn:
    """`fn` under torch.compile when enabled; eager where compiling fails (no C++ compiler, say).

    Opt-in: the head's [B, P, n, D] tensors make a step memory-bound, but with GMC and the scoring
    in the graph the compiled step ran at half the eager rate on a 2-core CPU
    (bench/results/intel-r-xeon-r-2c/train_step-*.md); worth measuring again on a GPU.
    """
    if not enabled:
        return fn
    fast = torch.compile(fn, dynamic=False)
    chosen: ScoreFn | None = None  # decided by the first call, which is when compiling happens

    def call(g: torch.Tensor, feats: torch.Tensor) -> torch.Tensor:
        nonlocal chosen
        if chosen is not None:
            return chosen(g, feats)
        try:
            out, chosen = fast(g, feats), fast
        except Exception as err:  # noqa: BLE001 - any compiler failure: run eagerly instead
            log.warning("torch.compile is not usable here (%s); the head phase runs eagerly", str(err).splitlines()[0])
            out, chosen = fn(g, feats), fn
        return out

    return call


def sample_batches(n: int, batch_size: int, views: int, steps: int,
                   gen: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(image indices, view per image) for `steps` steps: seeded epochs over the images, ragged
    tails dropped so every step has the same shape (one compiled graph)."""
    batch = min(batch_size, n)
    out: list[tuple[torch.Tensor, torch.Tensor]] = []
    while len(out) < steps:
        order = torch.randperm(n, generator=gen)
        for start in range(0, n - batch + 1, batch):
            idx = order[start:start + batch]
            out.append((idx, torch.randint(views, (batch,), generator=gen)))
            if len(out) == steps:
                break
    return out
