"""open_runner / choose_backend: the auto choice and its reason; TensorRT's lazy import and checks."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from runtime_fixtures import LABELS

import sigrl.runtime.backends as runtime
from sigrl.errors import SigrlError
from sigrl.runtime import BackendStatus, available_backends, choose_backend, open_runner
from sigrl.runtime.trt_runner import check_labels_in_profile, check_sidecar, import_tensorrt


def _status(trt: bool = False, gpu: bool = False) -> dict[str, BackendStatus]:
    devices = ("cpu", "cuda") if gpu else ("cpu",)
    return {
        "torch": BackendStatus(True, ", ".join(devices), devices),
        "onnx": BackendStatus(True, ", ".join(devices), devices),
        "trt": BackendStatus(trt, "cuda" if trt else "TensorRT is not installed", ("cuda",) if trt else ()),
    }


def _with_engine(export: Path, tmp_path: Path) -> Path:
    import shutil

    copy = Path(shutil.copytree(export, tmp_path / "with_engine"))
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["engines"] = {"fp16": {"file": "image.fp16.plan", "sidecar": "image.fp16.json"}}
    (copy / "manifest.json").write_text(json.dumps(manifest))
    (copy / "image.fp16.plan").write_bytes(b"engine")
    (copy / "image.fp16.json").write_text("{}")
    return copy


def test_auto_picks_torch_for_a_config():
    choice = choose_backend("sigrl-tiny")
    assert (choice.backend, choice.precision) == ("torch", "fp32")
    assert "not an export directory" in choice.reason


def test_auto_picks_onnx_for_an_export(tiny_export):
    choice = choose_backend(tiny_export)
    assert (choice.backend, choice.device, choice.precision) == ("onnx", "cpu", "fp32")
    assert "ONNX Runtime" in choice.reason and "no fp16 TensorRT engine" in choice.reason


def test_auto_picks_trt_when_engine_and_gpu(tiny_export, tmp_path, monkeypatch):
    export = _with_engine(tiny_export, tmp_path)
    monkeypatch.setattr(runtime, "backend_status", lambda name: _status(trt=False)[name])
    choice = choose_backend(export)
    assert choice.backend == "onnx" and "TensorRT is not installed" in choice.reason
    monkeypatch.setattr(runtime, "backend_status", lambda name: _status(trt=True, gpu=True)[name])
    choice = choose_backend(export)
    assert (choice.backend, choice.device, choice.precision) == ("trt", "cuda", "fp16")
    assert "TensorRT engine" in choice.reason
    assert choose_backend(export / "image.fp16.plan").backend == "trt"


def test_gpu_with_cpu_only_onnxruntime_runs_exports_on_the_cpu(tiny_export, monkeypatch):
    # The CPU-only onnxruntime wheel on a GPU machine: auto must not pick cuda for ONNX.
    monkeypatch.setattr(runtime, "nvidia_driver_visible", lambda: True)
    monkeypatch.setattr(runtime, "gpu_visible", lambda: True)
    monkeypatch.setattr(runtime, "_onnx_has_cuda", lambda: False)
    status = runtime.available_backends()
    assert status["onnx"].available and status["onnx"].devices == ("cpu",)
    assert "onnxruntime-gpu" in status["onnx"].detail
    assert status["torch"].devices == ("cpu", "cuda")
    choice = choose_backend(tiny_export)
    assert (choice.backend, choice.device) == ("onnx", "cpu")
    monkeypatch.setattr(runtime, "_onnx_has_cuda", lambda: True)
    assert choose_backend(tiny_export).device == "cuda"


def test_choosing_onnx_on_a_gpu_machine_imports_no_torch(tiny_export):
    # Where a driver is present, only the torch backend's status may ask torch about CUDA.
    script = (
        "import sys; import sigrl.runtime.backends as rt; rt.nvidia_driver_visible = lambda: True; "
        "rt._onnx_has_cuda = lambda: False; "
        f"c = rt.choose_backend({str(tiny_export)!r}); print(c.backend, c.device, 'torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["onnx", "cpu", "False"]


def test_explicit_backend_must_fit(tiny_export):
    with pytest.raises(SigrlError, match="needs an export directory"):
        choose_backend("sigrl-tiny", backend="onnx")
    with pytest.raises(SigrlError, match="backend must be"):
        choose_backend(tiny_export, backend="tvm")
    with pytest.raises(SigrlError, match="no model given"):
        choose_backend(None)
    assert choose_backend(tiny_export, backend="onnx", precision="int8").precision == "int8"


def test_open_runner_returns_runner_with_reason(tiny_export, images, tmp_path):
    with open_runner(tiny_export, label_cache=tmp_path / "labels") as runner:
        assert runner.backend == "onnx" and runner.reason.startswith("export directory")
        assert runner.infer(images, LABELS).shape == (5, len(LABELS))
        assert runner.label_cache.writes == 1
    assert runner.closed


def test_available_backends_here():
    status = available_backends()
    assert set(status) == {"torch", "onnx", "trt"}
    assert status["torch"].available and status["onnx"].available
    if not status["trt"].available:
        assert "TensorRT" in status["trt"].detail


def test_trt_missing_is_one_line_with_install_hint(monkeypatch):
    monkeypatch.setitem(sys.modules, "tensorrt", None)  # makes `import tensorrt` raise ImportError
    with pytest.raises(SigrlError) as err:
        import_tensorrt()
    message = str(err.value)
    assert "\n" not in message and "pip install 'sigrl[trt]'" in message


def test_sidecar_mismatch_is_clear():
    sidecar = {"gpu": "NVIDIA H100 80GB HBM3", "tensorrt": "10.3.0", "compute_capability": "9.0"}
    check_sidecar(sidecar, Path("e.json"), "NVIDIA H100 80GB HBM3", "10.3.0")
    with pytest.raises(SigrlError, match=r"e.json: engine was built for NVIDIA H100 .* this GPU is NVIDIA L4"):
        check_sidecar(sidecar, Path("e.json"), "NVIDIA L4", "10.3.0")
    with pytest.raises(SigrlError, match=r"built with TensorRT 10.3.0, this is TensorRT 10.8.0"):
        check_sidecar(sidecar, Path("e.json"), "NVIDIA H100 80GB HBM3", "10.8.0")
    with pytest.raises(SigrlError, match="lacks the GPU name"):
        check_sidecar({}, Path("e.json"), "NVIDIA L4", "10.3.0")


def test_label_count_outside_profile():
    check_labels_in_profile(81, 1, 128, Path("e.plan"))
    with pytest.raises(SigrlError, match=r"covers 1..128 labels, got 1006; .*--labels MIN,OPT,MAX"):
        check_labels_in_profile(1006, 1, 128, Path("e.plan"))


def _build_engine(export: Path, n_labels: int) -> None:
    """Build an fp16 engine of the export's image graph with the TensorRT 10 API, as the exporter does."""
    import tensorrt as trt
    import torch

    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    network = builder.create_network(0)  # TensorRT 10: explicit batch is the only mode
    parser = trt.OnnxParser(network, logger)
    assert parser.parse((export / "image.onnx").read_bytes()), parser.get_error(0)
    config = builder.create_builder_config()
    config.set_flag(trt.BuilderFlag.FP16)
    profile = builder.create_optimization_profile()
    profile.set_shape("images", (1, 32, 32, 3), (4, 32, 32, 3), (8, 32, 32, 3))
    for name in ("embeddings", "context"):
        profile.set_shape(name, (1, 64), (n_labels, 64), (16, 64))
    config.add_optimization_profile(profile)
    (export / "image.fp16.plan").write_bytes(bytes(builder.build_serialized_network(network, config)))
    sidecar = {"gpu": torch.cuda.get_device_name(0), "tensorrt": trt.__version__}  # export/tensorrt.py's keys
    (export / "image.fp16.json").write_text(json.dumps(sidecar))


@pytest.mark.trt
def test_trt_runner_matches_onnx(tiny_export, tmp_path, images):
    from sigrl.runtime.onnx_runner import OnnxRunner
    from sigrl.runtime.trt_runner import TrtRunner

    export = _with_engine(tiny_export, tmp_path)
    _build_engine(export, len(LABELS))
    with OnnxRunner(export) as onnx_runner, TrtRunner(export) as trt_runner:
        expected, got = onnx_runner.infer(images, LABELS), trt_runner.infer(images, LABELS)
        assert trt_runner.max_batch(len(LABELS)) == 8
        with pytest.raises(SigrlError, match="covers 1..16 labels"):
            trt_runner.infer(images, [f"label {i}" for i in range(17)])
    assert got.shape == expected.shape and np.abs(expected - got).max() < 5e-2
    assert (expected.argmax(1) == got.argmax(1)).all()
