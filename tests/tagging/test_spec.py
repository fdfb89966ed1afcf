"""TagJob: built once from sigrl tag's option values, frozen, and checked where it is made."""

from __future__ import annotations

import dataclasses

import pytest

from sigrl.errors import SigrlError
from sigrl.tagging.spec import TagJob, build_job

from cli_helpers import LABELS, MODEL


@pytest.fixture
def labels_file(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_text("\n".join(LABELS) + "\n")
    return path


def test_build_job_holds_every_option(tmp_path, labels_file):
    job = build_job(["a", tmp_path / "b"], labels_file, tmp_path / "o.jsonl", model=MODEL, backend="torch", topk=2,
                    decode="exact", keep_meta=True, image_column="img", engine="ray", replicas=3, shard_size=7)
    assert isinstance(job, TagJob) and job.inputs == ("a", str(tmp_path / "b"))
    assert job.labels == tuple(LABELS) and job.rule.topk == 2 and job.rule_source == "top-2"
    assert (job.model.model, job.model.backend, job.decoding.mode) == (MODEL, "torch", "exact")
    assert (job.engine.kind, job.engine.replicas, job.engine.shard_size) == ("ray", 3, 7)
    assert job.meta() == {"decision_source": "top-2", "keep_meta": True, "image_column": "img"}
    chosen = build_job(["a"], labels_file, tmp_path / "o.jsonl", model=MODEL, image_ext="JPG, .png")
    assert chosen.reading.image_ext == ("jpg", "png") and chosen.meta()["image_ext"] == ["jpg", "png"]
    with pytest.raises(dataclasses.FrozenInstanceError):
        job.batch_size = 3  # type: ignore[misc]


@pytest.mark.parametrize("options, message", [
    ({"resume": True, "overwrite": True}, "choose one"),
    ({"engine": "spark"}, "--engine must be local or ray"),
    ({"keep_meta": True, "out": "o.csv"}, "--keep-meta"),
    ({"decode": "slow"}, "--decode must be one of"),
])
def test_build_job_refuses_mistakes(tmp_path, labels_file, options, message):
    out = tmp_path / options.pop("out", "o.jsonl")
    with pytest.raises(SigrlError, match=message):
        build_job(["x"], labels_file, out, model=MODEL, **options)
