"""The bench's parts without a model: timing statistics, OOM step-down, rows, reports, Pareto front."""

from __future__ import annotations

from pathlib import Path

import json
import sys

import pytest

from sigrl.bench import report
from sigrl.bench.matrix import NAIVE, REFERENCE, RowSpec, select_rows, unavailable_reason
from sigrl.bench.scaling import label_set
from sigrl.bench.timing import Repeats, measure, measure_batch, summarize
from sigrl.errors import SigrlError


def test_summarize_percentiles_and_outliers():
    samples = [1.0] * 96 + [1.1, 1.2, 10.0, 20.0]
    stats = summarize(samples)
    assert stats.reps == 100 and stats.p50_s == 1.0 and stats.max_s == 20.0
    # Q1 = Q3 = 1.0, so every sample above 1.0 is past the fence.
    assert stats.outliers == 4
    # linear interpolation between order statistics: p99 sits at 98.01 of 0..99
    assert stats.p95_s == 1.0 and stats.p99_s == pytest.approx(10.0 + 0.01 * 10.0)


def test_measure_warms_up_and_repeats_at_least_min_reps():
    calls = []
    stats = measure(lambda: calls.append(1), Repeats(warmup=3, min_reps=7, min_seconds=0.0, max_reps=7))
    assert len(calls) == 10 and stats.reps == 7


def test_batch_steps_down_on_out_of_memory():
    def run(batch):
        if batch > 4:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return batch

    ran, stats = measure_batch(run, 32, Repeats(warmup=0, min_reps=2, min_seconds=0.0))
    assert ran == 4 and stats.reps == 2
    with pytest.raises(ValueError):
        measure_batch(lambda b: (_ for _ in ()).throw(ValueError("bad input")), 8, Repeats())


def test_every_backend_and_precision_is_a_row_and_gpu_rows_say_why_not():
    rows = select_rows(None, None, gpu=False)
    names = [r.name for r in rows]
    assert REFERENCE in rows and rows[-1].backend == NAIVE
    assert {"torch fp16 (cuda)", "onnx int8 (cpu)", "onnx fp16 (cuda)", "trt fp16 (cuda)"} <= set(names)
    reason = unavailable_reason(RowSpec("torch", "fp16", "cuda"), False, "", ["fp32", "int8"])
    assert "CUDA GPU" in reason
    assert "TensorRT" in unavailable_reason(RowSpec("onnx", "fp16", "cuda"), True, "", ["fp32", "int8"])
    assert "export failed: x" == unavailable_reason(RowSpec("onnx", "fp32", "cpu"), False, "export failed: x", [])
    assert unavailable_reason(REFERENCE, False, "", []) == ""
    assert [r.name for r in select_rows(["onnx"], ["int8"], gpu=False)] == ["onnx int8 (cpu)"]
    assert len(select_rows(None, None, gpu=True)) == len(rows) + 2  # fp32 on the GPU for both
    with pytest.raises(SigrlError, match="--backends"):
        select_rows(["tensorflow"], None)


def test_label_set_pads_the_vocabulary_with_distinct_names():
    labels = label_set(5, ["red cat", "blue dog"])
    assert labels[:2] == ["red cat", "blue dog"] and len(set(labels)) == 5
    assert label_set(1, ["a", "b"]) == ["a"]


def test_pareto_front():
    pts = [(10, 0.5), (20, 0.4), (5, 0.6), (15, 0.3), (20, 0.45)]
    assert report.pareto_front(pts) == [2, 0, 4]


def _result(rows):
    return {
        "environment": {"cpu": "Test CPU", "cores": 2, "backends": {"torch": {"detail": "cpu"}}},
        "data": {"name": "world-test", "manifest": "m.jsonl", "images": 4, "labels": 3},
        "model": {"spec": "sigrl-tiny", "note": "test"},
        "load_average": {"start": [1.0, 1.0, 1.0], "end": [2.0, 2.0, 2.0]},
        "rows": rows,
        "head_scaling": {"cases": [{"variant": "onnx whole", "n_labels": 20, "status": "ran",
                                    "seconds_per_image": 0.002, "head_peak_bytes": 2**20}]},
    }


_RAN = {
    "row": "onnx fp32 (cpu)", "backend": "onnx", "precision": "fp32", "device": "cpu", "status": "ran",
    "reason": "", "export": "ok", "parity": "ok (max 1.0e-07)", "artifact_bytes": 2**21, "mAP": 0.5,
    "mAP_delta_vs_torch_fp32": 0.0, "F1@3": 0.4, "drift_vs_torch_fp32": 1e-7,
    "latency": {"p50_s": 0.001, "p95_s": 0.002, "p99_s": 0.003, "outliers": 1, "reps": 100},
    "throughput": {"images_per_s": 900.0, "best_batch": 8}, "e2e_images_per_s": 500.0,
    "e2e_speedup_vs_naive": 3.0, "peak_rss_bytes": 300 * 2**20,
}
_UNAVAILABLE = {"row": "trt fp16 (cuda)", "backend": "trt", "precision": "fp16", "device": "cuda",
                "status": "unavailable", "reason": "TensorRT is not installed", "export": "ok", "parity": "n/a",
                "artifact_bytes": None}


def test_reports_without_matplotlib_say_how_to_get_the_plot(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    files = report.write_reports(_result([_RAN, _UNAVAILABLE]), tmp_path)
    assert "plot" not in files and not (tmp_path / "bench.png").exists()
    assert "sigrl[bench]" in report.PLOT_HINT
    md = files["markdown"].read_text()
    assert "| onnx fp32 (cpu) | ran | ok | ok (max 1.0e-07) | 2.0 | 0.5000 | +0.0000 | 0.4000 | 1.0e-07 | 1.00 |" in md
    assert "900.0 (8)" in md and "| 1/100 |" in md
    assert "| trt fp16 (cuda) | unavailable: TensorRT is not installed |" in md
    assert "| 20 | 2.00 ms (1 MB) |" in md
    csv_lines = files["csv"].read_text().splitlines()
    assert len(csv_lines) == 3 and csv_lines[1].startswith("onnx fp32 (cpu),onnx,fp32,cpu,ran")
    assert json.loads(files["json"].read_text())["rows"][1]["status"] == "unavailable"


def test_below_floor():
    low = dict(_RAN, row="onnx int8 (cpu)", mAP=0.2)
    nan = dict(_RAN, row="broken", mAP=float("nan"))
    failed = dict(_UNAVAILABLE, row="crashed", status="failed")
    rows = [_RAN, low, nan, _UNAVAILABLE, failed]
    assert report.below_floor(_result(rows), 0.3) == ["onnx int8 (cpu)", "broken", "crashed"]


def test_an_export_directory_is_a_model_and_its_source_feeds_the_torch_rows(tmp_path):
    from sigrl.bench.inputs import resolve_model

    checkpoint = tmp_path / "m.safetensors"
    manifest = {"format": "sigrl-export", "format_version": 1, "model": {"name": "m", "source": str(checkpoint)},
                "preprocess": {}, "prompt": "a {label}", "tokenizer": {"context_length": 8}, "graphs": {}}
    export = tmp_path / "export"
    export.mkdir()
    (export / "manifest.json").write_text(json.dumps(manifest))
    gone = resolve_model(str(export))
    assert gone.spec is None and gone.export == str(export) and gone.label == str(export)
    checkpoint.write_bytes(b"x")
    found = resolve_model(str(export))
    assert found.spec == str(checkpoint) and found.export == str(export)
    with pytest.raises(SigrlError, match="no such checkpoint"):
        resolve_model(str(tmp_path / "missing.safetensors"))


@pytest.mark.parametrize("args, first", [(["--quick"], "sigrl-bench-quick"), ([], "sigrl-bench"),
                                         (["--reference"], "bench")])
def test_only_an_explicit_flag_writes_the_reference_results(tmp_path, monkeypatch, args, first):
    """The committed bench/results/<machine-id>/ is written only with --reference (issue 14)."""
    import sigrl.bench.report as report
    import sigrl.bench.run as run
    from typer.testing import CliRunner

    from sigrl.cli.main import app

    written = []
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(run, "run_bench", lambda config, command: {"rows": []})
    (tmp_path / "bench.md").write_text("table")

    def write_reports(result, folder):
        written.append(folder)
        return {"markdown": tmp_path / "bench.md", "plot": tmp_path / "bench.png"}

    monkeypatch.setattr(report, "write_reports", write_reports)
    result = CliRunner().invoke(app, ["bench", *args])
    assert result.exit_code == 0, result.output
    assert written[0].parts[0] == first
    assert (written[0].parts[:2] == ("bench", "results")) == (first == "bench")


def test_gpu_scripts_name_their_results_folder():
    root = Path(__file__).resolve().parents[2]
    assert "sigrl bench --reference" in (root / "scripts" / "bench" / "gpu.sh").read_text()
    assert '--out "$RESULTS"' in (root / "scripts" / "bench" / "gpu_check.sh").read_text()


def test_label_bench_table():
    # scripts/bench/labels.py (issue 14): one row per N, seconds and MiB per backend, failures spelled out.
    from bench_scripts import bench_script

    render = bench_script("labels").render

    report = {
        "machine": {"cpu": "Some CPU", "cores": 2, "loadavg_start": [1.0, 1, 1], "loadavg_end": [2.0, 2, 2]},
        "model": {"name": "m", "note": "the embedded default model", "label_chunk": 64, "gmc": True,
                  "gmc_heads": 4, "gmc_head_dim": 32},
        "image_batch": 4, "remeasured": ["label:torch"],
        "rows": [
            {"kind": "label", "backend": "torch", "n_labels": 10000, "seconds": 120.0, "peak_bytes": 300 * 2**20},
            {"kind": "label", "backend": "onnx", "n_labels": 10000, "error": "MemoryError"},
            {"kind": "image", "backend": "torch", "n_labels": 10000, "ms_per_image": 650.0, "peak_bytes": 2**28,
             "batch": 4, "per_call": 170},
        ],
    }
    text = render(report)
    row = next(line for line in text.splitlines() if line.startswith("| 10,000 | 120.0"))
    assert "300 MiB" in row and "failed: MemoryError" in row and "51.2 GB" in row
    assert "| 10,000 | 650.0 | 256 MiB | not run |" in text and "label:torch" in text


def test_quick_bench_duration_is_the_measured_one():
    # Issue 14: "about a minute" was documented, 366 s observed; the documents say what was measured.
    root = Path(__file__).resolve().parents[2]
    for path in (root / "README.md", root / "docs" / "bench.md", root / "cli" / "bench.py"):
        text = path.read_text()
        assert "about a minute" not in text, path
        assert "3 minutes" in text, path
