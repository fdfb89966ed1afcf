"""Crash safety through the real CLI in subprocesses: SIGKILL at several points, then --resume;
and files that the tagging user may not read (root reads everything, so the run drops to nobody)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from sigrl.tagging.runs.metafile import read_meta
from sigrl.tagging.outputs.writer import read_records

from cli_helpers import MODEL, REPO, run_subprocess, sigrl, subprocess_env
from tagging_images import save, smooth_image

N_IMAGES = 30


def count_lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except FileNotFoundError:
        return -1


def start_slow(args: list[object], cwd: Path) -> subprocess.Popen:
    script = REPO / "tests" / "tagging" / "slow_tag.py"
    return subprocess.Popen(
        [sys.executable, str(script), "0.25", *map(str, args)], cwd=cwd, env=subprocess_env(),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )


def kill_when(proc: subprocess.Popen, out: Path, at_least: int, timeout: float = 120) -> int:
    """SIGKILLs `proc` once `out` holds `at_least` lines (0: once it exists); returns the count."""
    deadline = time.monotonic() + timeout
    while count_lines(out) < at_least:
        if proc.poll() is not None:
            pytest.fail(f"the run ended before it could be killed: {proc.stderr.read().decode()[-2000:]}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("timed out waiting for output")
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert proc.returncode == -signal.SIGKILL
    return count_lines(out)


TORN = b'{"path": "images/01'


def kill_then_resume(tmp_path: Path, points: list[int]) -> None:
    """Kills a run once the output holds each of `points` lines (each run resuming the last one),
    tears the last line after the first kill, then resumes to the end and checks the output."""
    images = tmp_path / "images"
    images.mkdir()
    for i in range(N_IMAGES - 1):
        save(images / f"{i:03d}.png", smooth_image(40, 36, seed=i))
    (images / "bad.jpg").write_bytes(b"not a jpeg at all")
    (tmp_path / "labels.txt").write_text("red circle\nblue square\ngreen star\n")
    out = tmp_path / "tags.jsonl"
    args = ["tag", "images", "--labels", "labels.txt", "--out", "tags.jsonl", "--model", MODEL,
            "--label-cache", "cache", "--batch-size", "2", "--workers", "2", "--quiet"]
    seen = []
    for n, point in enumerate(points):
        seen.append(kill_when(start_slow(args + (["--resume"] if n else []), tmp_path), out, point))
        if n == 0:
            with open(out, "ab") as f:  # as if the kill had landed inside a write: a torn last line
                f.write(TORN)
    assert seen == sorted(seen) and seen[-1] < N_IMAGES, seen
    done = run_subprocess(args + ["--resume"], tmp_path)
    assert done.returncode == 1, done.stderr  # the bad image failed
    assert "already done" in done.stdout

    records = read_records(out)  # every line parses: the torn tail was repaired
    paths = [r["path"] for r in records]
    assert len(paths) == len(set(paths)) == N_IMAGES
    assert set(paths) == {os.path.join("images", p.name) for p in images.iterdir()}
    errors = [r for r in records if r["status"] == "error"]
    assert [(r["path"], r["error"]) for r in errors] == [(os.path.join("images", "bad.jpg"), "not an image")]
    assert all(len(r["tags"]) == 3 for r in records if r["status"] == "ok")
    meta = read_meta(out)
    assert meta["status"] == "complete" and meta["records"] == N_IMAGES
    statuses = [r["status"] for r in meta["runs"]]
    # The first run may die before it writes its metadata; every later killed run left its own.
    assert statuses[-1] == "complete" and set(statuses[:-1]) == {"killed"}
    assert len(statuses) >= len(points)
    assert sum(r["repaired_bytes"] for r in meta["runs"]) == len(TORN)


def test_sigkill_mid_run_then_resume_records_each_image_once(tmp_path):
    kill_then_resume(tmp_path, [8])


@pytest.mark.slow
def test_sigkill_at_several_points_then_resume_records_each_image_once(tmp_path):
    kill_then_resume(tmp_path, [0, 8, 20])


def test_unreadable_files_and_folders_get_error_records(tmp_path, capsys, monkeypatch):
    # Tests run as root, which reads files and folders whatever their mode (and the interpreter
    # lives where an unprivileged user cannot run it), so the denials are simulated at the two
    # system calls that meet them: opening the file and listing the folder.
    from sigrl.tagging import decode as decode_module

    images = tmp_path / "images"
    (images / "locked_dir").mkdir(parents=True)
    save(images / "ok.png", smooth_image(40, 40, seed=1))
    save(images / "secret.png", smooth_image(40, 40, seed=2))
    save(images / "locked_dir" / "inside.png", smooth_image(40, 40, seed=3))
    (tmp_path / "labels.txt").write_text("cat\ndog\n")
    open_fd, scandir = decode_module._open_fd, os.scandir

    def deny_secret(path):
        if os.path.basename(path) == "secret.png":
            raise PermissionError(13, "Permission denied", str(path))
        return open_fd(path)

    def deny_locked(path="."):
        if os.path.basename(os.fspath(path)) == "locked_dir":
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return scandir(path)

    monkeypatch.setattr(decode_module, "_open_fd", deny_secret)
    monkeypatch.setattr(os, "scandir", deny_locked)
    out = tmp_path / "tags.jsonl"
    result = sigrl(capsys, "tag", images, "--labels", tmp_path / "labels.txt", "--out", out, "--model", MODEL,
                   "--label-cache", tmp_path / "cache")
    assert result.code == 1, result.err
    got = {os.path.basename(r["path"]): r for r in read_records(out)}
    assert set(got) == {"ok.png", "secret.png", "locked_dir"}
    assert got["ok.png"]["status"] == "ok"
    assert got["secret.png"]["error"] == "unreadable: permission denied"
    assert got["locked_dir"]["error"] == "unreadable folder: permission denied"
    assert "2 errors" in result.out
    # A resumed run meets the same folder again and does not record it twice.
    result = sigrl(capsys, "tag", images, "--labels", tmp_path / "labels.txt", "--out", out, "--model", MODEL,
                   "--label-cache", tmp_path / "cache", "--resume")
    assert result.code == 0 and len(read_records(out)) == 3
