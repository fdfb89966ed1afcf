"""scripts/bench/gpu_decode.py in its small mode on the CPU: every measurement runs and lands in the report.

The figures themselves mean nothing here (a tiny model, a dozen images, a shared CPU); what is
checked is that the script a GPU machine runs once works end to end: photo sets, model-only timing,
three real `sigrl tag` runs per set, ratios, top-5 agreement, JSON and Markdown without machine paths.
"""

from __future__ import annotations

import json

from bench_scripts import bench_script

gpu_decode = bench_script("gpu_decode")  # scripts/bench/gpu_decode.py: a measurement script, not installed


def test_small_mode_runs_every_measurement(tmp_path):
    out = tmp_path / "results"
    report = gpu_decode.main(["--small", "--vga", "6", "--big", "2", "--out", str(out), "--work", str(tmp_path / "work")])
    assert report["device"] == "cpu" and report["small"]
    assert set(report["sets"]) == {"vga", "12mp"}
    for name, count in (("vga", 6), ("12mp", 2)):
        entry = report["sets"][name]
        assert entry["photos"]["images"] == count and entry["photos"]["mean_file_kb"] > 1
        assert entry["model_only"]["images_per_s"] > 0
        assert set(entry["runs"]) == {"gpu-decode", "cpu-decode", "exact"}
        for variant, run in entry["runs"].items():
            assert run["status"] == "ran", (name, variant, run["status"])
            assert run["images"] == count and run["errors"] == 0
            assert 0 < run["first_record_s"] <= run["last_record_s"] <= run["process_wall_s"]
            assert run["host_cpu_cores"] > 0
            assert run["gpu_busy_share"] is None or 0 <= run["gpu_busy_share"] <= 1
            assert run["gpu_decoded"] is None  # a CPU runner decodes on the CPU whatever the flag
        # On a CPU runner --gpu-decode has nothing to do: both runs decode on the CPU, same tags.
        assert entry["runs"]["gpu-decode"]["top5_same_as_exact"] == entry["runs"]["cpu-decode"]["top5_same_as_exact"]
        assert 0 <= entry["runs"]["gpu-decode"]["top5_same_as_exact"] <= 1
    text = (out / "gpu_decode.json").read_text()
    assert json.loads(text)["sets"]["vga"]["photos"]["images"] == 6
    assert str(tmp_path) not in text  # portable: no machine paths
    md = (out / "gpu_decode.md").read_text()
    assert "| gpu-decode | ran |" in md and "JPEGs of 640x480" in md
