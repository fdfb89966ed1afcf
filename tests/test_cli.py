"""The console script itself: installed entry point, --version, info, and error handling."""

from __future__ import annotations

import json
import subprocess
import sys

import sigrl


def _sigrl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sigrl.cli.main", *args], capture_output=True, text=True, timeout=120)


def test_version():
    out = _sigrl("--version")
    assert out.returncode == 0
    assert out.stdout.strip() == f"sigrl {sigrl.__version__}"


def test_help_lists_commands():
    out = _sigrl("--help")
    assert out.returncode == 0
    assert "info" in out.stdout


def test_info_json_reports_components_and_reasons():
    out = _sigrl("info", "--json")
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["sigrl"] == sigrl.__version__
    assert report["components"]["torch"]["available"]
    for item in report["components"].values():
        # every unavailable piece says why and how to get it
        assert item["available"] or "install" in item["reason"]
    assert set(report["backends"]) == {"torch", "onnx", "trt"}


def test_info_lists_the_optional_extras(monkeypatch):
    # Issue 14: the extras' state (pyarrow, ray, matplotlib), installed here by .[dev], and what a
    # missing one says.
    import importlib.util

    from sigrl.environment import describe_environment

    out = _sigrl("info")
    assert out.returncode == 0, out.stderr
    text = out.stdout.split("extras:")[1].split("backends:")[0]
    for name, extra in (("pyarrow", "[parquet]"), ("ray", "[ray]"), ("matplotlib", "[bench]")):
        line = next(line for line in text.splitlines() if line.split()[:1] == [name])
        assert extra in line and "not installed" not in line
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    ray = describe_environment()["extras"]["ray"]
    assert not ray["available"] and "pip install 'sigrl[ray]'" in ray["reason"]


def test_import_sigrl_stays_light():
    code = "import sys, sigrl, sigrl.config, sigrl.metrics; print(sorted(m for m in ('typer','onnxruntime','tensorrt','torch') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_library_import_does_not_pull_cli_or_optional_backends():
    code = "import sys, sigrl.model; print(sorted(m for m in ('typer','onnxruntime','tensorrt') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
