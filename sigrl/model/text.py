"""Label embeddings H [N, D]: the frozen CLIP text encoder on one prompt per label (or per word)."""

from __future__ import annotations

from typing import Callable, Sequence

import open_clip
import torch
from torch import nn

from sigrl import words as words_module
from sigrl.errors import SigrlError


def make_prompts(labels: Sequence[str], template: str) -> list[str]:
    if not labels:
        raise SigrlError("the label set is empty")
    return [template.format(label=label) for label in labels]


def word_mix(labels: Sequence[str], words: Sequence[str]) -> torch.Tensor:
    """sigrl.words.word_mix as a tensor [L, W]."""
    return torch.from_numpy(words_module.word_mix(labels, words))


def _can_trim(clip: open_clip.CLIP) -> bool:
    # Trimming the context is exact only for a causal mask with end-of-text (argmax) pooling.
    return getattr(clip, "text_pool_type", None) == "argmax" and getattr(clip, "attn_mask", None) is not None


def encode_tokens(clip: open_clip.CLIP, tokens: torch.Tensor) -> torch.Tensor:
    """open_clip's encode_text (unnormalised), run on the shortest context that holds every prompt.

    With a causal mask, positions before the end-of-text token never attend to the padding after
    it, and pooling reads the end-of-text position, so dropping trailing padding columns changes
    nothing but the cost (a 13-token prompt instead of 77: several times faster).
    """
    if not _can_trim(clip):
        return clip.encode_text(tokens)
    length = int((tokens != 0).sum(dim=1).max().item())  # open_clip pads with id 0
    tokens = tokens[:, :length]  # [N, T]
    x = clip.token_embedding(tokens) + clip.positional_embedding[:length]
    x = clip.transformer(x, attn_mask=clip.attn_mask[:length, :length])
    x = clip.ln_final(x)  # [N, T, W]
    x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]  # end-of-text token
    proj = clip.text_projection
    return proj(x) if isinstance(proj, nn.Linear) else x @ proj  # [N, D]


@torch.no_grad()
def encode_labels(
    clip: open_clip.CLIP,
    tokenizer: Callable[[list[str]], torch.Tensor],
    labels: Sequence[str],
    template: str,
    batch_size: int = 256,
    compose: str = "prompt",
) -> torch.Tensor:
    """H [N, D] for the labels, in batches; the text encoder is frozen in every setting.
    compose "words": each label the mean of its words' normalised embeddings (TextConfig)."""
    if compose == "words":
        words, mix = words_module.split_words(labels)
        embeddings = encode_labels(clip, tokenizer, words, template, batch_size)  # [W, D]
        return torch.from_numpy(words_module.compose_words(embeddings.cpu().numpy(), mix)).to(embeddings.device)
    prompts = make_prompts(labels, template)
    device = clip.positional_embedding.device
    chunks = []
    for start in range(0, len(prompts), batch_size):
        tokens = tokenizer(prompts[start : start + batch_size]).to(device)
        chunks.append(encode_tokens(clip, tokens).float())
    return torch.cat(chunks)
