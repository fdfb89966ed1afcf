"""The TensorRT runner: a serialized engine from `sigrl export --format trt`, on one CUDA GPU.

Written against the TensorRT 10 Python API (name-based I/O: `set_input_shape`,
`set_tensor_address`, `execute_async_v3`; the binding-index API was removed in 10.0). TensorRT is
imported only when a runner is created. Device buffers are torch CUDA tensors (torch is a core
dependency, and its caching allocator makes per-batch buffers cheap); the engine runs on a
dedicated CUDA stream that the host waits on once per batch.

An engine only runs on the GPU model and TensorRT version it was built with: the sidecar JSON the
exporter writes next to it records both, and a mismatch is reported before deserializing.
The label side runs the export's text graph on ONNX Runtime (CPU), once per label set.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from sigrl.errors import SigrlError
from sigrl.optional import require
from sigrl.runtime.base import DEFAULT_HEAD_BUDGET, HeadGeometry, Runner
from sigrl.runtime.label_cache import LabelArrays, LabelCache
from sigrl.runtime.manifest import ExportManifest, image_feed, is_export_dir, read_manifest

log = logging.getLogger(__name__)

INSTALL_HINT = "pip install 'sigrl[trt]' (tensorrt>=10) on a machine with an NVIDIA GPU and driver"
OUTPUT = "scores"


def import_tensorrt() -> Any:
    return require("tensorrt", "the trt backend needs TensorRT ({err}); install it with: " + INSTALL_HINT)


def _first(data: Mapping[str, Any], *keys: str) -> Any:
    return next((data[k] for k in keys if data.get(k) is not None), None)


def check_sidecar(sidecar: Mapping[str, Any], path: Path, gpu_name: str, trt_version: str) -> None:
    """Raise unless the engine was built for this GPU model and this TensorRT version."""
    built_gpu = _first(sidecar, "gpu", "gpu_name")
    built_trt = _first(sidecar, "tensorrt", "tensorrt_version", "trt_version")  # export/tensorrt.py writes "tensorrt"
    if built_gpu is None or built_trt is None:
        raise SigrlError(
            f"{path}: sidecar lacks the GPU name or TensorRT version; rebuild with `sigrl export --format trt`"
        )
    if str(built_gpu) != gpu_name:
        raise SigrlError(
            f"{path}: engine was built for {built_gpu}, this GPU is {gpu_name}; TensorRT engines are specific to "
            "the GPU model: rebuild it here with `sigrl export --format trt`"
        )
    if str(built_trt) != trt_version:
        raise SigrlError(
            f"{path}: engine was built with TensorRT {built_trt}, this is TensorRT {trt_version}; rebuild it with "
            "`sigrl export --format trt` (or install the matching tensorrt)"
        )


def read_sidecar(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise SigrlError(f"{path}: engine sidecar missing; rebuild with `sigrl export --format trt`") from None
    except json.JSONDecodeError as err:
        raise SigrlError(f"{path}: engine sidecar is not valid JSON ({err}); rebuild the engine") from None


def check_labels_in_profile(n_labels: int, low: int, high: int, engine: Path) -> None:
    if not low <= n_labels <= high:
        raise SigrlError(
            f"{engine}: its optimisation profile covers {low}..{high} labels, got {n_labels}; rebuild with "
            f"`sigrl export --format trt --labels MIN,OPT,MAX` covering {n_labels}"
        )


def _resolve(target: str | Path, precision: str) -> tuple[ExportManifest, Path, Path]:
    """(manifest, engine file, sidecar) from an export directory or an engine file inside one."""
    target = Path(target)
    if target.is_dir():
        manifest = read_manifest(target)
        return (manifest, *manifest.engine(precision))
    if not target.is_file():
        raise SigrlError(f"{target}: no such engine file or export directory")
    if not is_export_dir(target.parent):
        raise SigrlError(f"{target}: an engine needs its export directory (manifest.json, text.onnx) beside it")
    manifest = read_manifest(target.parent)
    for entry in manifest.engines().values():
        if entry.get("file") == target.name:
            return manifest, target, target.parent / entry["sidecar"]
    return manifest, target, target.with_suffix(".json")


class TrtRunner(Runner):
    backend = "trt"

    def __init__(
        self,
        target: str | Path,
        precision: str = "fp16",
        label_cache: LabelCache | None = None,
        head_budget: int = DEFAULT_HEAD_BUDGET,
    ):
        trt = import_tensorrt()
        import torch

        if not torch.cuda.is_available():
            raise SigrlError("the trt backend needs a CUDA GPU and torch sees none; use --backend onnx")
        manifest, engine_path, sidecar_path = _resolve(target, precision)
        check_sidecar(read_sidecar(sidecar_path), sidecar_path, torch.cuda.get_device_name(0), trt.__version__)
        super().__init__(
            name=manifest.name,
            precision=precision,
            device="cuda",
            preprocess=manifest.preprocess,
            prompt=manifest.prompt,
            compose=manifest.compose,
            label_cache=label_cache,
            head_budget=head_budget,
        )
        self.manifest, self.engine_path = manifest, engine_path
        self._torch = torch
        self._logger = trt.Logger(trt.Logger.WARNING)
        self._runtime = trt.Runtime(self._logger)
        self.engine = self._runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise SigrlError(f"{engine_path}: TensorRT could not deserialize this engine (see its log); rebuild it")
        self.context = self.engine.create_execution_context()
        self._inputs = manifest.image_inputs  # a head without label context has no `context` input
        self._dtypes = {name: self._torch_dtype(trt, name) for name in (*self._inputs, OUTPUT)}
        self._profile = {name: self.engine.get_tensor_profile_shape(name, 0) for name in self._inputs}  # [min, opt, max]
        self._stream = torch.cuda.Stream()
        self._geometry = HeadGeometry.from_arch(manifest.arch, itemsize=2)
        self._bound: tuple[LabelArrays, Any, Any] | None = None
        from sigrl.runtime.onnx_runner import OnnxTextSide

        self._text = OnnxTextSide(manifest, device="cpu")

    def _torch_dtype(self, trt: Any, name: str) -> Any:
        mode = self.engine.get_tensor_mode(name)  # raises nothing for unknown names: check the mode
        wanted = trt.TensorIOMode.OUTPUT if name == OUTPUT else trt.TensorIOMode.INPUT
        if mode != wanted:
            raise SigrlError(f"{self.engine_path}: engine has no {name!r} {wanted.name.lower()}; rebuild it")
        np_dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
        return self._torch.from_numpy(np.zeros(0, dtype=np_dtype)).dtype

    @property
    def model_hash(self) -> str:
        return self.manifest.model_hash or f"export:{self.manifest.directory.resolve()}"

    def max_batch(self, n_labels: int) -> int:
        profile_max = int(self._profile["images"][2][0])
        return max(1, min(profile_max, self._geometry.batch_for(n_labels, self.head_budget)))

    def _encode_labels(self, labels: list[str]) -> LabelArrays:
        return self._text.encode(labels, self.prompt, self.progress)

    def _label_buffers(self, side: LabelArrays) -> tuple[Any, Any]:
        if self._bound is None or self._bound[0] is not side:
            # Profile limits on the label axis are fixed at build time; say so before TensorRT does.
            low, _, high = (int(shape[0]) for shape in self._profile["embeddings"])
            check_labels_in_profile(side.embeddings.shape[0], low, high, self.engine_path)
            torch = self._torch
            emb = torch.from_numpy(side.embeddings).to("cuda", self._dtypes["embeddings"])
            ctx = torch.from_numpy(side.context).to("cuda", self._dtypes["context"]) if "context" in self._inputs else None
            self._bound = (side, emb, ctx)
        return self._bound[1], self._bound[2]

    def _score(self, images: np.ndarray, side: LabelArrays) -> np.ndarray:
        torch, context = self._torch, self.context
        embeddings, label_context = self._label_buffers(side)
        with torch.cuda.stream(self._stream):
            x = torch.from_numpy(np.ascontiguousarray(images)).to("cuda", non_blocking=True)  # [b, S, S, 3]
            for name, tensor in image_feed(self._inputs, x, embeddings, label_context).items():
                if not context.set_input_shape(name, tuple(tensor.shape)):
                    raise SigrlError(f"{self.engine_path}: input {name} {list(tensor.shape)} is outside its profile")
                context.set_tensor_address(name, tensor.data_ptr())
            out = torch.empty(tuple(context.get_tensor_shape(OUTPUT)), dtype=self._dtypes[OUTPUT], device="cuda")
            context.set_tensor_address(OUTPUT, out.data_ptr())
            if not context.execute_async_v3(self._stream.cuda_stream):
                raise SigrlError(f"{self.engine_path}: TensorRT execution failed (see its log)")
            scores = out.float().to("cpu", non_blocking=True)
        self._stream.synchronize()
        return scores.numpy()  # [b, N]

    def close(self) -> None:
        self._bound = None
        self._text.close()
        self.context = self.engine = None
        super().close()
