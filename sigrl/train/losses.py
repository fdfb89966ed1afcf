"""Training losses of both settings.

Open vocabulary (OV): a per-image pairwise ranking hinge on (sqrt(N)-scaled) scores plus an L1 distillation of
the student's global image feature towards a frozen copy of the initial CLIP.

Single positive (SPML): AN, EM and EM+PL on sigmoid probabilities. SigRL scores are L2-normalised
over the label set (entries of size ~1/sqrt(N)), so a sigmoid straight on them sits at ~0.5 for
every label and BCE-style losses barely move. `LogitScale` maps a score to a logit first:
`logit = exp(log_t) * sqrt(N) * score + b` with learnable t and b. The sqrt(N) keeps the initial
logit range independent of the label count; the map is monotone, so it never changes a ranking or
an mAP, and its fitted values are stored in the checkpoint summary for calibrated probabilities.

Targets everywhere are dense {+1, -1, 0} tensors [B, N]; 0 means unknown/ignored.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

_EPS = 1e-7


def ranking_loss(scores: torch.Tensor, targets: torch.Tensor, margin: float = 1.0,
                 scale: float = 1.0) -> torch.Tensor:
    """Hinge max(0, margin + scale * (s_neg - s_pos)) over all (positive, negative) pairs of each image.

    Per image the hinge sum is divided by the number of violating pairs (pairs with a non-zero
    hinge), so an image's weight does not grow with its pair count; an image without violating
    pairs (or without a positive or a negative) contributes 0. The result is the batch mean.
    scores, targets: [B, N]. `scale` puts the scores on the margin's scale (see `rank_scale`).
    """
    pos = (targets == 1).to(scores.dtype)  # [B, N]
    neg = (targets == -1).to(scores.dtype)  # [B, N]
    # [B, P=N, Q=N]: pair (i = positive label, j = negative label)
    scores = scores * scale
    hinge = (margin + scores.unsqueeze(1) - scores.unsqueeze(2)).clamp(min=0)
    pair = pos.unsqueeze(2) * neg.unsqueeze(1)
    hinge = hinge * pair
    violating = ((hinge > 0) & (pair > 0)).sum(dim=(1, 2)).to(scores.dtype)  # [B]
    per_image = hinge.sum(dim=(1, 2)) / violating.clamp(min=1)
    return per_image.mean()


def rank_scale(kind: str, n_labels: int) -> float:
    """The factor the ranking hinge multiplies scores by.

    SigRL scores are L2-normalised over the N labels, so their entries are ~1/sqrt(N): measured on
    the world they lie in about [-0.12, 0.26] and no positive-negative gap reached the reference
    margin of 1, so every pair always violated and the hinge was a plain mean difference with no
    focus on hard pairs. "sqrt_n" ranks sqrt(N) * score (entries of order 1, independent of N),
    where a margin of 1 is reachable; "none" is the reference.
    """
    if kind == "sqrt_n":
        return math.sqrt(n_labels)
    if kind == "none":
        return 1.0
    raise ValueError(f"unknown rank scale {kind!r}")


def distillation_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """L1 distance between L2-normalised global features [B, D], summed over D, mean over batch.

    Normalising first makes the term independent of the backbone's feature scale (only directions
    are used for scoring); summing over D keeps it on the order of the ranking loss.
    """
    diff = F.normalize(student.float(), dim=-1) - F.normalize(teacher.float(), dim=-1)
    return diff.abs().sum(dim=-1).mean()


class LogitScale(nn.Module):
    """score [B, N] -> logit: exp(log_t) * sqrt(N) * score + bias (learnable t and bias)."""

    def __init__(self, init_scale: float = 4.0, init_bias: float = 0.0, learnable: bool = True):
        super().__init__()
        self.log_t = nn.Parameter(torch.tensor(math.log(init_scale)), requires_grad=learnable)
        self.bias = nn.Parameter(torch.tensor(float(init_bias)), requires_grad=learnable)

    def forward(self, scores: torch.Tensor) -> torch.Tensor:
        return self.log_t.exp() * math.sqrt(scores.shape[-1]) * scores + self.bias

    def describe(self) -> dict[str, float]:
        return {"scale": float(self.log_t.exp()), "bias": float(self.bias), "sqrt_n_factor": True}


def _bce_terms(logits: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(-log p, -log(1-p)) from logits, computed stably."""
    return F.softplus(-logits), F.softplus(logits)


def an_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Assume negative: BCE with every non-positive label as a negative, mean over all entries."""
    pos_term, neg_term = _bce_terms(logits.float())
    loss = torch.where(targets == 1, pos_term, neg_term)
    return loss.mean()


def binary_entropy(logits: torch.Tensor) -> torch.Tensor:
    """H(p) = -p log p - (1-p) log(1-p), p = sigmoid(logits), in nats."""
    p = torch.sigmoid(logits)
    pos_term, neg_term = _bce_terms(logits)
    return p * pos_term + (1 - p) * neg_term


def em_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.1) -> torch.Tensor:
    """Entropy maximisation: -log p on the observed positive, -alpha * H(p) on unknowns.

    Mean over all B*N entries (the positive and the unknowns), as the reference loss matrix.
    """
    logits = logits.float()
    pos_term, _ = _bce_terms(logits)
    loss = torch.where(targets == 1, pos_term, -alpha * binary_entropy(logits))
    return loss.mean()


def em_pl_loss(
    logits: torch.Tensor, targets: torch.Tensor, pseudo: torch.Tensor, alpha: float = 0.1, beta: float = 0.7
) -> torch.Tensor:
    """EM plus pseudo-positives: on `pseudo` entries (bool [B, N], never the observed positive) a
    BCE towards the smoothed positive target beta; every other unknown keeps the EM term.
    """
    logits = logits.float()
    pos_term, neg_term = _bce_terms(logits)
    pseudo = pseudo & (targets != 1)
    smoothed = beta * pos_term + (1 - beta) * neg_term
    unknown = -alpha * binary_entropy(logits)
    loss = torch.where(targets == 1, pos_term, torch.where(pseudo, smoothed, unknown))
    return loss.mean()


@torch.no_grad()
def pseudo_positives(
    image_features: torch.Tensor, label_embeddings: torch.Tensor, temperature: float, threshold: float = 0.3
) -> torch.Tensor:
    """Zero-shot pseudo-positives bool [B, N]: softmax over labels of temperature * cosine > threshold.

    image_features [B, D] come from the frozen initial CLIP, label_embeddings [N, D] from its text
    encoder; `temperature` multiplies the cosines (CLIP's own logit scale by default).
    """
    sims = F.normalize(image_features.float(), dim=-1) @ F.normalize(label_embeddings.float(), dim=-1).T
    return (temperature * sims).softmax(dim=-1) > threshold

