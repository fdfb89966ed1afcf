"""`sigrl tag` on an ONNX export directory: same tags as PyTorch, auto picks ONNX Runtime and says
why, int8 works, and the tagging path imports no torch, with a cold or a warm label cache."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

from sigrl.tagging.runs.metafile import read_meta
from sigrl.tagging.outputs.writer import read_records

from cli_helpers import MODEL, jpeg_inputs, sigrl, subprocess_env, tag_args

pytest.importorskip("onnxruntime", reason="the onnx backend needs onnxruntime")


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory):
    from sigrl.export.exporter import export_model

    out = tmp_path_factory.mktemp("export") / "tiny"
    export_model(MODEL, out, format="onnx", precision="int8")
    return out


@pytest.fixture
def setup(tmp_path):
    return jpeg_inputs(tmp_path, 6, quality=92)


def scores_by_name(path):
    return {os.path.basename(r["path"]): np.array(r["scores"]) for r in read_records(path)}


def test_export_directory_runs_on_onnx_runtime_with_torch_scores(tmp_path, capsys, export_dir, setup):
    images, labels = setup
    cache = tmp_path / "cache"
    reference = sigrl(capsys, *tag_args(images, labels, tmp_path / "torch.jsonl", cache, "--scores", "all", "--device", "cpu"))
    assert reference.code == 0, reference.err
    args = ["tag", images, "--labels", labels, "--out", tmp_path / "onnx.jsonl", "--model", export_dir,
            "--label-cache", cache, "--scores", "all"]
    result = sigrl(capsys, *args)
    assert result.code == 0, result.err
    assert "backend: onnx" in result.err and "export directory" in result.err
    meta = read_meta(tmp_path / "onnx.jsonl")
    assert meta["backend"] == "onnx" and "export directory" in meta["backend_reason"]
    ours, theirs = scores_by_name(tmp_path / "onnx.jsonl"), scores_by_name(tmp_path / "torch.jsonl")
    for name in theirs:
        np.testing.assert_allclose(ours[name], theirs[name], atol=1e-4)
    # int8: the quantized image graph, scores close to fp32
    args[args.index("--out") + 1] = tmp_path / "int8.jsonl"
    result = sigrl(capsys, *args, "--precision", "int8")
    assert result.code == 0, result.err
    assert read_meta(tmp_path / "int8.jsonl")["precision"] == "int8"
    int8 = scores_by_name(tmp_path / "int8.jsonl")
    assert max(np.abs(int8[n] - ours[n]).max() for n in ours) < 0.1


def _probe(code: str, args: list[str], cwd) -> subprocess.CompletedProcess:
    script = ("import atexit, sys; atexit.register(lambda: print('TORCH', 'torch' in sys.modules, file=sys.stderr)); "
              + code)
    return subprocess.run([sys.executable, "-c", script, *args], cwd=cwd, env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)


def test_tag_command_imports_no_torch_with_a_cold_or_warm_label_cache(tmp_path, export_dir, setup):
    images, labels = setup
    args = ["tag", str(images), "--labels", str(labels), "--out", str(tmp_path / "o.jsonl"), "--model",
            str(export_dir), "--label-cache", str(tmp_path / "cache"), "--overwrite"]
    tag_only = ("import typer; from sigrl.cli.tag import tag; app = typer.Typer(); app.command()(tag); "
                "sys.argv = ['sigrl'] + sys.argv[2:]; app()")
    cold = _probe(tag_only, args, tmp_path)
    assert cold.returncode == 0, cold.stderr
    assert "TORCH False" in cold.stderr  # a label-cache miss tokenises with sigrl's torch-free CLIP tokenizer
    warm = _probe(tag_only, args, tmp_path)
    assert warm.returncode == 0, warm.stderr
    assert "TORCH False" in warm.stderr
    assert len(read_records(tmp_path / "o.jsonl")) == 6


def test_sigrl_entry_point_imports_no_torch_with_a_warm_label_cache(tmp_path, export_dir, setup):
    images, labels = setup
    args = ["tag", str(images), "--labels", str(labels), "--out", str(tmp_path / "o.jsonl"), "--model",
            str(export_dir), "--label-cache", str(tmp_path / "cache"), "--overwrite"]
    entry = "sys.argv = ['sigrl'] + sys.argv[1:]; from sigrl.cli.main import main; main()"
    assert _probe(entry, args, tmp_path).returncode == 0
    warm = _probe(entry, args, tmp_path)
    assert warm.returncode == 0, warm.stderr
    assert "TORCH False" in warm.stderr
