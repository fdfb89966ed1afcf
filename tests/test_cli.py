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
