"""The SigRL model: one module for every variant (clip, patch, mkt, sigrl and the ablations).

Data flow: images -> (g [B, D], F [B, P, D]) ; labels -> LabelSide (H [N, D], context [N, D]) ;
both -> scores [B, N]. The label side depends only on the label set, so inference computes it once
per set and reuses it for every batch (the export splits the model along the same line).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Sequence

import open_clip
import torch
from torch import nn

from sigrl.config import ModelConfig
from sigrl.model.backbone import build_tokenizer, encode_image_features
from sigrl.model.gmc import GMC
from sigrl.model.scoring import combine, global_scores, local_scores
from sigrl.model.svfr import SVFR
from sigrl.model.text import encode_labels


@dataclass
class LabelSide:
    """Everything the image side needs about a label set.

    embeddings: H [N, D], the text encoder's label embeddings.
    context: the label-side constant of the head [N, D]: W1_g GMC(H) with SVFR on; GMC(H), the
    embeddings local scores are taken against, with SVFR off; H itself for clip / patch / mkt.
    """

    embeddings: torch.Tensor
    context: torch.Tensor

    def __len__(self) -> int:
        return self.embeddings.shape[0]


class SigRL(nn.Module):
    def __init__(self, config: ModelConfig, clip: open_clip.CLIP, arch: dict[str, Any]):
        super().__init__()
        self.config = config
        self.arch = arch
        self.clip = clip
        head = config.head
        dim = clip.text_projection.shape[-1] if isinstance(clip.text_projection, torch.Tensor) else clip.text_projection.out_features
        self.gmc = GMC(dim, head.gmc_heads, head.gmc_head_dim, head.gmc_dropout, head.leaky_slope,
                       head.gmc_residual) if head.uses_gmc else None
        self.svfr = SVFR(dim) if head.uses_svfr else None
        pre = config.preprocess
        # Normalisation lives in the model so that inputs can travel as uint8 (4x less traffic).
        self.register_buffer("pixel_mean", torch.tensor(pre.mean).view(1, 3, 1, 1) * 255, persistent=False)
        self.register_buffer("pixel_std", torch.tensor(pre.std).view(1, 3, 1, 1) * 255, persistent=False)
        self._tokenizer = None

    @property
    def dim(self) -> int:
        return self.clip.visual.proj.shape[1]

    # -- image side ------------------------------------------------------------------------
    def normalize_uint8(self, images: torch.Tensor) -> torch.Tensor:
        """uint8 [B, S, S, 3] (as decoded) -> normalised float [B, 3, S, S]."""
        x = images.permute(0, 3, 1, 2).to(self.pixel_mean.dtype)
        return (x - self.pixel_mean) / self.pixel_std

    def encode_image(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised images [B, 3, S, S] -> global g [B, D] and patch features F [B, P, D]."""
        return encode_image_features(self.clip.visual, images)

    # -- label side ------------------------------------------------------------------------
    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = build_tokenizer(self.arch)
        return self._tokenizer

    def embed_labels(self, labels: Sequence[str]) -> torch.Tensor:
        """H [N, D] for a label set (frozen text encoder, no gradient)."""
        text = self.config.text
        return encode_labels(self.clip, self.tokenizer, labels, text.prompt, text.batch_size, text.compose)

    def label_side(self, embeddings: torch.Tensor, progress: Callable[[int], None] | None = None) -> LabelSide:
        """The label-side tensors from H; GMC runs over exactly this label set. `progress(rows)`
        reports GMC's blocks of query rows (GMC.layers passes over the N labels)."""
        context = embeddings
        if self.gmc is not None:
            context = self.gmc(embeddings, progress)  # Hg [N, D]
        if self.svfr is not None:
            context = self.svfr.label_context(context)  # W1_g Hg [N, D]
        return LabelSide(embeddings=embeddings, context=context)

    def encode_labels(self, labels: Sequence[str]) -> LabelSide:
        return self.label_side(self.embed_labels(labels))

    # -- scoring ---------------------------------------------------------------------------
    def score_features(self, g: torch.Tensor, feats: torch.Tensor, labels: LabelSide) -> torch.Tensor:
        """Scores [B, N] from image features and a label side."""
        head = self.config.head
        h = labels.embeddings
        glob = global_scores(g, h)
        if head.variant == "clip":
            return glob
        if head.variant == "patch":  # where the object is: the best patch alone
            return local_scores(feats, h, 1)
        if self.svfr is not None:
            patches, targets = self.svfr(feats, h, labels.context, head.label_chunk), h
        else:  # mkt, or SigRL without SVFR: raw patches against H (or against GMC's Hg)
            patches, targets = feats, labels.context
        return combine(local_scores(patches, targets, head.topk), glob)

    def forward(self, images: torch.Tensor, labels: LabelSide) -> torch.Tensor:
        """Normalised images [B, 3, S, S] and a label side -> scores [B, N]."""
        g, feats = self.encode_image(images)
        return self.score_features(g, feats, labels)
