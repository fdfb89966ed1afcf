"""TensorRT engines built from the exported image graph, cached by key, with a sidecar per engine.

Written against the TensorRT 10.x Python API (checked against the 10.2-10.16 documentation):
`trt.Builder(logger)`, `builder.create_network(0)` (explicit batch is the only mode in 10.x),
`trt.OnnxParser(network, logger).parse_from_file`, `builder.create_builder_config()`,
`config.set_memory_pool_limit(MemoryPoolType.WORKSPACE, bytes)`,
`builder.create_optimization_profile()` + `profile.set_shape(name, min, opt, max)` +
`config.add_optimization_profile`, `config.create_timing_cache(bytes)` / `set_timing_cache` /
`get_timing_cache().serialize()`, `BuilderFlag.FP16`, `BuilderFlag.OBEY_PRECISION_CONSTRAINTS`,
`layer.precision` / `layer.set_output_type`, `builder.build_serialized_network`. TensorRT 11
removes the FP16 and precision-constraint flags (strong typing replaces them), hence `tensorrt<11`.

fp16: the weakly typed route. FP16 lets TensorRT pick fp16 kernels for the matrix products that
dominate the cost, while OBEY_PRECISION_CONSTRAINTS pins LayerNorm (normalization layers),
softmax and reductions (the L2 norms, top-k mean, softmax over patches) to fp32. A strongly typed
network would need an fp16-typed ONNX graph, a second artifact to verify; this keeps one fp32 graph.
fp32 engines clear TF32 so that "fp32" means fp32.

Only the image graph becomes an engine: the text graph runs once per label set (its outputs are
cached by the runners) and stays on ONNX Runtime. TensorRT is imported lazily; `tensorrt_module()`
is the one place that says how to install it.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import Any, Callable, Mapping

from sigrl.errors import SigrlError
from sigrl.export.formats import Step
from sigrl.optional import require
from sigrl.export.manifest import write_json

log = logging.getLogger(__name__)

INSTALL_HINT = "TensorRT is not installed: on a machine with an NVIDIA GPU run `pip install 'sigrl[trt]'`"
WORKSPACE_BYTES = 4 << 30
_FP32_LAYER_TYPES = ("NORMALIZATION", "SOFTMAX", "REDUCE")


def tensorrt_module() -> Any:
    return require("tensorrt", INSTALL_HINT)


def cache_dir() -> Path:
    root = os.environ.get("SIGRL_CACHE_DIR") or Path.home() / ".cache" / "sigrl"
    return Path(root) / "engines"


def device_info(trt: Any) -> dict[str, str]:
    """The GPU and software an engine is tied to: name, compute capability, TensorRT, CUDA."""
    import torch

    if not torch.cuda.is_available():
        raise SigrlError("building TensorRT engines needs an NVIDIA GPU, and none is visible to CUDA here")
    major, minor = torch.cuda.get_device_capability(0)
    return {
        "gpu": torch.cuda.get_device_name(0),
        "compute_capability": f"{major}.{minor}",
        "tensorrt": str(trt.__version__),
        "cuda": str(torch.version.cuda),
    }


def image_profile(manifest: Mapping[str, Any], batch: tuple[int, int, int], labels: tuple[int, int, int]) -> dict[str, dict[str, list[int]]]:
    """min/opt/max shapes of every image-graph input for one optimisation profile over B and N."""
    inputs = manifest["graphs"]["image"]["inputs"]
    sizes = {"B": batch, "N": labels}
    profile = {}
    for name, dims in inputs.items():
        profile[name] = {
            which: [sizes[d][i] if isinstance(d, str) else int(d) for d in dims]
            for i, which in enumerate(("min", "opt", "max"))
        }
    return profile


def cache_key(onnx_sha256: str, precision: str, profile: Mapping[str, Any], device: Mapping[str, str]) -> str:
    """Engines are reusable exactly when graph, precision, profile, GPU and TensorRT all match."""
    blob = json.dumps(
        {"onnx": onnx_sha256, "precision": precision, "profile": profile,
         "gpu": device["gpu"], "cc": device["compute_capability"], "tensorrt": device["tensorrt"]},
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def sidecar(key: str, precision: str, flags: list[str], profile: Mapping[str, Any], device: Mapping[str, str], onnx_file: str, onnx_sha256: str) -> dict[str, Any]:
    return {
        "format": "sigrl-trt-engine",
        "cache_key": key,
        "precision": precision,
        "flags": flags,
        "profile": dict(profile),
        "fp32_layer_types": list(_FP32_LAYER_TYPES) if precision == "fp16" else [],
        "onnx": {"file": onnx_file, "sha256": onnx_sha256},
        **device,
    }


def check_engine(meta: Mapping[str, Any], device: Mapping[str, str], path: str | Path = "engine") -> None:
    """Raise a clear SigrlError when an engine was built for another GPU or TensorRT version."""
    problems = [
        f"{what} {meta.get(k)!r} (this machine: {device[k]!r})"
        for k, what in (("gpu", "GPU"), ("compute_capability", "compute capability"), ("tensorrt", "TensorRT"))
        if meta.get(k) != device[k]
    ]
    if problems:
        raise SigrlError(
            f"{path}: built for {', '.join(problems)}; TensorRT engines only run where they were built: "
            "rebuild with `sigrl export --format trt --out DIR`"
        )


def _fp32_constraints(trt: Any, network: Any) -> int:
    """Pin numerically sensitive layers to fp32; returns how many were pinned."""
    kinds = {getattr(trt.LayerType, name) for name in _FP32_LAYER_TYPES}
    floats = {trt.float32, trt.float16}
    pinned = 0
    for i in range(network.num_layers):
        layer = network.get_layer(i)
        if layer.type not in kinds:
            continue
        layer.precision = trt.float32
        for j in range(layer.num_outputs):
            if layer.get_output(j).dtype in floats:
                layer.set_output_type(j, trt.float32)
        pinned += 1
    return pinned


def build_engine_bytes(trt: Any, onnx_path: Path, precision: str, profile: Mapping[str, Mapping[str, list[int]]], timing_cache: Path) -> tuple[bytes, list[str]]:
    """Parse the ONNX file and build a serialized engine; returns it with the flags used."""
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse_from_file(str(onnx_path)):
        errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
        raise SigrlError(f"{onnx_path}: TensorRT could not parse the graph ({errors})")
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
    flags = []
    if precision == "fp16":
        config.set_flag(trt.BuilderFlag.FP16)
        config.set_flag(trt.BuilderFlag.OBEY_PRECISION_CONSTRAINTS)
        flags += ["FP16", "OBEY_PRECISION_CONSTRAINTS"]
        log.info("pinned %d layers to fp32", _fp32_constraints(trt, network))
    else:
        config.clear_flag(trt.BuilderFlag.TF32)
        flags.append("no TF32")
    opt_profile = builder.create_optimization_profile()
    for name, shapes in profile.items():
        opt_profile.set_shape(name, shapes["min"], shapes["opt"], shapes["max"])
    config.add_optimization_profile(opt_profile)
    cache = config.create_timing_cache(timing_cache.read_bytes() if timing_cache.is_file() else b"")
    config.set_timing_cache(cache, False)
    engine = builder.build_serialized_network(network, config)
    if engine is None:
        raise SigrlError(f"{onnx_path}: TensorRT failed to build a {precision} engine (see the TensorRT log above)")
    timing_cache.parent.mkdir(parents=True, exist_ok=True)
    timing_cache.write_bytes(bytes(config.get_timing_cache().serialize()))
    return bytes(engine), flags


def build_engines(
    out_dir: Path,
    manifest: dict[str, Any],
    step: Step,
    *,
    trt: Any = None,
    device: Mapping[str, str] | None = None,
    builder: Callable[..., tuple[bytes, list[str]]] = build_engine_bytes,
    cache: Path | None = None,
) -> dict[str, Any]:
    """Build (or reuse) the image-graph engine for step.precision; update and return the manifest."""
    from sigrl.checkpoint import file_sha256

    trt = trt or tensorrt_module()
    device = dict(device or device_info(trt))
    cache = cache or cache_dir()
    onnx_file = manifest["graphs"]["image"]["file"]
    onnx_sha = file_sha256(out_dir / onnx_file)
    profile = image_profile(manifest, step.batch, step.labels)
    key = cache_key(onnx_sha, step.precision, profile, device)
    engine_name = f"image.{step.precision}.engine"
    engine, meta_path = out_dir / engine_name, out_dir / f"{engine_name}.json"
    cached_engine, cached_meta = cache / f"{key}.engine", cache / f"{key}.json"
    if engine.is_file() and meta_path.is_file() and json.loads(meta_path.read_text()).get("cache_key") == key:
        log.info("reusing %s (cache key %s)", engine, key)
    elif cached_engine.is_file() and cached_meta.is_file():
        log.info("copying cached engine %s", cached_engine)
        shutil.copyfile(cached_engine, engine)
        shutil.copyfile(cached_meta, meta_path)
    else:
        timing = cache / f"timing-{device['tensorrt']}-sm{device['compute_capability']}.cache"
        blob, flags = builder(trt, out_dir / onnx_file, step.precision, profile, timing)
        engine.write_bytes(blob)
        write_json(meta_path, sidecar(key, step.precision, flags, profile, device, onnx_file, onnx_sha))
        cache.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(engine, cached_engine)
        shutil.copyfile(meta_path, cached_meta)
    manifest["engines"][step.precision] = {"file": engine_name, "sidecar": meta_path.name}
    return manifest
