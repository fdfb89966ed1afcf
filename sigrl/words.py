"""Labels composed of their words ("red star" = the mean of "red" and "star"), in numpy.

The one place that splits labels into words and averages word embeddings back into labels: the
PyTorch model, the pretraining losses, the zero-shot probe and the exported runtimes (which must
not import torch) all use it, so every backend composes a label the same way.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from sigrl.errors import SigrlError


def word_mix(labels: Sequence[str], words: Sequence[str]) -> np.ndarray:
    """float32 [L, W]: row i averages the words of labels[i] ("red star" -> 1/2 "red" + 1/2 "star"),
    so `word_mix @ word_embeddings` composes a label from its words without ever encoding the label."""
    column = {w: j for j, w in enumerate(words)}
    mix = np.zeros((len(labels), len(words)), dtype=np.float32)
    for i, lab in enumerate(labels):
        parts = lab.split()
        missing = [w for w in parts if w not in column]
        if missing or not parts:
            raise SigrlError(f"label {lab!r} has words {missing} outside the word list (the words of the training labels)"
                             if missing else f"label {lab!r} has no words")
        mix[i, [column[w] for w in parts]] = 1.0 / len(parts)
    return mix


def split_words(labels: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """The distinct words of `labels`, sorted, and the mix [L, W] that averages them back into labels."""
    if not labels:
        raise SigrlError("the label set is empty")
    words = sorted({w for lab in labels for w in lab.split()})
    return words, word_mix(labels, words)


def compose_words(word_embeddings: np.ndarray, mix: np.ndarray) -> np.ndarray:
    """float32 labels [L, D]: the mean of their words' L2-normalised embeddings [W, D] (not unit length)."""
    norms = np.linalg.norm(word_embeddings, axis=-1, keepdims=True)
    unit = word_embeddings / np.maximum(norms, 1e-12)  # torch.nn.functional.normalize's eps
    return (mix @ unit).astype(np.float32, copy=False)
