"""The embedded default model's shipped export: in step with the checkpoint, chosen when no model
is given and onnxruntime is installed, and free of torch on that path (issue 23)."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from sigrl import default_model
from sigrl.checkpoint import file_sha256, read_metadata
from sigrl.runtime.backends import choose_backend
from sigrl.tagging import spec as spec_module
from sigrl.tagging.outputs.writer import read_records

from cli_helpers import REPO, run_subprocess, subprocess_env

EXPORT = default_model.export_path()
HAS_ORT = importlib.util.find_spec("onnxruntime") is not None
needs_export = pytest.mark.skipif(EXPORT is None, reason="this checkout ships no export of the default model")
needs_ort = pytest.mark.skipif(not HAS_ORT, reason="onnxruntime is not installed (the onnx extra)")


@needs_export
def test_shipped_export_is_made_from_the_shipped_checkpoint():
    manifest = json.loads((EXPORT / "manifest.json").read_text())
    assert manifest["model"]["source_sha256"] == file_sha256(default_model.path())
    assert manifest["model"]["labels"] == read_metadata(default_model.path())["labels"]
    assert json.loads((EXPORT / "parity.json").read_text())["passed"] is True


@needs_export
def test_model_omitted_takes_the_export_on_onnx_runtime_else_the_checkpoint(monkeypatch):
    if HAS_ORT:
        assert Path(spec_module.resolve_model(None)) == EXPORT
        assert Path(spec_module.resolve_model(None, "onnx")) == EXPORT
        choice = choose_backend(spec_module.resolve_model(None))
        assert choice.backend == "onnx" and "embedded default model's shipped export" in choice.reason
    assert Path(spec_module.resolve_model(None, "torch")) == default_model.path()
    assert spec_module.resolve_model("mine.safetensors") == "mine.safetensors"
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnxruntime" else real(name, *a))
    assert Path(spec_module.resolve_model(None)) == default_model.path()
    choice = choose_backend(spec_module.resolve_model(None))
    assert choice.backend == "torch" and "onnxruntime is not installed" in choice.reason


_PROBE = """
import sys
from sigrl.cli.main import main
sys.argv = ["sigrl", *sys.argv[1:]]
try:
    main()
finally:
    heavy = sorted(m for m in ("torch", "torchvision", "open_clip") if m in sys.modules)
    print("HEAVY=" + ",".join(heavy), file=sys.stderr)
"""


@needs_export
@needs_ort
def test_quick_start_on_onnx_imports_no_torch_and_matches_pytorch(tmp_path):
    args = ["tag", REPO / "examples" / "images", "--labels", REPO / "examples" / "labels.txt"]
    env = subprocess_env(SIGRL_CACHE=str(tmp_path / "cache"))
    onnx = subprocess.run([sys.executable, "-c", _PROBE, *map(str, args), "--out", str(tmp_path / "onnx.jsonl")],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert onnx.returncode == 0, onnx.stderr
    assert "HEAVY=\n" in onnx.stderr, onnx.stderr  # not even imported, let alone used
    assert "backend: onnx" in onnx.stderr and "embedded default model" in onnx.stderr
    torch_run = run_subprocess([*args, "--out", tmp_path / "torch.jsonl", "--backend", "torch"], tmp_path, timeout=300,
                               env={"SIGRL_CACHE": str(tmp_path / "cache")})
    assert torch_run.returncode == 0, torch_run.stderr
    a, b = read_records(tmp_path / "onnx.jsonl"), read_records(tmp_path / "torch.jsonl")
    assert [r["path"] for r in a] == [r["path"] for r in b]
    for x, y in zip(a, b):
        assert [t["label"] for t in x["tags"]] == [t["label"] for t in y["tags"]]
        bar = json.loads((EXPORT / "parity.json").read_text())["bars"]["fp32"]["max_abs_diff"]
        assert np.allclose([t["score"] for t in x["tags"]], [t["score"] for t in y["tags"]], atol=bar + 1e-6)
