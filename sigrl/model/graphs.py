"""The model split along its deployment seam: a text graph and an image graph.

Text graph: token ids [N, T] -> label embeddings H [N, D] and the head's label-side context [N, D].
It runs once per label set. Image graph: uint8 images [B, S, S, 3] + the two label-side tensors ->
scores [B, N]. Images enter as decoded uint8 (channels last) and are normalised inside the graph:
4x less host->device traffic than float input, and no preprocessing copy on the host.

These modules are what the exporters trace and what the PyTorch runner executes, so every backend
runs the same computation on the same inputs.
"""

from __future__ import annotations

import torch
from torch import nn

from sigrl.model.sigrl import LabelSide, SigRL
from sigrl.model.text import encode_tokens


class TextGraph(nn.Module):
    def __init__(self, model: SigRL):
        super().__init__()
        self.model = model
        # A fresh wrapper would start in training mode, and exporters restore the wrapper's mode
        # recursively afterwards: inherit the model's mode so exporting never turns dropout on.
        self.train(model.training)

    def forward(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        embeddings = encode_tokens(self.model.clip, tokens).float()  # [N, D]
        side = self.model.label_side(embeddings)
        return side.embeddings, side.context


class TokenEncoder(nn.Module):
    """The first half of the text graph: token ids [n, T] -> H [n, D], one row per label, so any
    block of labels can be encoded on its own (the exported text graph loops over such blocks)."""

    def __init__(self, model: SigRL):
        super().__init__()
        self.model = model
        self.train(model.training)  # see TextGraph

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return encode_tokens(self.model.clip, tokens).float()  # [n, D]


class LabelSideGraph(nn.Module):
    """The second half: H [N, D] -> the head's label-side context [N, D] (GMC over the whole set)."""

    def __init__(self, model: SigRL):
        super().__init__()
        self.model = model
        self.train(model.training)  # see TextGraph

    def forward(self, embeddings: torch.Tensor) -> torch.Tensor:
        return self.model.label_side(embeddings).context


class ImageGraph(nn.Module):
    def __init__(self, model: SigRL):
        super().__init__()
        self.model = model
        self.train(model.training)  # see TextGraph

    def forward(self, images: torch.Tensor, embeddings: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        x = self.model.normalize_uint8(images)  # [B, 3, S, S]
        return self.model(x, LabelSide(embeddings=embeddings, context=context))  # [B, N]


def tokenize_labels(model: SigRL, labels: list[str], prompt: str | None = None) -> torch.Tensor:
    """Token ids [N, T] of the label prompts (the model's template unless `prompt` is given),
    trimmed to the longest prompt (exact, see text.py)."""
    from sigrl.model.text import make_prompts

    tokens = model.tokenizer(make_prompts(labels, prompt or model.config.text.prompt))
    length = int((tokens != 0).sum(dim=1).max().item())
    return tokens[:, :length]
