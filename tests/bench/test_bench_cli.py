"""`sigrl bench --quick` through the CLI entry point: the CI smoke test of the bench.

One run (module-scoped) on the fp32 rows of PyTorch and ONNX Runtime, with a --floor the random
tiny model cannot reach, so the same run also checks the non-zero exit. Caches go to a temporary
$SIGRL_CACHE, so the test synthesizes its world split and exports the model itself.
"""

from __future__ import annotations

import csv
import json
import math

import pytest
from typer.testing import CliRunner

from sigrl.export.parity import FP32_TOL


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    from sigrl.cli.main import app

    cache = tmp_path_factory.mktemp("cache")
    out = tmp_path_factory.mktemp("bench")
    mp = pytest.MonkeyPatch()
    mp.setenv("SIGRL_CACHE", str(cache))
    try:
        result = CliRunner().invoke(app, [
            "bench", "--quick", "--model", "sigrl-tiny", "--backends", "torch,onnx", "--precisions", "fp32",
            "--batch-sizes", "1,4", "--labels-sweep", "20", "--out", str(out), "--floor", "0.99",
        ])
    finally:
        mp.undo()
    return result, out


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value)


def test_quick_bench_writes_every_output(quick_run):
    result, out = quick_run
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    for name in ("bench.json", "bench.csv", "bench.md"):
        assert (out / name).stat().st_size > 0
    try:
        import matplotlib  # noqa: F401

        assert (out / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    except ImportError:
        assert "pip install 'sigrl[bench]'" in result.output
    data = json.loads((out / "bench.json").read_text())
    env = data["environment"]
    assert env["cores"] >= 1 and env["cpu"] and env["components"]["torch"]["version"]
    assert len(data["load_average"]["start"]) == 3
    with open(out / "bench.csv", newline="") as fh:
        assert [r["row"] for r in csv.DictReader(fh)] == [r["row"] for r in data["rows"]]
    assert "| torch fp32 (cpu) | ran |" in (out / "bench.md").read_text()


def test_quick_bench_numbers_are_finite_and_fp32_rows_agree(quick_run):
    _, out = quick_run
    rows = {r["row"]: r for r in json.loads((out / "bench.json").read_text())["rows"]}
    torch_row, onnx_row = rows["torch fp32 (cpu)"], rows["onnx fp32 (cpu)"]
    for row in (torch_row, onnx_row):
        assert row["status"] == "ran", row.get("reason")
        lat = row["latency"]
        assert all(_finite(row[k]) for k in ("mAP", "F1@3", "e2e_images_per_s", "drift_vs_torch_fp32"))
        assert 0 < lat["p50_s"] <= lat["p95_s"] <= lat["p99_s"] and lat["reps"] >= 5
        assert row["throughput"]["images_per_s"] > 0 and row["throughput"]["best_batch"] in (1, 4)
        assert row["peak_rss_bytes"] > 50 * 2**20  # a Python process with torch is well above this
        assert row["artifact_bytes"] > 0
    assert 0 < torch_row["mAP"] < 1
    assert torch_row["drift_vs_torch_fp32"] == 0.0
    # The export's own bar: fp32 scores agree within its tolerance, so mAP agrees too.
    assert onnx_row["drift_vs_torch_fp32"] <= FP32_TOL
    assert abs(onnx_row["mAP"] - torch_row["mAP"]) <= FP32_TOL
    assert onnx_row["parity"].startswith("ok")


def test_quick_bench_head_scaling(quick_run):
    _, out = quick_run
    cases = json.loads((out / "bench.json").read_text())["head_scaling"]["cases"]
    variants = {c["variant"] for c in cases}
    assert {"torch whole", "onnx whole"} <= variants and any(v.startswith("torch chunked") for v in variants)
    for c in cases:
        assert c["status"] == "ran" and c["n_labels"] == 20
        assert _finite(c["seconds_per_image"]) and c["seconds_per_image"] > 0


def test_floor_exits_non_zero_and_names_the_rows(quick_run):
    result, _ = quick_run
    assert result.exit_code == 1
    assert "mAP below the floor 0.99" in result.output
