"""The PyTorch runner: the same TextGraph / ImageGraph modules the exporters trace, run eagerly.

Precision applies to the image side only (autocast); the label side is always computed in fp32,
once per label set, exactly as the exported text graph does. fp16 autocast on CPU is slow and
poorly supported, so it is refused there (bf16 is the CPU reduced precision).
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch

from sigrl.checkpoint import file_sha256
from sigrl.errors import SigrlError
from sigrl.model.graphs import ImageGraph, TextGraph, TokenEncoder, tokenize_labels
from sigrl.model.sigrl import SigRL
from sigrl.runtime.base import DEFAULT_HEAD_BUDGET, HeadGeometry, Runner
from sigrl.runtime.label_cache import LabelArrays, LabelCache
from sigrl.runtime.progress import LabelProgress
from sigrl.runtime.staging import HostStaging

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def weights_sha256(model: SigRL) -> str:
    """A hash of the config and every weight, for models that did not come from a file."""
    digest = hashlib.sha256(repr(model.config.to_dict()).encode("utf-8"))
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().to("cpu").contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode("utf-8"))
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()


def _resolve_device(device: str) -> str:
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise SigrlError(f"device must be cpu, cuda or auto, got {device!r}")
    if device == "cuda" and not torch.cuda.is_available():
        raise SigrlError("device cuda was asked for but torch sees no CUDA GPU; use --device cpu")
    return device


class TorchRunner(Runner):
    backend = "torch"

    def __init__(
        self,
        model_or_spec: SigRL | str | Path,
        device: str = "cpu",
        precision: str = "fp32",
        label_cache: LabelCache | None = None,
        head_budget: int = DEFAULT_HEAD_BUDGET,
    ):
        if precision not in PRECISIONS:
            raise SigrlError(f"torch precision must be one of {PRECISIONS}, got {precision!r}")
        device = _resolve_device(device)
        if precision == "fp16" and device != "cuda":
            raise SigrlError("fp16 needs a CUDA device with the torch backend; on CPU use --precision bf16 or fp32")
        self._source_file: Path | None = None
        if isinstance(model_or_spec, SigRL):
            model = model_or_spec
        else:
            from sigrl.model.factory import open_model

            model = open_model(model_or_spec)
            if str(model_or_spec).endswith(".safetensors"):
                self._source_file = Path(model_or_spec)
        model = model.eval().to(device)
        super().__init__(
            name=model.config.name,
            precision=precision,
            device=device,
            preprocess=model.config.preprocess,
            prompt=model.config.text.prompt,
            compose=model.config.text.compose,
            label_cache=label_cache,
            head_budget=head_budget,
        )
        self.model = model
        # The wrappers are modules too: eval() on them keeps an exporter's train/eval toggling
        # (which recurses into the shared model) from leaving dropout on.
        self._text, self._image = TextGraph(model).eval(), ImageGraph(model).eval()
        self._encoder = TokenEncoder(model).eval()
        self._geometry = HeadGeometry.from_arch(model.arch, itemsize=4 if precision == "fp32" else 2)
        self._hash: str | None = None
        self._on_device: tuple[LabelArrays, torch.Tensor, torch.Tensor] | None = None
        # CPU-decoded batches reach a GPU through one reused pinned buffer (sigrl.runtime.staging).
        self._staging = HostStaging(device) if device == "cuda" else None

    @property
    def model_hash(self) -> str:
        # Computed on first use: only the label cache needs it, and hashing a ViT-B takes a second.
        if self._hash is None:
            self._hash = file_sha256(self._source_file) if self._source_file else weights_sha256(self.model)
        return self._hash

    def max_batch(self, n_labels: int) -> int:
        # The PyTorch head runs over label chunks, so its live tensors scale with the chunk size.
        chunk = self.model.config.head.label_chunk
        return self._geometry.batch_for(min(n_labels, chunk or n_labels), self.head_budget)

    @torch.inference_mode()
    def _encode_labels(self, labels: list[str]) -> LabelArrays:
        # TextGraph's computation in blocks of labels (the text encoder is per label; GMC chunks its
        # own rows), so memory stays linear in N and a large set shows progress.
        tokens = tokenize_labels(self.model, labels, self.prompt).to(self.device)  # [N, T]
        n, block = tokens.shape[0], self.model.config.text.batch_size
        passes = 1 + (self.model.gmc.layers if self.model.gmc is not None else 0)
        with LabelProgress(n, passes, self.name, self.progress) as progress:
            parts = []
            for start in range(0, n, block):
                parts.append(self._encoder(tokens[start : start + block]))  # fp32: no autocast here
                progress.update(min(block, n - start))
            embeddings = torch.cat(parts)  # [N, D]
            context = self.model.label_side(embeddings, progress.update).context
        return LabelArrays(embeddings=embeddings.float().cpu().numpy(), context=context.float().cpu().numpy())

    def _device_side(self, side: LabelArrays) -> tuple[torch.Tensor, torch.Tensor]:
        if self._on_device is None or self._on_device[0] is not side:  # one label set on the device
            embeddings, context = (torch.from_numpy(a).to(self.device) for a in (side.embeddings, side.context))
            self._on_device = (side, embeddings, context)
        return self._on_device[1], self._on_device[2]

    # Batches may come as uint8 tensors already on the device (sigrl.tagging.scoring.device_pipeline).
    accepts_device_tensors = True

    def _check_images(self, images: Any) -> None:
        if not isinstance(images, torch.Tensor):
            return super()._check_images(images)
        size = self.preprocess.image_size
        if images.dtype != torch.uint8 or images.ndim != 4 or tuple(images.shape[1:]) != (size, size, 3) or images.shape[0] == 0:
            raise SigrlError(f"image tensors must be uint8 [B, {size}, {size}, 3] for {self.name}, "
                             f"got {images.dtype} {list(images.shape)}")
        if images.device.type != torch.device(self.device).type:
            raise SigrlError(f"image tensors must be on {self.device}, got {images.device}")

    @torch.inference_mode()
    def _score(self, images: np.ndarray | torch.Tensor, side: LabelArrays) -> np.ndarray:
        if isinstance(images, torch.Tensor):
            x = images  # uint8 [b, S, S, 3], on the device already
        elif self._staging is not None:
            x = self._staging.upload(images)  # uint8 [b, S, S, 3], through pinned memory
        else:
            if not images.flags.writeable:  # e.g. np.asarray(PIL image); torch warns on read-only arrays
                images = images.copy()
            x = torch.from_numpy(images).to(self.device, non_blocking=True)  # uint8 [b, S, S, 3]
        embeddings, context = self._device_side(side)
        if self.precision == "fp32":
            scores = self._image(x, embeddings, context)
        else:
            with torch.autocast(device_type=self.device, dtype=_DTYPES[self.precision]):
                scores = self._image(x, embeddings, context)
        return scores.float().cpu().numpy()  # [b, N]

    def describe(self) -> dict[str, Any]:
        return {"backend": self.backend, "device": self.device, "precision": self.precision, "torch": torch.__version__}

    def close(self) -> None:
        self._on_device = None
        if self._staging is not None:
            self._staging.close()
        super().close()
