"""Outputs read by other tools alone: JSON Lines files loaded together by Hugging Face `datasets`,
and a Parquet file that names the labels of its `scores` lists itself."""

from __future__ import annotations

import json

import pytest

from sigrl.tagging.outputs.parquet import SCORE_LABELS_KEY
from sigrl.tagging.outputs.writer import read_records

from cli_helpers import LABELS, REPO, sigrl, tag_args
from shard_helpers import write_tar

EXAMPLES = REPO / "examples" / "images"
PNG = (EXAMPLES / "scene-01.png").read_bytes()


@pytest.fixture
def labels_file(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("\n".join(LABELS) + "\n")
    return path


def two_runs(tmp_path, capsys, labels_file) -> list:
    """A clean run whose samples hold .json, and a run with failures whose samples hold .txt/.cls."""
    clean = write_tar(tmp_path / "clean.tar", [(f"a{i}", {"png": PNG, "json": b'{"caption": "x", "n": 1}'}) for i in range(3)])
    mixed = write_tar(tmp_path / "mixed.tar", [("b0", {"png": PNG, "txt": b"t", "cls": b"2"}),
                                               ("b1", {"png": b"not an image", "txt": b"u"}), ("b2", {"txt": b"v"})])
    outs = []
    for shard, code in ((clean, 0), (mixed, 1)):
        out = tmp_path / f"{shard.stem}.jsonl"
        assert sigrl(capsys, *tag_args(shard, labels_file, out, tmp_path / "c", "--keep-meta")).code == code
        outs.append(out)
    return outs


def test_json_lines_files_load_together_with_datasets(tmp_path, capsys, labels_file, monkeypatch):
    datasets = pytest.importorskip("datasets", reason="Hugging Face datasets is not installed")
    datasets.disable_progress_bars()
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    clean, mixed = two_runs(tmp_path, capsys, labels_file)
    for order in ([clean, mixed], [mixed, clean]):
        loaded = datasets.load_dataset("json", data_files=[str(p) for p in order], split="train",
                                       cache_dir=str(tmp_path / "hf"))
        assert len(loaded) == 6 and loaded.features["error"].dtype == "string"
        assert sorted(loaded["status"]) == ["error"] * 2 + ["ok"] * 4
        assert {json.loads(m).get("__image__") for m in loaded["meta"]} >= {"a0.png", "b0.png"}


def test_json_lines_record_format(tmp_path, capsys, labels_file):
    clean, mixed = two_runs(tmp_path, capsys, labels_file)
    first = json.loads(clean.read_text().splitlines()[0])
    assert first["error"] == "" and json.loads(first["meta"]) == {"json": {"caption": "x", "n": 1}, "__image__": "a0.png"}
    records = read_records(mixed)  # read back as before: error None, meta a dict
    assert records[0]["error"] is None and records[0]["meta"] == {"txt": "t", "cls": "2", "__image__": "b0.png"}
    assert records[2]["meta"] == {"txt": "v"} and records[2]["status"] == "error"


def test_parquet_names_its_score_labels(tmp_path, capsys, labels_file):
    pq = pytest.importorskip("pyarrow.parquet")
    out = tmp_path / "t.parquet"
    result = sigrl(capsys, *tag_args(EXAMPLES, labels_file, out, tmp_path / "c", "--scores", "all"))
    assert result.code == 0, result.err
    assert json.loads(pq.read_schema(out).metadata[SCORE_LABELS_KEY.encode()]) == LABELS
    plain = tmp_path / "p.parquet"
    assert sigrl(capsys, *tag_args(EXAMPLES, labels_file, plain, tmp_path / "c")).code == 0
    assert SCORE_LABELS_KEY.encode() not in (pq.read_schema(plain).metadata or {})
