"""The one runner interface every backend implements: uint8 images + a label set -> scores.

A runner splits the work the way the export does: the label side (text encoder + GMC, once per
label set) and the image side (every batch). The label side is remembered per label set in memory
and, given a `LabelCache`, on disk, so repeated label sets cost no text-encoder work at all.

This module imports neither torch nor onnxruntime: the ONNX path must stay free of torch.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np

from sigrl.config import PreprocessConfig
from sigrl.errors import SigrlError
from sigrl.runtime.label_cache import LabelArrays, LabelCache
from sigrl.words import compose_words, split_words

log = logging.getLogger(__name__)

# The exported image graph can hold its [B, P, N, D] head tensors all at once; batches are split so
# that those stay near this many bytes (the PyTorch head bounds them itself by label chunks).
DEFAULT_HEAD_BUDGET = 1 << 30
# Float tensors of size [B, P, n, D] alive at once in the head (logits, softmax, product).
_LIVE_HEAD_TENSORS = 3
_MEMO_SIZE = 8  # label sets remembered in memory


@dataclass(frozen=True)
class HeadGeometry:
    """What bounds the head's memory: patches per image, feature width, bytes per element."""

    patches: int
    dim: int
    itemsize: int = 4

    @classmethod
    def from_arch(cls, arch: Mapping[str, Any], itemsize: int = 4) -> "HeadGeometry":
        """From an open_clip model config (the `arch` stored in checkpoints and manifests)."""
        vision = arch["vision_cfg"]
        size, patch = vision["image_size"], vision["patch_size"]
        size = size if isinstance(size, int) else size[0]
        patch = patch if isinstance(patch, int) else patch[0]
        return cls(patches=(size // patch) ** 2, dim=int(arch["embed_dim"]), itemsize=itemsize)

    def batch_for(self, n_labels: int, budget: int) -> int:
        per_image = _LIVE_HEAD_TENSORS * self.patches * max(1, n_labels) * self.dim * self.itemsize
        return max(1, budget // per_image)


class Runner(ABC):
    """Scores uint8 images [B, S, S, 3] against a label set; usable as a context manager.

    Subclasses set `backend` and implement `_encode_labels` (label side, float32) and `_score`
    (one batch that fits `max_batch`). `text_runs` counts label sets that went through the text
    encoder, so callers and tests can see that a cached label set cost no text work.
    """

    backend: str = ""

    def __init__(
        self,
        *,
        name: str,
        precision: str,
        device: str,
        preprocess: PreprocessConfig,
        prompt: str,
        compose: str = "prompt",
        label_cache: LabelCache | None = None,
        head_budget: int = DEFAULT_HEAD_BUDGET,
    ):
        self._name, self._precision, self._device = name, precision, device
        self._preprocess, self._prompt, self._compose = preprocess, prompt, compose
        self.label_cache = label_cache
        self.head_budget = head_budget
        self.text_runs = 0
        # A bar while a large label set is encoded: None on a terminal only, False never, True always.
        self.progress: bool | None = None
        self.reason = ""  # why this runner was chosen (set by open_runner)
        self._memo: OrderedDict[tuple[str, ...], LabelArrays] = OrderedDict()
        self._closed = False

    # -- description ---------------------------------------------------------------------
    @property
    def name(self) -> str:
        return self._name

    @property
    def precision(self) -> str:
        return self._precision

    @property
    def device(self) -> str:
        return self._device

    @property
    def preprocess(self) -> PreprocessConfig:
        return self._preprocess

    @property
    def prompt(self) -> str:
        return self._prompt

    def set_prompt(self, template: str) -> None:
        """Prompt labels with `template` instead of the model's own (the label cache keys on it)."""
        if "{label}" not in template:
            raise SigrlError(f"a prompt template must contain {{label}}, e.g. 'a photo of a {{label}}'; got {template!r}")
        if template != self._prompt:
            self._prompt = template
            self._memo.clear()

    @property
    @abstractmethod
    def model_hash(self) -> str:
        """Identifies the weights; part of the label cache key."""

    @abstractmethod
    def max_batch(self, n_labels: int) -> int:
        """The largest batch scored in one call for n_labels labels (keeps the head's memory bounded)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, {self.backend}/{self.device}/{self.precision})"

    # -- work ----------------------------------------------------------------------------
    @abstractmethod
    def _encode_labels(self, labels: list[str]) -> LabelArrays:
        """Run the text side on the label set (no caching here)."""

    def _text_side(self, labels: list[str]) -> LabelArrays:
        """The label side of a set: its prompts through the text side, or (the model's compose is
        "words") its distinct words' prompts, averaged back into labels. The model config allows
        words only where the label side is the identity, so composing its outputs is exact."""
        if self._compose == "prompt":
            return self._encode_labels(labels)
        words, mix = split_words(labels)
        side = self._encode_labels(words)  # [W, D]
        return LabelArrays(embeddings=compose_words(side.embeddings, mix), context=compose_words(side.context, mix))

    @abstractmethod
    def _score(self, images: np.ndarray, side: LabelArrays) -> np.ndarray:
        """Scores float32 [b, N] for one batch of at most max_batch(N) images.

        Device copies of the label side may be kept between calls, keyed by the `side` object
        itself: a new label set or prompt always comes as a new object.
        """

    def label_side(self, labels: Sequence[str]) -> LabelArrays:
        """The label-side tensors: from memory, else the disk cache, else the text encoder."""
        key = _label_key(labels)
        side = self._memo.get(key)
        if side is not None:
            self._memo.move_to_end(key)
            return side
        if self.label_cache is not None:
            side = self.label_cache.get(self.model_hash, key, self.prompt)
        if side is None:
            log.info("%s: encoding %d labels", self.name, len(key))
            side = self._text_side(list(key))
            self.text_runs += 1
            if self.label_cache is not None:
                self.label_cache.put(self.model_hash, key, self.prompt, side)
        self._memo[key] = side
        if len(self._memo) > _MEMO_SIZE:
            self._memo.popitem(last=False)
        return side

    def infer(self, images: np.ndarray, labels: Sequence[str]) -> np.ndarray:
        """Scores float32 [B, N] for uint8 images [B, S, S, 3] (decoded, resized, cropped)."""
        if self._closed:
            raise SigrlError(f"{self!r} is closed; open a new runner")
        self._check_images(images)
        key = _label_key(labels)
        side = self.label_side(key)
        step = self.max_batch(len(key))
        if images.shape[0] <= step:
            return np.asarray(self._score(images, side), dtype=np.float32)
        parts = [self._score(images[i : i + step], side) for i in range(0, images.shape[0], step)]
        return np.concatenate(parts).astype(np.float32, copy=False)  # [B, N]

    def _check_images(self, images: np.ndarray) -> None:
        size = self.preprocess.image_size
        if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
            got = str(images.dtype) if isinstance(images, np.ndarray) else type(images).__name__
            raise SigrlError(f"images must be a uint8 numpy array [B, {size}, {size}, 3], got {got}")
        if images.ndim != 4 or images.shape[1:] != (size, size, 3) or images.shape[0] == 0:
            raise SigrlError(
                f"images must have shape [B, {size}, {size}, 3] for {self.name} (its preprocessing), "
                f"got {list(images.shape)}"
            )

    # -- lifetime ------------------------------------------------------------------------
    def close(self) -> None:
        """Release sessions, engines and device memory; idempotent."""
        self._memo.clear()
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    def __enter__(self) -> "Runner":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _label_key(labels: Sequence[str]) -> tuple[str, ...]:
    key = tuple(labels)
    if not key:
        raise SigrlError("the label set is empty; pass at least one label")
    if not all(isinstance(label, str) and label for label in key):
        raise SigrlError("labels must be non-empty strings")
    return key
