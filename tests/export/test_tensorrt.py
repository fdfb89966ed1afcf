"""TensorRT pieces without TensorRT: profile, cache key, sidecar, mismatch check, lazy import, and the
builder's calls against a recording fake of the TensorRT 10 Python API. The real build is `trt`-marked."""

from __future__ import annotations

import builtins
import json
import subprocess
import sys
from types import SimpleNamespace

import pytest

from sigrl.errors import SigrlError
from sigrl.export import tensorrt as trt_export
from sigrl.export.formats import plan_export
from sigrl.export.manifest import read_manifest

DEVICE = {"gpu": "NVIDIA H100 80GB HBM3", "compute_capability": "9.0", "tensorrt": "10.3.0", "cuda": "12.4"}


def test_image_profile_spans_batch_and_labels(tiny_export):
    profile = trt_export.image_profile(tiny_export.manifest, (1, 8, 64), (2, 81, 1000))
    assert profile == {
        "images": {"min": [1, 32, 32, 3], "opt": [8, 32, 32, 3], "max": [64, 32, 32, 3]},
        "embeddings": {"min": [2, 64], "opt": [81, 64], "max": [1000, 64]},
        "context": {"min": [2, 64], "opt": [81, 64], "max": [1000, 64]},
    }


def test_cache_key_changes_with_every_input():
    profile = {"images": {"min": [1], "opt": [2], "max": [3]}}
    base = trt_export.cache_key("abc", "fp16", profile, DEVICE)
    assert base == trt_export.cache_key("abc", "fp16", json.loads(json.dumps(profile)), dict(DEVICE))
    variants = [
        trt_export.cache_key("abd", "fp16", profile, DEVICE),
        trt_export.cache_key("abc", "fp32", profile, DEVICE),
        trt_export.cache_key("abc", "fp16", {"images": {"min": [1], "opt": [2], "max": [4]}}, DEVICE),
        trt_export.cache_key("abc", "fp16", profile, {**DEVICE, "gpu": "NVIDIA L4"}),
        trt_export.cache_key("abc", "fp16", profile, {**DEVICE, "tensorrt": "10.4.0"}),
    ]
    assert len({base, *variants}) == 6
    # The CUDA runtime version is recorded but does not invalidate an engine.
    assert trt_export.cache_key("abc", "fp16", profile, {**DEVICE, "cuda": "12.6"}) == base


def test_check_engine_names_the_mismatch():
    meta = trt_export.sidecar("k", "fp16", ["FP16"], {}, DEVICE, "image.onnx", "sha")
    trt_export.check_engine(meta, DEVICE)  # same machine: fine
    with pytest.raises(SigrlError, match=r"GPU 'NVIDIA H100 80GB HBM3' \(this machine: 'NVIDIA L4'\).*rebuild"):
        trt_export.check_engine(meta, {**DEVICE, "gpu": "NVIDIA L4", "compute_capability": "8.9"})
    with pytest.raises(SigrlError, match=r"TensorRT '10.3.0' \(this machine: '10.5.0'\)"):
        trt_export.check_engine(meta, {**DEVICE, "tensorrt": "10.5.0"})


def test_missing_tensorrt_is_one_line(monkeypatch):
    real_import = builtins.__import__

    def no_trt(name, *args, **kwargs):
        if name == "tensorrt":
            raise ImportError("No module named 'tensorrt'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_trt)
    with pytest.raises(SigrlError) as err:
        trt_export.tensorrt_module()
    assert str(err.value) == trt_export.INSTALL_HINT and "\n" not in str(err.value)
    assert "pip install 'sigrl[trt]'" in str(err.value)


@pytest.mark.skipif(__import__("importlib").util.find_spec("tensorrt") is not None, reason="TensorRT is installed")
def test_cli_trt_without_tensorrt_fails_before_any_work(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "sigrl.cli.main", "export", "--model", "sigrl-tiny", "--format", "all", "--out", str(tmp_path / "e")],
        capture_output=True, text=True, timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.strip() == f"error: {trt_export.INSTALL_HINT}"
    assert not (tmp_path / "e").exists()  # nothing was exported first


class _Recorder:
    """A stand-in for the tensorrt module that records the calls the builder makes."""

    def __init__(self):
        self.calls = []
        rec = self
        self.__version__ = DEVICE["tensorrt"]
        self.float32, self.float16, self.int32 = "float32", "float16", "int32"
        self.LayerType = SimpleNamespace(NORMALIZATION="norm", SOFTMAX="softmax", REDUCE="reduce", MATRIX_MULTIPLY="mm", TOPK="topk")
        self.BuilderFlag = SimpleNamespace(FP16="FP16", OBEY_PRECISION_CONSTRAINTS="OBEY", TF32="TF32")
        self.MemoryPoolType = SimpleNamespace(WORKSPACE="workspace")

        class Logger:
            WARNING = "warning"

            def __init__(self, level):
                pass

        class Layer:
            def __init__(self, kind, out_types):
                self.type, self.precision, self.outs, self.set_types = kind, None, out_types, {}
                self.num_outputs = len(out_types)

            def get_output(self, j):
                return SimpleNamespace(dtype=self.outs[j])

            def set_output_type(self, j, dtype):
                self.set_types[j] = dtype

        self.layers = [Layer("norm", ["float32"]), Layer("mm", ["float32"]), Layer("softmax", ["float32"]),
                       Layer("reduce", ["float32"]), Layer("topk", ["float32", "int32"])]

        class Network:
            num_layers = len(self.layers)

            def get_layer(self, i):
                return rec.layers[i]

        class Config:
            def set_memory_pool_limit(self, pool, size):
                rec.calls.append(("pool", pool, size))

            def set_flag(self, flag):
                rec.calls.append(("set_flag", flag))

            def clear_flag(self, flag):
                rec.calls.append(("clear_flag", flag))

            def add_optimization_profile(self, profile):
                rec.calls.append(("add_profile", profile.shapes))

            def create_timing_cache(self, blob):
                rec.calls.append(("timing_in", bytes(blob)))
                return "cache"

            def set_timing_cache(self, cache, ignore_mismatch):
                rec.calls.append(("set_timing", ignore_mismatch))

            def get_timing_cache(self):
                return SimpleNamespace(serialize=lambda: b"timing-v1")

        class Profile:
            def __init__(self):
                self.shapes = {}

            def set_shape(self, name, lo, opt, hi):
                self.shapes[name] = (list(lo), list(opt), list(hi))

        class Builder:
            def __init__(self, logger):
                pass

            def create_network(self, flags):
                rec.calls.append(("network_flags", flags))
                return Network()

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                rec.calls.append(("build",))
                return b"ENGINE"

        class OnnxParser:
            num_errors = 0

            def __init__(self, network, logger):
                pass

            def parse_from_file(self, path):
                rec.calls.append(("parse", path))
                return True

        self.Logger, self.Builder, self.OnnxParser = Logger, Builder, OnnxParser


def test_fp16_build_calls_sidecar_and_cache_reuse(tiny_export, tmp_path):
    import shutil

    out = tmp_path / "exp"
    shutil.copytree(tiny_export.out_dir, out)
    fake, cache = _Recorder(), tmp_path / "cache"
    step = plan_export("trt", precision="fp16", batch="1,4,16", labels="1,20,200").step("trt")
    manifest = trt_export.build_engines(out, read_manifest(out), step, trt=fake, device=DEVICE, cache=cache)
    assert manifest["engines"]["fp16"] == {"file": "image.fp16.engine", "sidecar": "image.fp16.engine.json"}
    assert (out / "image.fp16.engine").read_bytes() == b"ENGINE"
    kinds = [c[0] for c in fake.calls]
    assert kinds[:2] == ["network_flags", "parse"] and fake.calls[0][1] == 0 and kinds[-1] == "build"
    assert ("set_flag", "FP16") in fake.calls and ("set_flag", "OBEY") in fake.calls
    assert ("pool", "workspace", trt_export.WORKSPACE_BYTES) in fake.calls
    (profile,) = [c[1] for c in fake.calls if c[0] == "add_profile"]
    assert profile["images"] == ([1, 32, 32, 3], [4, 32, 32, 3], [16, 32, 32, 3])
    assert profile["context"] == ([1, 64], [20, 64], [200, 64])
    # LayerNorm, softmax and reductions pinned to fp32; matmuls and top-k left to the builder.
    pinned = {layer.type: (layer.precision, layer.set_types) for layer in fake.layers}
    assert pinned["norm"] == ("float32", {0: "float32"}) and pinned["reduce"] == ("float32", {0: "float32"})
    assert pinned["softmax"][0] == "float32" and pinned["mm"] == (None, {}) and pinned["topk"] == (None, {})
    meta = json.loads((out / "image.fp16.engine.json").read_text())
    assert meta["gpu"] == DEVICE["gpu"] and meta["compute_capability"] == "9.0"
    assert meta["tensorrt"] == "10.3.0" and meta["cuda"] == "12.4"
    assert meta["flags"] == ["FP16", "OBEY_PRECISION_CONSTRAINTS"] and meta["precision"] == "fp16"
    assert meta["profile"]["images"]["max"] == [16, 32, 32, 3]
    assert (cache / "timing-10.3.0-sm9.0.cache").read_bytes() == b"timing-v1"
    assert (cache / f"{meta['cache_key']}.engine").read_bytes() == b"ENGINE"

    # Same key: nothing is rebuilt, neither in place nor from the shared cache in a new directory.
    fake.calls.clear()
    trt_export.build_engines(out, read_manifest(out), step, trt=fake, device=DEVICE, cache=cache)
    other = tmp_path / "other"
    shutil.copytree(tiny_export.out_dir, other)
    trt_export.build_engines(other, read_manifest(other), step, trt=fake, device=DEVICE, cache=cache)
    assert ("build",) not in fake.calls and (other / "image.fp16.engine").read_bytes() == b"ENGINE"
    # Another GPU: another key, a fresh build that reads the (empty for it) timing cache.
    trt_export.build_engines(out, read_manifest(out), step, trt=fake, device={**DEVICE, "gpu": "NVIDIA L4"}, cache=cache)
    assert ("build",) in fake.calls


def test_fp32_build_clears_tf32(tiny_export, tmp_path):
    import shutil

    out = tmp_path / "exp"
    shutil.copytree(tiny_export.out_dir, out)
    fake = _Recorder()
    step = plan_export("trt").step("trt")
    trt_export.build_engines(out, read_manifest(out), step, trt=fake, device=DEVICE, cache=tmp_path / "c")
    assert ("clear_flag", "TF32") in fake.calls and ("set_flag", "FP16") not in fake.calls
    assert all(layer.precision is None for layer in fake.layers)


@pytest.mark.trt
def test_real_engine_build_matches_onnx(tiny_export, tmp_path):
    import shutil

    import numpy as np
    import onnxruntime as ort
    import tensorrt as trt
    import torch

    out = tmp_path / "exp"
    shutil.copytree(tiny_export.out_dir, out)
    step = plan_export("trt", precision="fp32", batch="1,2,4", labels="1,8,64").step("trt")
    manifest = trt_export.build_engines(out, read_manifest(out), step, cache=tmp_path / "cache")
    meta = json.loads((out / manifest["engines"]["fp32"]["sidecar"]).read_text())
    trt_export.check_engine(meta, trt_export.device_info(trt))
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine((out / "image.fp32.engine").read_bytes())
    context = engine.create_execution_context()
    rng = np.random.default_rng(0)
    feed = {"images": rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8),
            "embeddings": rng.normal(size=(7, 64)).astype(np.float32), "context": rng.normal(size=(7, 64)).astype(np.float32)}
    tensors = {k: torch.from_numpy(v).cuda() for k, v in feed.items()}
    scores = torch.empty((2, 7), device="cuda")
    for name, t in tensors.items():
        context.set_input_shape(name, tuple(t.shape))
        context.set_tensor_address(name, t.data_ptr())
    context.set_tensor_address("scores", scores.data_ptr())
    assert context.execute_async_v3(torch.cuda.current_stream().cuda_stream)
    torch.cuda.synchronize()
    (ref,) = ort.InferenceSession(str(out / "image.onnx"), providers=["CPUExecutionProvider"]).run(None, feed)
    assert np.abs(scores.cpu().numpy() - ref).max() < 1e-4
