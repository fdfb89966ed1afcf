"""ONNX Runtime specifics: provider assertion, session options, no torch with a warm or cold label cache."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from runtime_fixtures import LABELS

from sigrl.errors import SigrlError
from sigrl.runtime import LabelCache
from sigrl.runtime.onnx_runner import OnnxRunner, check_provider, open_session


def test_provider_assertion():
    check_provider(["CUDAExecutionProvider", "CPUExecutionProvider"], "cuda", Path("g.onnx"))
    check_provider(["CPUExecutionProvider"], "cpu", Path("g.onnx"))
    with pytest.raises(SigrlError, match=r"g.onnx: ONNX Runtime runs this graph on CPUExecutionProvider, not CUDA"):
        check_provider(["CPUExecutionProvider"], "cuda", Path("g.onnx"))
    with pytest.raises(SigrlError, match="no provider"):
        check_provider([], "cpu", Path("g.onnx"))


class _FakeOrt:
    """Enough of onnxruntime to show a silent CPU fallback being caught."""

    class GraphOptimizationLevel:
        ORT_ENABLE_ALL = "all"

    class SessionOptions:
        pass

    class InferenceSession:
        def __init__(self, path, sess_options, providers):
            self.options, self.asked = sess_options, providers

        def get_providers(self):
            return ["CPUExecutionProvider"]  # what onnxruntime-gpu does when CUDA libraries fail to load

    @staticmethod
    def get_available_providers():
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]


def test_silent_cuda_fallback_is_an_error():
    with pytest.raises(SigrlError, match="not CUDAExecutionProvider"):
        open_session(_FakeOrt, Path("image.onnx"), "cuda")
    session = open_session(_FakeOrt, Path("image.onnx"), "cpu", threads=3)
    assert session.asked == ["CPUExecutionProvider"]
    assert session.options.graph_optimization_level == "all" and session.options.intra_op_num_threads == 3


def test_cuda_provider_missing_from_build(monkeypatch):
    monkeypatch.setattr(_FakeOrt, "get_available_providers", staticmethod(lambda: ["CPUExecutionProvider"]))
    with pytest.raises(SigrlError, match="no CUDAExecutionProvider"):
        open_session(_FakeOrt, Path("image.onnx"), "cuda")


def test_real_session_runs_on_cpu_with_all_optimisations(tiny_export):
    import onnxruntime as ort

    with OnnxRunner(tiny_export, threads=1) as runner:
        assert runner.providers == ["CPUExecutionProvider"]
        opts = runner.session.get_session_options()
        assert opts.graph_optimization_level == ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        assert opts.intra_op_num_threads == 1


def test_shared_cpu_sessions_sleep_between_calls(tiny_export):
    from sigrl.runtime import open_runner

    with open_runner(tiny_export, backend="onnx", device="cpu", shared_cpu=True) as runner:
        opts = runner.session.get_session_options()
        assert opts.get_session_config_entry("session.intra_op.allow_spinning") == "0"


def _scores_in_a_fresh_process(export, images, cache_dir, text_runs, tmp_path) -> list[str]:
    """Scores `images` with open_runner in a new interpreter (asserting its text-encoder runs);
    returns what it printed: whether torch and open_clip were imported."""
    np.save(tmp_path / "images.npy", images)
    script = textwrap.dedent(
        f"""
        import sys
        import numpy as np
        from sigrl.runtime import LabelCache, open_runner
        images = np.load({str(tmp_path / 'images.npy')!r})
        with open_runner({str(export)!r}, label_cache=LabelCache({str(cache_dir)!r})) as runner:
            scores = runner.infer(images, {LABELS!r})
            assert runner.backend == "onnx" and runner.text_runs == {text_runs}, runner
        np.save({str(tmp_path / 'scores.npy')!r}, scores)
        print("torch" in sys.modules, "open_clip" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


def test_warm_cache_cold_start_imports_no_torch(tiny_export, images, tmp_path):
    cache_dir = tmp_path / "labels"
    with OnnxRunner(tiny_export, label_cache=LabelCache(cache_dir)) as runner:
        expected = runner.infer(images, LABELS)
    assert _scores_in_a_fresh_process(tiny_export, images, cache_dir, 0, tmp_path) == ["False", "False"]
    np.testing.assert_array_equal(np.load(tmp_path / "scores.npy"), expected)


def test_cold_cache_label_encode_imports_no_torch(tiny_export, images, tmp_path):
    # A label-cache miss tokenises the prompts and runs the text graph: still no torch.
    with OnnxRunner(tiny_export) as runner:
        expected = runner.infer(images, LABELS)
    assert _scores_in_a_fresh_process(tiny_export, images, tmp_path / "empty", 1, tmp_path) == ["False", "False"]
    np.testing.assert_array_equal(np.load(tmp_path / "scores.npy"), expected)


def test_an_export_that_failed_parity_is_refused(tmp_path):
    import json

    import pytest

    from sigrl.errors import SigrlError
    from sigrl.runtime.manifest import read_manifest

    (tmp_path / "manifest.json").write_text(json.dumps({
        "format": "sigrl-export", "format_version": 1, "model": {}, "preprocess": {}, "prompt": "{label}",
        "tokenizer": {}, "graphs": {}, "parity": "parity.json",
    }))
    (tmp_path / "parity.json").write_text(json.dumps({"passed": True}))
    read_manifest(tmp_path)
    (tmp_path / "parity.json").write_text(json.dumps({"passed": False}))
    with pytest.raises(SigrlError, match="failed its parity check"):
        read_manifest(tmp_path)
