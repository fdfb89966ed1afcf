"""`sigrl tag --engine ray` on a local Ray instance started in this process (2 CPUs).

Checked against the local engine on the same images, model and labels: the same records (modulo
order), scores within 1e-5; a replica killed mid-run; shard-level resume.
"""

from __future__ import annotations

import json
import os
import shutil

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'sigrl[ray]'); the ray engine cannot be tested")
pytest.importorskip("ray.data", reason="Ray is installed without Ray Data (pip install 'ray[data]')")

from helpers import LABELS, MODEL, assert_same_records, by_path, make_images  # noqa: E402

from sigrl.runtime import open_runner  # noqa: E402
from sigrl.tagging.decisions.choose import choose_rule  # noqa: E402
from sigrl.tagging.engines.local import run_job  # noqa: E402
from sigrl.tagging.engines.ray_engine import CRASH_ENV, run_job_ray  # noqa: E402
from sigrl.tagging.outputs.merge import merge_shards, read_manifest  # noqa: E402
from sigrl.tagging.runs.metafile import read_meta  # noqa: E402
from sigrl.tagging.outputs.writer import read_records  # noqa: E402
from sigrl.tagging.spec import EngineOptions, ModelSpec, OutputPolicy, ReadOptions, TagJob  # noqa: E402

IMAGES = 300
SHARD = 64  # 301 inputs -> 5 shards


def run_tagging(inputs, runner, rule, out, workers=0):
    """The local engine's records for `inputs`, to compare the Ray engine's with."""
    job = TagJob(tuple(os.fspath(p) for p in inputs), OutputPolicy(os.fspath(out)), ModelSpec(runner.name),
                 tuple(LABELS), rule, workers=workers)
    return run_job(job, runner)


def run_tagging_ray(inputs, spec, rule, out, resume=False, replicas=None, shard_size=1000, keep_meta=False):
    """`inputs` tagged into the shard folder `out` by the Ray engine."""
    job = TagJob(tuple(os.fspath(p) for p in inputs), OutputPolicy(os.fspath(out), resume), spec, tuple(LABELS), rule,
                 reading=ReadOptions(keep_meta), engine=EngineOptions("ray", None, replicas, shard_size))
    return run_job_ray(job)


@pytest.fixture(scope="module")
def crash_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("crash")


@pytest.fixture(scope="module")
def ray_local(crash_dir):
    # Workers inherit the environment of the Ray instance: the test-only crash switch is set
    # before it starts, and stays harmless until a test arms it.
    os.environ[CRASH_ENV] = os.fspath(crash_dir)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()
    os.environ.pop(CRASH_ENV, None)


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    folder = tmp_path_factory.mktemp("images")
    make_images(folder, IMAGES)
    return folder


@pytest.fixture(scope="module")
def rule():
    return choose_rule(LABELS, topk=3, scores_mode="all", model=MODEL)[0]


@pytest.fixture(scope="module")
def spec(tmp_path_factory):
    return ModelSpec(MODEL, backend="torch", device="cpu", label_cache=os.fspath(tmp_path_factory.mktemp("cache")))


@pytest.fixture(scope="module")
def local_records(images, rule, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "tags.jsonl"
    with open_runner(MODEL, backend="torch", device="cpu") as runner:
        run_tagging([images], runner, rule, out, workers=0)
    return read_records(out)


@pytest.fixture(scope="module")
def ray_run(ray_local, images, rule, spec, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray") / "tags.jsonl"
    summary = run_tagging_ray([images], spec, rule, out, replicas=2, shard_size=SHARD)
    return out, summary


def _merged(folder, tmp_path, name="all.jsonl"):
    merge_shards(folder, tmp_path / name)
    return read_records(tmp_path / name)


def test_same_records_as_local_engine(ray_run, local_records, tmp_path):
    out, summary = ray_run
    assert (summary.tagged, summary.errors, summary.skipped) == (IMAGES, 1, 0)
    manifest = read_manifest(out)
    assert [s["status"] for s in manifest["shards"]] == ["done"] * 5
    assert sum(s["records"] for s in manifest["shards"]) == IMAGES + 1
    records = _merged(out, tmp_path)
    assert_same_records(records, local_records)
    assert by_path(records)[next(p for p in by_path(records) if p.endswith("broken.jpg"))]["status"] == "error"


def test_sidecar_matches_the_local_engine(ray_run, local_records, images, rule, tmp_path):
    out, _ = ray_run
    meta = read_meta(out)
    assert meta["status"] == "complete" and meta["records"] == IMAGES + 1
    assert (meta["engine"], meta["replicas"], meta["shard_size"]) == ("ray", 2, SHARD)
    with open_runner(MODEL, backend="torch", device="cpu") as runner:
        run_tagging([images], runner, rule, tmp_path / "local.jsonl", workers=0)
    local = read_meta(tmp_path / "local.jsonl")
    for key in ("model_hash", "label_hash", "decision", "labels", "backend", "precision", "preprocess"):
        assert meta[key] == local[key], key
    assert set(local) - {"workers"} <= set(meta)


def test_killed_replica_is_retried_without_duplicates(ray_local, crash_dir, images, rule, spec, local_records, tmp_path):
    (crash_dir / "armed").touch()
    out = tmp_path / "tags.jsonl"
    summary = run_tagging_ray([images], spec, rule, out, replicas=2, shard_size=SHARD)
    assert (crash_dir / "fired").exists() and not (crash_dir / "armed").exists()  # a replica really died
    assert (summary.tagged, summary.errors) == (IMAGES, 1)
    assert sorted(os.listdir(out)) == sorted(["manifest.json"] + [s["file"] for s in read_manifest(out)["shards"]])
    assert_same_records(_merged(out, tmp_path), local_records)  # by_path inside: every image exactly once


def test_resume_redoes_only_damaged_shards(ray_run, images, rule, spec, local_records, tmp_path):
    source, _ = ray_run
    out = tmp_path / "tags.jsonl"
    shutil.copytree(source, out)
    shutil.copy(f"{source}.meta.json", f"{out}.meta.json")
    files = [out / s["file"] for s in read_manifest(out)["shards"]]
    kept = {f: f.stat().st_mtime_ns for f in files[2:]}
    files[0].unlink()
    files[1].write_bytes(files[1].read_bytes()[:100])  # a torn shard: its size no longer matches
    summary = run_tagging_ray([images], spec, rule, out, resume=True, replicas=1, shard_size=SHARD)
    assert summary.skipped == IMAGES + 1 - 2 * SHARD
    assert summary.processed == 2 * SHARD and summary.previous_records == IMAGES + 1 - 2 * SHARD
    assert {f: f.stat().st_mtime_ns for f in kept} == kept  # finished shards untouched
    assert read_meta(out)["records"] == IMAGES + 1 and len(read_meta(out)["runs"]) == 2
    assert_same_records(_merged(out, tmp_path), local_records)


def test_gpu_replicas_get_decoded_shards_with_their_reduced_scale_flags(tmp_path):
    # With GPUs, decoding runs in separate Ray tasks and the replica receives bytes: the flags that
    # --decode checked needs must survive that hand-off, in order, next to the failures.
    from PIL import Image

    from sigrl.config import PreprocessConfig
    from sigrl.tagging.decode import DecodeOptions
    from sigrl.tagging.engines.ray_engine import _decode_shard, _ShardScorer

    Image.new("RGB", (1600, 1200), (200, 30, 30)).save(tmp_path / "a-big.jpg")
    (tmp_path / "b-empty.jpg").write_bytes(b"")
    Image.new("RGB", (40, 30), (1, 2, 3)).save(tmp_path / "c-small.png")
    paths = [os.fspath(p) for p in sorted(tmp_path.iterdir())]
    preprocess = PreprocessConfig(image_size=32, resize_size=32, interpolation="bicubic")
    row = _decode_shard({"index": 0, "digest": "d", "paths": json.dumps(paths)}, preprocess, DecodeOptions(mode="checked"), 2)
    scorer = _ShardScorer.__new__(_ShardScorer)  # only its batching: no runner needed
    scorer.runner, scorer.batch = type("R", (), {"preprocess": preprocess})(), 8
    batches = list(scorer._batches(row))
    assert [[p.name for p in b.paths] for b in batches] == [["a-big.jpg", "c-small.png"], []]
    assert batches[0].reduced.tolist() == [True, False] and batches[0].images.shape == (2, 32, 32, 3)
    assert [(p.name, reason) for p, reason in batches[1].failures] == [("b-empty.jpg", "zero-byte file")]


def test_shards_and_tables_give_the_local_records(ray_local, images, rule, spec, tmp_path):
    # Each tar shard / Parquet file is one Ray shard, read by the local engine's own readers in the
    # replica: the same records (damaged members included), once each, and meta carried.
    import io
    import tarfile

    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    files = sorted((images / "a").iterdir())[:40]
    inputs = []
    for s in range(2):
        tar_path = tmp_path / f"{s:05d}.tar"
        with tarfile.open(tar_path, "w") as tar:
            for i, f in enumerate(files[s * 20 : (s + 1) * 20]):
                data = f.read_bytes() if i != 3 else b"corrupt"
                for name, blob in ((f"{f.stem}.png", data), (f"{f.stem}.txt", f"caption {i}".encode())):
                    info = tarfile.TarInfo(name)
                    info.size = len(blob)
                    tar.addfile(info, io.BytesIO(blob))
        inputs.append(tar_path)
    raw = (tmp_path / "00001.tar").read_bytes()
    (tmp_path / "00001.tar").write_bytes(raw[: raw.find(files[35].stem.encode()) + 600])  # truncated tail
    table = tmp_path / "t.parquet"
    pq.write_table(pa.table({"image": [f.read_bytes() for f in files[:10]] + [b"bad"]}), table, row_group_size=4)
    inputs.append(table)
    pattern = os.fspath(tmp_path / "{00000..00001}.tar")
    local_out = tmp_path / "local.jsonl"
    with open_runner(MODEL, backend="torch", device="cpu") as runner:
        from sigrl.tagging.engines.local import run_job
        from sigrl.tagging.spec import OutputPolicy, ReadOptions, TagJob

        job = TagJob((pattern, os.fspath(table)), OutputPolicy(os.fspath(local_out)), spec, tuple(LABELS), rule,
                     reading=ReadOptions(keep_meta=True), workers=0)
        run_job(job, runner)
    out = tmp_path / "ray.jsonl"
    summary = run_tagging_ray([pattern, table], spec, rule, out, replicas=2, keep_meta=True)
    local = read_records(local_out)
    assert len(local) == 20 + 16 + 11 and sum(r["status"] == "error" for r in local) == 4
    assert summary.processed == len(local) and [s["kind"] for s in read_manifest(out)["shards"]] == ["tar", "tar", "parquet"]
    merged = _merged(out, tmp_path)
    assert_same_records(merged, local)
    assert {r["path"]: r.get("meta") for r in merged} == {r["path"]: r.get("meta") for r in local}
