"""The ONNX Runtime runner: an export directory's graphs on the CPU or CUDA execution provider.

Nothing here imports torch. The label side comes from the label cache when it can; on a miss the
prompts are tokenised with sigrl.runtime.tokenizer, a torch-free implementation of CLIP's BPE giving
open_clip's ids (tests/runtime checks both in subprocesses, with a warm and a cold label cache).

Sessions run with graph optimisation level ALL and as many intra-op threads as this process may
use. Those threads spin-wait between calls, which lowers latency when inference is all that runs;
with `shared_cpu` (other busy threads on the same cores, such as sigrl tag's decode pool) they
sleep instead, which gave 9-12 % more images/s on 12 MP photos on 2 cores (`--decode checked`
and `exact`). On CUDA the session is checked to really run on CUDAExecutionProvider (ONNX Runtime quietly
falls back to the CPU when the CUDA libraries do not load), and inputs are bound with IO binding:
the label-side tensors are copied to the device once per label set, images once per batch.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from sigrl.machine import usable_cores
from sigrl.errors import SigrlError
from sigrl.optional import require
from sigrl.runtime.base import DEFAULT_HEAD_BUDGET, HeadGeometry, Runner
from sigrl.runtime.label_cache import LabelArrays, LabelCache
from sigrl.runtime.manifest import ExportManifest, image_feed, read_manifest
from sigrl.runtime.progress import LabelProgress

log = logging.getLogger(__name__)

PRECISIONS = ("fp32", "int8", "fp16")
PROVIDERS = {"cpu": "CPUExecutionProvider", "cuda": "CUDAExecutionProvider"}
INSTALL_HINT = "pip install 'sigrl[onnx]' (onnxruntime-gpu; plain onnxruntime also works on CPU)"


def import_onnxruntime() -> Any:
    return require("onnxruntime", "the onnx backend needs onnxruntime ({err}); install it with: " + INSTALL_HINT)


def session_options(ort: Any, threads: int | None = None, shared_cpu: bool = False) -> Any:
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.intra_op_num_threads = threads or usable_cores()
    if shared_cpu:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def check_provider(active: Sequence[str], device: str, path: Path) -> None:
    """Raise unless the session's first provider is the one asked for (no silent CPU fallback)."""
    wanted = PROVIDERS[device]
    if not active or active[0] != wanted:
        raise SigrlError(
            f"{path}: ONNX Runtime runs this graph on {', '.join(active) or 'no provider'}, not {wanted}; "
            "check the CUDA/cuDNN libraries onnxruntime-gpu needs (see onnxruntime's install matrix) "
            "or use --device cpu"
        )


def open_session(ort: Any, path: Path, device: str, threads: int | None = None, shared_cpu: bool = False) -> Any:
    """An inference session on `device`, verified to run there."""
    if device not in PROVIDERS:
        raise SigrlError(f"onnx device must be one of {sorted(PROVIDERS)}, got {device!r}")
    wanted = PROVIDERS[device]
    if wanted not in ort.get_available_providers():
        raise SigrlError(
            f"this onnxruntime build has no {wanted} (has: {', '.join(ort.get_available_providers())}); "
            "install onnxruntime-gpu for --device cuda"
        )
    providers = [wanted] if device == "cpu" else [wanted, "CPUExecutionProvider"]
    try:
        session = ort.InferenceSession(str(path), sess_options=session_options(ort, threads, shared_cpu),
                                       providers=providers)
    except Exception as err:  # onnxruntime raises its own exception types (Fail, InvalidGraph, ...)
        raise SigrlError(f"{path}: ONNX Runtime cannot load this graph ({err}); re-export the model") from None
    check_provider(session.get_providers(), device, path)
    return session


def tokenize(prompts: list[str], arch: dict[str, Any], context_length: int) -> np.ndarray:
    """Token ids int64 [N, T], trimmed to the longest prompt."""
    from sigrl.runtime.tokenizer import clip_tokenizer  # ftfy and regex: only on a label-cache miss

    if "hf_tokenizer_name" in arch.get("text_cfg", {}):
        raise SigrlError("Hugging Face tokenizers are not supported; use a CLIP with open_clip's BPE tokenizer")
    ids = clip_tokenizer()(prompts, context_length)  # [N, C]
    length = int((ids != 0).sum(axis=1).max())  # open_clip pads with id 0; trimming is exact
    return np.ascontiguousarray(ids[:, :length])


class OnnxTextSide:
    """The exported text graph on ONNX Runtime: labels -> LabelArrays. Opened on first use."""

    def __init__(self, manifest: ExportManifest, device: str = "cpu", threads: int | None = None, shared_cpu: bool = False):
        self.manifest, self.device, self.threads, self.shared_cpu = manifest, device, threads, shared_cpu
        self._session: Any = None

    def encode(self, labels: Sequence[str], prompt: str, progress: bool | None = None) -> LabelArrays:
        # The text graph loops over label blocks inside itself (export/onnx_text.py): one call, so
        # a large set shows the time elapsed rather than blocks done.
        with LabelProgress(len(labels), 1, self.manifest.name, progress) as bar, bar.waiting("text graph"):
            return self._encode(labels, prompt)

    def _encode(self, labels: Sequence[str], prompt: str) -> LabelArrays:
        if self._session is None:
            self._session = open_session(import_onnxruntime(), self.manifest.text_graph(), self.device, self.threads,
                                         self.shared_cpu)
        prompts = [prompt.format(label=label) for label in labels]
        tokens = tokenize(prompts, dict(self.manifest.arch), self.manifest.context_length)  # [N, T]
        fixed = self._session.get_inputs()[0].shape[1]
        if isinstance(fixed, int) and fixed != tokens.shape[1]:
            # A graph traced at a fixed context: pad with id 0 (exact: causal mask, end-of-text pooling).
            padded = np.zeros((tokens.shape[0], fixed), dtype=np.int64)
            padded[:, : tokens.shape[1]] = tokens[:, :fixed]
            tokens = padded
        embeddings, context = self._session.run(["embeddings", "context"], {"tokens": tokens})
        return LabelArrays(embeddings=np.asarray(embeddings, np.float32), context=np.asarray(context, np.float32))

    def close(self) -> None:
        self._session = None


class OnnxRunner(Runner):
    backend = "onnx"

    def __init__(
        self,
        export_dir: str | Path,
        precision: str = "fp32",
        device: str = "cpu",
        label_cache: LabelCache | None = None,
        threads: int | None = None,
        head_budget: int = DEFAULT_HEAD_BUDGET,
        shared_cpu: bool = False,
    ):
        if precision not in PRECISIONS:
            raise SigrlError(f"onnx precision must be one of {PRECISIONS}, got {precision!r}")
        if device not in PROVIDERS:
            raise SigrlError(f"onnx device must be one of {sorted(PROVIDERS)}, got {device!r}")
        if precision == "fp16" and device != "cuda":
            raise SigrlError("the fp16 ONNX graph is meant for CUDA; on CPU use --precision int8 or fp32")
        manifest = read_manifest(export_dir)
        super().__init__(
            name=manifest.name,
            precision=precision,
            device=device,
            preprocess=manifest.preprocess,
            prompt=manifest.prompt,
            compose=manifest.compose,
            label_cache=label_cache,
            head_budget=head_budget,
        )
        self.manifest = manifest
        self._inputs = manifest.image_inputs
        self.graph_path = manifest.image_graph(precision)
        ort = import_onnxruntime()
        self.session = open_session(ort, self.graph_path, device, threads, shared_cpu)
        self._ort = ort
        self._text = OnnxTextSide(manifest, device, threads, shared_cpu)
        self._geometry = HeadGeometry.from_arch(manifest.arch)
        self._bound: tuple[LabelArrays, Any, Any] | None = None  # label tensors on the GPU

    @property
    def model_hash(self) -> str:
        return self.manifest.model_hash or f"export:{self.manifest.directory.resolve()}"

    @property
    def providers(self) -> list[str]:
        return list(self.session.get_providers())

    def max_batch(self, n_labels: int) -> int:
        # One exported graph holds the head's [B, P, N, D] tensors whole: bound B * N per call.
        return self._geometry.batch_for(n_labels, self.head_budget)

    def _encode_labels(self, labels: list[str]) -> LabelArrays:
        return self._text.encode(labels, self.prompt, self.progress)

    def _score(self, images: np.ndarray, side: LabelArrays) -> np.ndarray:
        images = np.ascontiguousarray(images)
        if self.device == "cpu":
            feed = image_feed(self._inputs, images, side.embeddings, side.context)
            return self.session.run(["scores"], feed)[0]
        return self._score_bound(images, side)

    def _score_bound(self, images: np.ndarray, side: LabelArrays) -> np.ndarray:
        if self._bound is None or self._bound[0] is not side:
            to_gpu = self._ort.OrtValue.ortvalue_from_numpy
            self._bound = (side, to_gpu(side.embeddings, "cuda", 0), to_gpu(side.context, "cuda", 0))
        binding = self.session.io_binding()
        binding.bind_cpu_input("images", images)  # uint8: a quarter of the float traffic
        binding.bind_ortvalue_input("embeddings", self._bound[1])
        if "context" in self._inputs:
            binding.bind_ortvalue_input("context", self._bound[2])
        binding.bind_output("scores", "cuda")
        self.session.run_with_iobinding(binding)
        return binding.copy_outputs_to_cpu()[0]

    def close(self) -> None:
        self._bound = None
        self._text.close()
        self.session = None
        super().close()
