"""A convolutional stem for open_clip's ViT: strided 3x3 convs in place of the one patch convolution.

A ViT's patch embedding is a single linear map of each PxP patch. On the world's 64 px scenes that
map learned colour and no shape in every budget measured (docs/world.md): an object of radius 5-16 px
straddles 2-4 patches, and one linear map per patch cannot build the edge and corner detectors that
shape needs. A few strided 3x3 convolutions with batch norm and ReLU can ("Early Convolutions Help
Transformers See Better", Xiao et al., 2021). The stem ends on the same grid and width as the patch
convolution it replaces, so the transformer, its CLS token and everything SigRL builds on the patch
tokens (SVFR, top-k local scores, the export split) are unchanged.

An architecture asks for it with a top-level key in its open_clip config dict:
    "conv_stem": {"channels": [32, 64, 128]}
one stride-2 conv per entry (their number is log2 of the patch size), then a 1x1 conv to the width.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import torch
from torch import nn

from sigrl.errors import SigrlError

STEM_KEY = "conv_stem"


class ConvStem(nn.Module):
    """[B, 3, S, S] -> [B, width, S/P, S/P], the output shape of a patch convolution of stride P."""

    def __init__(self, channels: Sequence[int], width: int) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for c_out in channels:
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
            c_in = c_out
        layers.append(nn.Conv2d(c_in, width, 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def train(self, mode: bool = True) -> "ConvStem":
        # A frozen stem (SigRL fine-tuning trains only the last blocks) keeps its batch-norm
        # statistics: model.train() on the whole model must not drift them away from what the
        # frozen distillation teacher and the exported graph use.
        trainable = any(p.requires_grad for p in self.parameters())
        return super().train(mode and trainable)


def stem_channels(spec: Mapping[str, Any], patch_size: int) -> list[int]:
    channels = [int(c) for c in spec.get("channels", ())]
    if not channels or 2 ** len(channels) != patch_size:
        raise SigrlError(
            f"conv_stem needs one stride-2 conv per halving of the patch size: patch {patch_size} takes "
            f"{max(patch_size.bit_length() - 1, 0)} channel counts, got {channels}"
        )
    return channels


def install_conv_stem(visual: nn.Module, spec: Mapping[str, Any]) -> None:
    """Replace `visual.conv1` (open_clip's patch convolution) by a ConvStem of the same output grid."""
    patch = visual.conv1.kernel_size[0]
    visual.conv1 = ConvStem(stem_channels(spec, patch), visual.conv1.out_channels)
