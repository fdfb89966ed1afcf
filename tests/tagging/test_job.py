"""The local engine (run_job) with a small fake runner: wiring, batching, resume rules, metadata, failures."""

from __future__ import annotations

import os

import numpy as np
import pytest

from sigrl.config import PreprocessConfig
from sigrl.errors import SigrlError
from sigrl.tagging.decisions.rule import make_rule
from sigrl.tagging.decisions.choose import choose_rule
from sigrl.tagging.engines.local import run_job
from sigrl.tagging.runs.summary import Summary
from sigrl.tagging.runs.sidecar import label_hash
from sigrl.tagging.runs.metafile import meta_path, read_meta
from sigrl.tagging.outputs.writer import read_records
from sigrl.tagging.spec import ModelSpec, OutputPolicy, TagJob

from tagging_images import save

LABELS = ["red", "green", "blue"]


def run_tagging(inputs, runner, labels, rule, out, resume=False, overwrite=False, batch_size=8, workers=2,
                progress=None) -> Summary:
    """`inputs` tagged into `out` by the local engine with an open (fake) runner."""
    job = TagJob(tuple(os.fspath(p) for p in inputs), OutputPolicy(os.fspath(out), resume, overwrite),
                 ModelSpec(getattr(runner, "name", type(runner).__name__)), tuple(labels), rule,
                 batch_size=batch_size, workers=workers)
    return run_job(job, runner, progress=progress)


class FakeRunner:
    """Scores = mean of each colour channel / 255: easy to predict from the pixels."""

    backend, device, precision, name, reason = "fake", "cpu", "fp32", "fake-model", "given"
    prompt = "a {label}"

    def __init__(self, max_batch: int = 64, fail_on_call: int | None = None, interrupt_on_call: int | None = None):
        self.preprocess = PreprocessConfig(image_size=16, resize_size=16, interpolation="bilinear")
        self.model_hash = "f" * 64
        self.calls: list[int] = []
        self.text_runs = 0
        self._max, self._fail, self._interrupt = max_batch, fail_on_call, interrupt_on_call
        self._cached: set[tuple[str, ...]] = set()

    def max_batch(self, n_labels: int) -> int:
        return self._max

    def label_side(self, labels):
        if tuple(labels) not in self._cached:
            self.text_runs += 1
            self._cached.add(tuple(labels))

    def infer(self, images: np.ndarray, labels) -> np.ndarray:
        self.calls.append(images.shape[0])
        if self._fail is not None and len(self.calls) == self._fail:
            raise RuntimeError("device lost")
        if self._interrupt is not None and len(self.calls) == self._interrupt:
            raise KeyboardInterrupt
        assert images.dtype == np.uint8 and images.shape[1:] == (16, 16, 3)
        return images.reshape(images.shape[0], -1, 3).mean(axis=1).astype(np.float32) / 255.0  # [B, 3]


class Recorder:
    def __init__(self):
        self.events = []

    def start(self, total, skipped):
        self.events.append(("start", total, skipped))

    def update(self, images, errors):
        self.events.append(("update", images, errors))

    def close(self):
        self.events.append(("close",))


def solid(path, rgb):
    save(path, np.full((20, 24, 3), rgb, dtype=np.uint8))


@pytest.fixture
def folder(tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    colours = {"r": (250, 10, 10), "g": (10, 250, 10), "b": (10, 10, 250), "rg": (200, 180, 0)}
    for i in range(3):
        for name, rgb in colours.items():
            solid(d / f"{name}{i}.png", rgb)
    (d / "broken.png").write_bytes(b"\x89PNG nope")
    return d


def test_records_batches_progress_and_meta(tmp_path, folder):
    runner, progress = FakeRunner(max_batch=3), Recorder()
    rule = make_rule(LABELS, threshold=0.5)
    out = tmp_path / "out.jsonl"
    summary = run_tagging([folder], runner, LABELS, rule, out, batch_size=8, workers=2, progress=progress)
    assert isinstance(summary, Summary)
    assert (summary.discovered, summary.tagged, summary.errors, summary.skipped) == (13, 12, 1, 0)
    assert summary.failed and summary.batch_size == 3  # capped by runner.max_batch
    assert max(runner.calls) <= 3 and sum(runner.calls) == 12
    tags = {r["path"].rsplit("/", 1)[1]: [t["label"] for t in r["tags"]] for r in read_records(out)}
    assert tags["r0.png"] == ["red"] and tags["g1.png"] == ["green"] and tags["b2.png"] == ["blue"]
    assert tags["rg0.png"] == ["red", "green"]  # 200/255 and 180/255 pass 0.5, highest first
    assert tags["broken.png"] == []
    assert progress.events[0] == ("start", 13, 0) and progress.events[-1] == ("close",)
    assert sum(e[1] for e in progress.events if e[0] == "update") == 13
    assert [e[2] for e in progress.events if e[0] == "update"][-1] == 1
    meta = read_meta(out)
    assert meta["status"] == "complete" and meta["records"] == 13
    assert meta["model_hash"] == "f" * 64 and meta["label_hash"] == label_hash(LABELS, "a {label}")
    assert meta["backend"] == "fake" and meta["backend_reason"] == "given" and meta["batch_size"] == 3
    assert meta["decision"]["thresholds"] == {"red": 0.5, "green": 0.5, "blue": 0.5}
    run = meta["runs"][0]
    assert (run["tagged"], run["errors"], run["label_side"]) == (12, 1, "encoded")
    assert set(run["timings"]) >= {"decode_wait_s", "infer_s", "write_s", "labels_s"}
    assert "12 tagged, 1 error" in summary.line()


def test_resume_skips_recorded_images_and_checks_settings(tmp_path, folder):
    rule = make_rule(LABELS, topk=1)
    out = tmp_path / "out.jsonl"
    first = run_tagging([folder], FakeRunner(), LABELS, rule, out)
    assert first.processed == 13
    solid(folder / "new.png", (0, 0, 255))
    runner = FakeRunner()
    second = run_tagging([folder], runner, LABELS, rule, out, resume=True)
    assert (second.skipped, second.tagged, second.errors) == (13, 1, 0)
    assert sum(runner.calls) == 1
    assert len(read_records(out)) == 14 and read_meta(out)["records"] == 14
    with pytest.raises(SigrlError, match="labels or prompt"):
        run_tagging([folder], FakeRunner(), ["blue", "green", "red"], make_rule(["blue", "green", "red"], topk=1), out, resume=True)
    other = FakeRunner()
    other.model_hash = "0" * 64
    with pytest.raises(SigrlError, match="different model"):
        run_tagging([folder], other, LABELS, rule, out, resume=True)
    with pytest.raises(SigrlError, match="already exists"):
        run_tagging([folder], FakeRunner(), LABELS, rule, out)
    assert len(read_records(out)) == 14


def test_runner_failure_keeps_what_was_written(tmp_path, folder):
    out = tmp_path / "out.jsonl"
    rule = make_rule(LABELS, topk=2)
    with pytest.raises(RuntimeError, match="device lost"):
        run_tagging([folder], FakeRunner(max_batch=2, fail_on_call=3), LABELS, rule, out, batch_size=2)
    written = read_records(out)
    assert 4 <= len(written) < 13
    assert read_meta(out)["status"] == "failed"
    done = run_tagging([folder], FakeRunner(), LABELS, rule, out, resume=True)
    records = read_records(out)
    assert len(records) == 13 == len({r["path"] for r in records})
    assert done.skipped == len(written)


def test_interrupt_is_recorded_and_resumable(tmp_path, folder):
    out = tmp_path / "out.jsonl"
    rule = make_rule(LABELS, topk=1)
    with pytest.raises(KeyboardInterrupt):
        run_tagging([folder], FakeRunner(max_batch=4, interrupt_on_call=2), LABELS, rule, out, batch_size=4)
    meta = read_meta(out)
    assert meta["status"] == "interrupted"
    run_tagging([folder], FakeRunner(), LABELS, rule, out, resume=True)
    meta = read_meta(out)
    assert [r["status"] for r in meta["runs"]] == ["interrupted", "complete"] and meta["records"] == 13


def test_a_killed_run_is_marked_killed_on_resume(tmp_path, folder):
    from sigrl.tagging.runs.metafile import write_meta

    out = tmp_path / "out.jsonl"
    rule = make_rule(LABELS, topk=1)
    run_tagging([folder], FakeRunner(), LABELS, rule, out)
    meta = read_meta(out)
    meta["runs"][-1]["status"] = "running"  # what a SIGKILLed run leaves behind
    write_meta(out, meta)
    run_tagging([folder], FakeRunner(), LABELS, rule, out, resume=True)
    assert [r["status"] for r in read_meta(out)["runs"]] == ["killed", "complete"]


def test_rule_mismatch_is_a_programming_error(tmp_path, folder):
    with pytest.raises(ValueError):
        run_tagging([folder], FakeRunner(), LABELS, make_rule(["x", "y", "z"], topk=1), tmp_path / "o.jsonl")


def test_choose_rule_defaults_and_sources(tmp_path):
    rule, source = choose_rule(LABELS)
    assert rule.topk == 3 and np.isinf(rule.thresholds).all() and source.startswith("top-3 (default")
    rule, source = choose_rule(LABELS + ["a", "b", "c"], default_topk=5)
    assert rule.topk == 5
    file = tmp_path / "th.tsv"
    file.write_text("red\t0.2\ngreen\t0.3\n")
    rule, source = choose_rule(LABELS, threshold=0.9, threshold_file=file)
    assert list(rule.thresholds) == [0.2, 0.3, 0.9] and rule.topk is None
    assert "thresholds from" in source and "threshold 0.9 for the other labels" in source
    with pytest.raises(SigrlError, match="no threshold for 1 label"):
        choose_rule(LABELS, threshold_file=file)
    rule, _ = choose_rule(LABELS, topk=2, scores_mode="all")
    assert rule.topk == 2 and rule.scores_mode == "all"


def test_resume_without_sidecar_is_refused_when_records_exist(tmp_path, folder):
    out = tmp_path / "out.jsonl"
    rule = make_rule(LABELS, topk=1)
    run_tagging([folder], FakeRunner(), LABELS, rule, out)
    meta_path(out).unlink()
    content = out.read_bytes()
    other = ["blue", "green", "red"]  # would mix label sets in one file
    with pytest.raises(SigrlError, match="cannot resume without out.jsonl.meta.json"):
        run_tagging([folder], FakeRunner(), other, make_rule(other, topk=1), out, resume=True)
    assert out.read_bytes() == content and not meta_path(out).exists()
    out.write_bytes(b"")  # nothing recorded yet (killed before the first record): nothing to mix
    assert run_tagging([folder], FakeRunner(), LABELS, rule, out, resume=True).processed == 13


def test_resume_refuses_a_sidecar_that_describes_no_run(tmp_path, folder):
    from sigrl.tagging.runs.metafile import write_meta

    out = tmp_path / "out.jsonl"
    rule = make_rule(LABELS, topk=1)
    run_tagging([folder], FakeRunner(), LABELS, rule, out)
    write_meta(out, {"note": "hand-written"})
    with pytest.raises(SigrlError, match="not the metadata of a sigrl tag run"):
        run_tagging([folder], FakeRunner(), LABELS, rule, out, resume=True)


def test_sidecar_is_written_before_the_first_record(tmp_path, folder):
    out = tmp_path / "out.jsonl"

    class Watching(FakeRunner):
        def label_side(self, labels):
            assert read_meta(out)["status"] == "running"  # already there when labels are encoded
            super().label_side(labels)

    run_tagging([folder], Watching(), LABELS, make_rule(LABELS, topk=1), out)
