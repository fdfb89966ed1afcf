"""The installed layout: every package folder is listed, and export/bench/cli live under sigrl."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MAPPED = {"export": "sigrl.export", "bench": "sigrl.bench", "cli": "sigrl.cli"}


def _package_names() -> set[str]:
    names = set()
    for init in ROOT.glob("**/__init__.py"):
        rel = init.parent.relative_to(ROOT)
        if rel.parts[0] == "sigrl":
            names.add(".".join(rel.parts))
        elif rel.parts[0] in MAPPED:
            names.add(".".join((MAPPED[rel.parts[0]], *rel.parts[1:])))
    return names


def test_every_package_is_installed():
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
    listed = set(config["packages"])
    assert _package_names() <= listed, f"add to pyproject packages: {sorted(_package_names() - listed)}"
    for folder, name in MAPPED.items():
        assert config["package-dir"][name] == folder


def test_mapped_packages_import_from_the_repo_folders():
    import sigrl.bench
    import sigrl.cli
    import sigrl.export

    assert Path(sigrl.export.__file__).parent == ROOT / "export"
    assert Path(sigrl.cli.__file__).parent == ROOT / "cli"
    assert Path(sigrl.bench.__file__).parent == ROOT / "bench"


def test_ci_runs_exactly_the_readme_setup_commands():
    import re

    readme = (ROOT / "README.md").read_text()
    section = re.search(r"^## Set up\s*$(.*?)(?=^## )", readme, re.M | re.S).group(1)
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    commands = [line.strip() for line in block.splitlines() if line.strip()]
    assert len(commands) == 2 and "pip install" in commands[0] and "pytest" in commands[1]
    ci = [line.strip() for line in (ROOT / ".ci" / "run").read_text().splitlines()]
    assert commands[0] in ci and commands[1] in ci
    assert ci.index(commands[0]) < ci.index(commands[1])


def test_cpu_only_onnx_extra_takes_plain_onnxruntime():
    # Issue 14: a machine without a GPU can take plain onnxruntime instead of onnxruntime-gpu.
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert any(dep.startswith("onnxruntime-gpu") for dep in extras["onnx"])
    assert any(dep.startswith("onnxruntime>") for dep in extras["onnx-cpu"])
    assert not any("gpu" in dep for dep in extras["onnx-cpu"])
    readme = (ROOT / "README.md").read_text()
    assert ".[onnx-cpu" in readme
    assert "download.pytorch.org/whl/cpu" in readme
