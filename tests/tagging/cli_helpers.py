"""Running `sigrl` from tests: in-process through the real entry point, or as a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from sigrl.cli.main import main

REPO = Path(__file__).resolve().parents[2]
MODEL = "sigrl-tiny"  # random-init tiny config: deterministic (seed 0) and fast
LABELS = ["red circle", "blue square", "green star", "dog", "tree"]


@dataclass
class Result:
    code: int
    out: str
    err: str


def sigrl(capsys: pytest.CaptureFixture, *args: object) -> Result:
    """`sigrl ARGS` through sigrl.cli.main:main (the console script's function), in this process."""
    argv = sys.argv
    sys.argv = ["sigrl", *map(str, args)]
    capsys.readouterr()
    try:
        main()
        code = 0
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    finally:
        sys.argv = argv
    captured = capsys.readouterr()
    return Result(code, captured.out, captured.err)


def tag_args(inputs: object, labels: Path, out: Path, cache: Path, *extra: object) -> list[object]:
    return ["tag", inputs, "--labels", labels, "--out", out, "--model", MODEL, "--label-cache", cache, *extra]


def subprocess_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "tests" / "tagging"), env.get("PYTHONPATH", "")])
    env.setdefault("OMP_NUM_THREADS", "1")
    return env


def run_subprocess(
    args: list[object], cwd: Path, timeout: float = 120, env: dict[str, str] | None = None, **kwargs: object
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "sigrl.cli.main", *map(str, args)], cwd=cwd, env=subprocess_env(**(env or {})),
        capture_output=True, text=True, timeout=timeout, **kwargs,
    )


def jpeg_inputs(tmp_path: Path, count: int, quality: int) -> tuple[Path, Path]:
    """A folder of `count` small 80x60 JPEGs and a labels file of LABELS, under tmp_path."""
    from tagging_images import save, smooth_image

    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(count):
        save(folder / f"img{i:02d}.jpg", smooth_image(80, 60, seed=i), quality=quality)
    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(LABELS) + "\n")
    return folder, labels
