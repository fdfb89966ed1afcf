"""The losses of CLIP pretraining: the caption loss (with hard negatives), the label sigmoid loss and its patch form."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


def caption_loss(image: torch.Tensor, text: torch.Tensor, scale: torch.Tensor, tokens: torch.Tensor,
                 negatives: torch.Tensor | None = None, has_negative: torch.Tensor | None = None) -> torch.Tensor:
    """Symmetric InfoNCE over a batch of L2-normalised image [B, D] and caption [B, D] embeddings.

    Two departures from open_clip's ClipLoss, both about what counts as a negative:
    - a caption identical to the image's own (same tokens [B, C]; common with one-label captions)
      is not a negative for it: ClipLoss would punish the model for matching it;
    - `negatives` [B, D], one false caption per image (sigrl.data.hard_negatives), add one column
      to each image's image-to-text row: its own false caption (masked where `has_negative` [B] is
      False). Only the image's own false caption is used: another scene's may be true for it.
    """
    same = (tokens[:, None, :] == tokens[None, :, :]).all(-1)  # [B, B]
    duplicate = same & ~torch.eye(len(tokens), dtype=torch.bool, device=tokens.device)
    logits = scale * image @ text.T  # [B, B] image -> text
    logits = logits.masked_fill(duplicate, float("-inf"))
    target = torch.arange(len(image), device=image.device)
    to_text = logits
    if negatives is not None:
        neg = scale * (image * negatives).sum(-1, keepdim=True)  # [B, 1]: each image against its own false caption
        if has_negative is not None:
            neg = neg.masked_fill(~has_negative.view(-1, 1), float("-inf"))
        to_text = torch.cat([logits, neg], dim=1)  # [B, B + 1]
    return (F.cross_entropy(to_text, target) + F.cross_entropy(logits.T, target)) / 2


class LabelSigmoidLoss(nn.Module):
    """Multi-positive sigmoid loss between images and the training label prompts (SigLIP-style).

    logits [B, L] = exp(t) * image @ labels^T + b; binary cross-entropy against 0/1 targets, summed
    over labels and averaged over images (SigLIP's normalisation). Unlike a softmax over captions,
    every label of a scene is a positive and every other *training* label a negative, so nothing is
    separable by colour or object count alone. t and b are the loss's own parameters, started as in
    SigLIP (t = log 10) with a bias at the label prior.
    """

    def __init__(self, prior: float = 0.05) -> None:
        super().__init__()
        self.log_t = nn.Parameter(torch.tensor(math.log(10.0)))
        self.bias = nn.Parameter(torch.tensor(math.log(prior / (1 - prior))))

    def forward(self, image: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        # The temperature scales the images before the product: the order the world CLIP was trained
        # with, so its recorded command reproduces the checkpoint bit for bit.
        return self.logit_loss(self.log_t.exp() * image @ labels.T + self.bias, targets)  # [B, L]

    @staticmethod
    def logit_loss(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """Binary cross-entropy of logits [B, L] against 0/1 targets: summed over labels, averaged over images."""
        bce = F.binary_cross_entropy_with_logits(logits, targets.float(), reduction="none")
        return bce.sum(-1).mean()


class PatchLabelLoss(LabelSigmoidLoss):
    """The label sigmoid loss scored where the object is: on patch tokens, with labels composed of words.

    A label's vector is the mean of its words' prompt embeddings ("red star" = ("red" + "star") / 2,
    `word_mix` [L, W]), and an image's logit for it is the best patch's cosine with that vector:
    logits [B, L] = exp(t) * max_p (patches[b, p] . mix @ words) + b. The loss is high unless one
    patch is both red and a star, so colour and shape are bound by place, not by a memorised string;
    an unseen pairing of two known words is scored the same way at test time
    (`sigrl.train.zeroshot`, "patch words"), with no text the training never saw.
    """

    def forward(self, patches: torch.Tensor, words: torch.Tensor, word_mix: torch.Tensor,  # type: ignore[override]
                targets: torch.Tensor) -> torch.Tensor:
        labels = word_mix @ words  # [L, D], not unit length: the mean of two unit vectors
        best = torch.einsum("bpd,ld->blp", patches, labels).amax(-1)  # [B, L]
        return self.logit_loss(self.log_t.exp() * best + self.bias, targets)
