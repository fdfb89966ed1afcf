"""Local + global scoring.

Image and label features are compared by cosine similarity. The `clip` variant returns it as is
(plain CLIP zero-shot); the `patch` variant returns the best patch's (top-1 local only). The other
variants take the mean of the top-k patch similarities (local) and the CLS similarity (global),
L2-normalise each across the label set and average them, so a score depends on the whole label set
being scored.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def global_scores(g: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Cosine similarity [B, N] of global features g [B, D] and label embeddings h [N, D]."""
    return F.normalize(g, dim=-1) @ F.normalize(h, dim=-1).T


def local_scores(patches: torch.Tensor, h: torch.Tensor, topk: int) -> torch.Tensor:
    """Mean of the top-k patch cosine similarities [B, N] for patches [B, P, D] and h [N, D]."""
    sims = F.normalize(patches, dim=-1) @ F.normalize(h, dim=-1).T  # [B, P, N]
    k = min(topk, sims.shape[1])
    return sims.topk(k, dim=1).values.mean(dim=1)


def combine(local: torch.Tensor, glob: torch.Tensor) -> torch.Tensor:
    """(local / |local| + global / |global|) / 2, each norm taken over the label axis."""
    return (F.normalize(local, dim=-1) + F.normalize(glob, dim=-1)) / 2
