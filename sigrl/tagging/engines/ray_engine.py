"""`sigrl tag --engine ray`: the tagging job on a Ray cluster, through Ray Data and an actor pool.

    driver:  plan the inputs (sigrl.tagging.inputs), cut the sorted image files into fixed shards
             (sigrl.tagging.outputs.shards); each tar shard or Parquet file is one shard of its own; skip
             the shards already finished, build one Ray Data dataset row per shard
    tasks:   decode a shard's images (the local engine's decoder and thread pool)
    actors:  one model replica each (any backend, loaded once through open_runner); score a
             shard, turn scores into records with the run's decision rule, write the shard file
             atomically, return its manifest entry
    driver:  note finished shards in the manifest as they stream back; write the run sidecar

The shard is the unit of work, of retry and of output. A tar shard or Parquet file is read by the
replica that scores it, streamed with the local engine's own readers (sigrl.tagging.inputs.webdataset and
sigrl.tagging.inputs.tables), not by Ray Data's `read_webdataset` / `read_parquet`: those decode members
with their own decoder, fail a whole read task on one corrupt member or a truncated tail instead
of giving it an error record, and spread one input file over several blocks, so no block would
stand for exactly one shard that can be retried and resumed on its own. Reading inside the
replica keeps every record identical to the local engine's, and one input file = one output
shard = one unit of retry. Ray restarts an actor that dies and
retries its shard (Ray Data's default for actor pools); since a shard file is only ever renamed
into place whole, a retried shard replaces its own file and every image is recorded exactly once.

Where decoding runs: with GPU replicas, in separate CPU tasks (Ray Data `map`) that overlap with
inference and ship decoded images to the actors through the object store. CPU replicas decode their
own shard in a thread pool overlapped with inference, as the local engine does: there the decode
tasks would only compete with the actors for the same cores and copy every image once more.

Ray is imported only here, and only when a run starts: `pip install 'sigrl[ray]'`.

Test-only: when the environment variable SIGRL_RAY_TEST_CRASH_DIR names a folder that holds a file
`armed`, the first scoring call that sees it renames it to `fired` and kills its own process
(os._exit), so tests can check that Ray's retry leaves every image recorded exactly once.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any, Callable, Iterator

import numpy as np

from sigrl.decode import DecodeOptions
from sigrl.errors import SigrlError
from sigrl.optional import require
from sigrl.tagging.decisions.rule import DecisionRule
from sigrl.tagging.inputs.plan import Container, InputPlan, count_container, iter_container, plan_inputs
from sigrl.tagging.records import error_record, with_meta
from sigrl.tagging.runs import sidecar
from sigrl.tagging.scoring.pipeline import Batch, iter_batches
from sigrl.tagging.scoring.scorer import BatchScorer
from sigrl.tagging.outputs.shards import (
    Manifest, Shard, container_shard, make_shard, open_manifest, plan_shards, remove_stale, shard_format, write_shard,
)
from sigrl.tagging.runs.metafile import meta_path
from sigrl.tagging.runs.summary import Progress, Summary
from sigrl.tagging.spec import ModelSpec, ReadOptions, TagJob

log = logging.getLogger(__name__)

INSTALL_HINT = "the ray engine needs Ray: pip install 'sigrl[ray]'"
CRASH_ENV = "SIGRL_RAY_TEST_CRASH_DIR"
DEFAULT_SHARD_SIZE = 1000
MANIFEST_INTERVAL_S = 10.0


def require_ray() -> Any:
    """The `ray` module with Ray Data, or a SigrlError that says how to install it."""
    return require("ray", INSTALL_HINT, "data")


def run_job_ray(job: TagJob, plan: InputPlan | None = None, progress: Progress | None = None,
                echo: Callable[[str], None] | None = None) -> Summary:
    """`job` on Ray: the local engine's records and sidecar, written as shards into the folder
    job.output.path (see sigrl.tagging.outputs.shards); `echo` gets the status lines.

    job.engine.address: None starts a local Ray instance (or uses the one this process already
    runs), "auto" joins the cluster this machine belongs to, "ray://host:port" a remote one.
    job.engine.replicas: model replicas (actors); default one per GPU, else one per two CPUs.
    job.workers: decoding threads per decode task (default 1).
    """
    ray = require_ray()
    output_path = job.output.path
    shard_format(output_path)  # a wrong folder name fails before Ray starts
    started = time.perf_counter()
    plan = plan_inputs(job.inputs, job.reading.image_column) if plan is None else plan
    if echo is not None:
        echo(f"engine: ray ({job.engine.address or 'local Ray instance'}), shards of {job.engine.shard_size} images -> {output_path}/")
        echo(f"decision: {job.rule_source}")
    found = plan.files
    shards = plan_shards(found.paths, job.engine.shard_size)
    unreadable = [(p, r) for p, r in found.problems if r.startswith("unreadable")]
    if unreadable:  # as in the local engine: folders that could not be read get error records
        shards.append(make_shard(len(shards), [p for p, _ in unreadable]))
    shards.extend(container_shard(len(shards), c.path, c.kind) for c in plan.containers)
    manifest = open_manifest(output_path, shards, job.engine.shard_size, resume=job.output.resume,
                             overwrite=job.output.overwrite)
    own_ray = _connect(ray, job.engine.address)
    try:
        return _run(ray, job, plan, unreadable, manifest, progress, started)
    finally:
        if own_ray:
            ray.shutdown()


def _run(ray: Any, job: TagJob, plan: InputPlan, unreadable: list, manifest: Manifest, progress: Progress | None,
         started: float) -> Summary:
    spec, labels, output_path = job.model, list(job.labels), job.output.path
    workers = 1 if job.workers is None else job.workers
    use_gpu, replicas = _placement(ray, spec, job.engine.replicas)
    described = _describe(ray, spec, labels, use_gpu)
    batch = max(1, min(job.batch_size, described.max_batch))
    extra = {"engine": "ray", "replicas": replicas, "shard_size": manifest.shard_size}
    meta = sidecar.run_meta(described, job, batch, workers, extra)
    previous = sidecar.check_resumable(output_path, meta, bool(manifest.entries)) if job.output.resume else None
    runs = sidecar.earlier_runs(previous)
    counts = {c.path: count_container(c, lambda p: False)[0] for c in plan.containers}
    summary = Summary(output=Path(output_path), meta=meta_path(output_path),
                      discovered=len(plan.files.paths) + sum(counts.values()), batch_size=batch,
                      label_side=described.label_side)
    summary.problems = [(os.fspath(p), r) for p, r in plan.files.problems if not r.startswith("unreadable")]
    summary.previous_records = manifest.record_count()
    size = {s.index: (counts[s.paths[0]] if s.kind != "files" else len(s.paths)) for s in manifest.shards}
    summary.skipped = sum(size[s.index] for s in manifest.shards if s.index in manifest.entries)
    summary.timings.update({"labels_s": described.labels_s, "decode_s": 0.0, "infer_s": 0.0, "write_s": 0.0})
    todo = manifest.todo()
    problem_shard = [s for s in todo if s.kind == "files" and unreadable and s.paths == tuple(os.fspath(p) for p, _ in unreadable)]
    for shard in problem_shard:
        todo.remove(shard)
        _write_problems(manifest, shard, unreadable, summary, job)
    with sidecar.recorded_run(output_path, meta, summary, runs, started, progress) as save_running:
        try:
            if progress is not None:
                progress.start(sum(size[s.index] for s in todo), summary.skipped)
            if todo:
                _stream(ray, todo, manifest, job, batch, workers, described.preprocess, use_gpu, replicas, progress,
                        summary, save_running)
        finally:
            manifest.save()
        for name in remove_stale(manifest):  # only once every shard of this plan is written
            log.info("removed %s: a shard of an earlier plan", name)
    return summary


def _connect(ray: Any, address: str | None) -> bool:
    """Joins or starts Ray; True when this call started it (and must shut it down)."""
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, include_dashboard=False, log_to_driver=True)
    except ConnectionError as err:
        raise SigrlError(f"cannot reach the Ray cluster at {address!r} ({err}); start it with `ray start --head` "
                         "or leave out --address to run on this machine") from None
    return True


def _placement(ray: Any, spec: ModelSpec, replicas: int | None) -> tuple[bool, int]:
    """(replicas use a GPU each, number of replicas)."""
    resources = ray.cluster_resources()
    gpus, cpus = int(resources.get("GPU", 0)), int(resources.get("CPU", 1))
    use_gpu = spec.device == "cuda" or (spec.device == "auto" and gpus > 0)
    if use_gpu and gpus == 0:
        raise SigrlError("--device cuda was asked for but the Ray cluster has no GPUs; use --device cpu")
    default = gpus if use_gpu else max(1, cpus // 2)
    replicas = default if replicas is None else replicas
    if replicas < 1:
        raise SigrlError(f"--replicas must be >= 1, got {replicas}")
    return use_gpu, replicas


def _describe(ray: Any, spec: ModelSpec, labels: list[str], use_gpu: bool) -> SimpleNamespace:
    """What the run's sidecar says about the model, asked of a worker placed like a replica (the
    driver may have no GPU, or not the backend). It also warms a shared label cache."""
    task = ray.remote(_describe_task).options(num_cpus=1, num_gpus=1 if use_gpu else 0, max_retries=1)
    try:
        info = ray.get(task.remote(spec, labels))
    except Exception as err:  # a user's mistake (bad model path) arrives wrapped by Ray
        cause = getattr(err, "cause", None)
        if isinstance(cause, SigrlError):
            raise SigrlError(str(cause)) from None
        raise
    return SimpleNamespace(**info)


def _describe_task(spec: ModelSpec, labels: list[str]) -> dict[str, Any]:
    with spec.open() as runner:
        before = getattr(runner, "text_runs", None)
        start = time.perf_counter()
        runner.label_side(labels)
        labels_s = time.perf_counter() - start
        encoded = before is not None and runner.text_runs > before
        return {
            "name": runner.name, "model_hash": runner.model_hash, "backend": runner.backend, "reason": runner.reason,
            "device": runner.device, "precision": runner.precision, "prompt": runner.prompt,
            "preprocess": runner.preprocess, "max_batch": runner.max_batch(len(labels)),
            "label_side": "encoded" if encoded else "cache", "labels_s": labels_s,
        }


def _write_problems(manifest: Manifest, shard: Shard, unreadable: list, summary: Summary, job: TagJob) -> None:
    records = with_meta([error_record(p, r) for p, r in unreadable], {}, job.reading.keep_meta)
    manifest.finish(write_shard(manifest.out_dir, shard, records, manifest.suffix, score_labels(job.rule)))
    summary.errors += len(records)


def _stream(ray: Any, todo: list[Shard], manifest: Manifest, job: TagJob, batch: int, workers: int, preprocess: Any,
            use_gpu: bool, replicas: int, progress: Progress | None, summary: Summary, save_meta: Any) -> None:
    """Runs the Ray Data pipeline over the unfinished shards and notes each finished one."""
    import ray.data

    ray.data.DataContext.get_current().enable_progress_bars = False
    decoding = job.decoding
    rows = [{"index": s.index, "digest": s.digest, "paths": json.dumps(list(s.paths)), "kind": s.kind} for s in todo]
    ds = ray.data.from_items(rows, override_num_blocks=len(rows))
    if use_gpu:  # decode on CPU tasks, overlapped with the GPUs; CPU replicas decode themselves
        ds = ds.map(_decode_shard, fn_kwargs={"preprocess": preprocess, "decoding": decoding, "threads": workers},
                    num_cpus=1)
    ds = ds.map_batches(
        _ShardScorer, batch_size=1, batch_format="pyarrow",
        compute=ray.data.ActorPoolStrategy(size=replicas),
        fn_constructor_kwargs={"spec": job.model, "labels": list(job.labels), "rule": job.rule, "batch": batch,
                               "threads": workers, "decoding": decoding, "out_dir": os.fspath(manifest.out_dir),
                               "suffix": manifest.suffix, "reading": job.reading},
        num_cpus=1, num_gpus=1 if use_gpu else 0,
    )
    last_save = time.monotonic()
    for entry in ds.iter_rows():
        entry = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in entry.items()}
        if entry["index"] in manifest.entries:  # a shard reported twice is still one file
            continue
        for key in ("decode_s", "infer_s", "write_s"):
            summary.timings[key] += entry.pop(key)
        summary.rechecked += entry.pop("rechecked")
        manifest.finish(entry)
        summary.tagged += entry["records"] - entry["errors"]
        summary.errors += entry["errors"]
        if progress is not None:
            progress.update(entry["images"], summary.errors)
        if time.monotonic() - last_save > MANIFEST_INTERVAL_S:
            manifest.save()  # so a killed driver still leaves recent progress behind
            save_meta()
            last_save = time.monotonic()


def _decode_shard(row: dict[str, Any], preprocess: Any, decoding: DecodeOptions, threads: int) -> dict[str, Any]:
    """One shard's images decoded (uint8 [n, S, S, 3] as raw bytes) plus its failures.

    A tar shard or table passes through undecoded: its replica streams it (see the module docstring).
    """
    start = time.perf_counter()
    if row.get("kind", "files") != "files":
        return {**row, "ok": "[]", "failures": "[]", "reduced": "[]", "images": None, "decode_s": 0.0}
    paths = json.loads(row["paths"])
    ok: list[str] = []
    failures: list[list[str]] = []
    reduced: list[bool] = []
    parts: list[np.ndarray] = []
    for item in iter_batches(paths, preprocess, batch_size=max(1, len(paths)), workers=threads, decoding=decoding):
        ok.extend(os.fspath(p) for p in item.paths)
        failures.extend([os.fspath(p), reason] for p, reason in item.failures)
        reduced.extend(bool(r) for r in item.reduced)
        parts.append(item.images)
    images = np.concatenate(parts) if parts else np.zeros((0, 0, 0, 3), np.uint8)  # [n, S, S, 3]
    return {"index": row["index"], "digest": row["digest"], "paths": row["paths"], "kind": row.get("kind", "files"), "ok": json.dumps(ok),
            "failures": json.dumps(failures), "reduced": json.dumps(reduced), "images": images.tobytes(),
            "decode_s": time.perf_counter() - start}


class _ShardScorer:
    """A Ray Data actor: one model replica that scores whole shards and writes their files."""

    def __init__(self, spec: ModelSpec, labels: list[str], rule: DecisionRule, batch: int, threads: int,
                 decoding: DecodeOptions, out_dir: str, suffix: str, reading: ReadOptions) -> None:
        self.runner = spec.open()
        self.reading = reading
        self.labels, self.rule, self.batch = labels, rule, batch
        self.threads, self.decoding = threads, decoding
        self.out_dir, self.suffix = out_dir, suffix
        self.runner.label_side(labels)  # before the first shard, not inside its timing

    def __call__(self, table: Any) -> dict[str, list]:
        out: dict[str, list] = {k: [] for k in ("index", "file", "images", "records", "errors", "bytes", "rechecked",
                                                 "decode_s", "infer_s", "write_s")}
        for row in table.to_pylist():
            _crash_for_tests()
            entry = self._score(row)
            for key in out:
                out[key].append(entry[key])
        return out

    def _score(self, row: dict[str, Any]) -> dict[str, Any]:
        timings: dict[str, float] = {}
        # The local engine's scorer (infer, then the near-tie rechecks); batches come from _batches,
        # so a GPU replica scores what the decode tasks shipped and never decodes on the device.
        scorer = BatchScorer(self.runner, self.labels, self.rule, self.batch, self.threads, self.decoding, timings,
                             device_decode=False)
        records = [r for done, final in scorer.score(self._batches(row)) for r in self._records(done, final)]
        if row.get("kind", "files") == "files":  # shipped decodes list failures last: back to the shard's order
            rank = {os.fspath(Path(p)): i for i, p in enumerate(json.loads(row["paths"]))}
            records.sort(key=lambda r: rank.get(os.fspath(r["path"]), len(rank)))
        mark = time.perf_counter()
        shard = Shard(row["index"], tuple(json.loads(row["paths"])), row["digest"], row.get("kind", "files"))
        entry = write_shard(self.out_dir, shard, records, self.suffix, score_labels(self.rule))
        decode_s = (row.get("decode_s") or 0.0) + timings.get("decode_wait_s", 0.0)  # waiting: CPU replicas only
        infer_s = timings.get("infer_s", 0.0) + timings.get("recheck_s", 0.0)  # rechecks included
        return {**entry, "decode_s": decode_s, "infer_s": infer_s, "rechecked": scorer.rechecked,
                "write_s": time.perf_counter() - mark}

    def _records(self, batch: Batch, scores: np.ndarray) -> list:
        return batch.records(scores, self.rule, self.reading.keep_meta)

    def _batches(self, row: dict[str, Any]) -> Iterator[Batch]:
        """The inference batches of one shard (the last one may hold only failures)."""
        if row.get("kind", "files") != "files":  # a tar shard or table, streamed by the local engine's reader
            (path,) = json.loads(row["paths"])
            members = iter_container(Container(path, row["kind"]), lambda p: False, self.reading)
            return iter_batches(members, self.runner.preprocess, self.batch, self.threads, self.decoding)
        if row.get("images") is None:  # CPU replica: decode here, overlapped like the local engine
            return iter_batches(json.loads(row["paths"]), self.runner.preprocess, self.batch, self.threads,
                                self.decoding)
        return self._shipped(row)

    def _shipped(self, row: dict[str, Any]) -> Iterator[Batch]:
        """The batches of a shard decoded by a decode task (GPU replicas)."""
        size = self.runner.preprocess.image_size
        ok, failures = json.loads(row["ok"]), json.loads(row["failures"])
        reduced = np.array(json.loads(row["reduced"]), dtype=bool)  # [n]
        images = np.frombuffer(row["images"], dtype=np.uint8).reshape(len(ok), size, size, 3)  # [n, S, S, 3]
        for i in range(0, len(ok), self.batch):
            yield Batch([Path(p) for p in ok[i : i + self.batch]], images[i : i + self.batch],
                        reduced=reduced[i : i + self.batch])
        yield Batch([], images[:0], failures=[(Path(p), reason) for p, reason in failures])


def score_labels(rule: DecisionRule) -> list[str] | None:
    """The labels a Parquet shard names in its key-value metadata: those of `scores` (--scores all)."""
    return list(rule.labels) if rule.scores_mode == "all" else None


def _crash_for_tests() -> None:
    """See the module docstring: a test-only way to kill a replica in the middle of a run."""
    folder = os.environ.get(CRASH_ENV)
    if not folder:
        return
    try:
        os.rename(os.path.join(folder, "armed"), os.path.join(folder, "fired"))  # atomic: one actor wins
    except OSError:
        return
    os._exit(1)
