"""The local engine: a TagJob run in this process.

    plan inputs -> decode (thread pool) -> runner.infer -> decide -> record -> write

The pieces live in the sibling modules (the job value in sigrl.tagging.spec, the inputs in
sigrl.tagging.inputs, the decode/infer/recheck loop in sigrl.tagging.scoring); this module wires
them together and owns what only a whole run knows: which inputs an earlier run already recorded
(resume), the counts and the timings. The metadata sidecar, and the rule that an output never
mixes records of different models, label sets or decision rules, live in sigrl.tagging.runs.sidecar
(shared with the Ray engine).

Loose files are listed (and sorted) before the run; tar shards and Parquet tables are streamed,
one member at a time, after the files, with only their members counted beforehand.

Decoding runs in `pipeline.iter_batches`' thread pool and is overlapped with inference: while the
runner scores batch k, the pool decodes batches k+1..k+queue_depth. `Summary.timings` says where
the calling thread spent its time (waiting for decoded images, inferring, writing), which is
what the benchmark reports as "decode vs inference".
"""

from __future__ import annotations

import logging
import itertools
import os
import time
from contextlib import closing
from pathlib import Path
from typing import Any, Iterator

from sigrl.machine import usable_cores
from sigrl.tagging.inputs.plan import InputPlan, count_container, iter_members, plan_inputs
from sigrl.tagging.outputs.writer import Output, holds_records, open_output
from sigrl.tagging.records import error_record, with_meta
from sigrl.tagging.runs.metafile import meta_path
from sigrl.tagging.runs.sidecar import check_resumable, earlier_runs, recorded_run, run_meta
from sigrl.tagging.runs.summary import Progress, Summary
from sigrl.tagging.scoring.pipeline import Input
from sigrl.tagging.scoring.scorer import BatchScorer
from sigrl.tagging.spec import TagJob

log = logging.getLogger(__name__)

META_INTERVAL_S = 30.0


def default_workers() -> int:
    """Decoding threads of the local engine when the job leaves it open."""
    return max(2, min(usable_cores(), 16))  # decoding releases the GIL; 2 already overlaps on one core


def run_job(job: TagJob, runner: Any, plan: InputPlan | None = None, progress: Progress | None = None) -> Summary:
    """Runs `job` with an open `runner` (any `sigrl.runtime.Runner`: infer, preprocess, max_batch,
    model_hash, ...) into job.output; `plan` when the caller planned the inputs already.

    Per-input failures become error records; an error of the runner itself stops the run (the
    records written so far stay valid and a resumed run continues from them).
    """
    started = time.perf_counter()
    labels = list(job.labels)
    plan = plan_inputs(job.inputs, job.reading.image_column) if plan is None else plan
    workers = default_workers() if job.workers is None else job.workers
    batch = max(1, min(job.batch_size, runner.max_batch(len(labels))))
    if batch < job.batch_size:
        log.info("batch size %d capped to %d for %d labels (head memory)", job.batch_size, batch, len(labels))
    output_path = job.output.path
    meta = run_meta(runner, job, batch, workers)
    summary = Summary(output=Path(output_path), meta=meta_path(output_path), discovered=len(plan.files.paths), batch_size=batch)
    # Checked before the output is opened, so a refused resume leaves every file as it was.
    previous = check_resumable(output_path, meta, holds_records(output_path)) if job.output.resume else None
    score_labels = labels if job.rule.scores_mode == "all" else None
    with open_output(output_path, resume=job.output.resume, overwrite=job.output.overwrite, score_labels=score_labels) as out:
        summary.repaired_bytes, summary.previous_records = out.repaired_bytes, len(out.done)
        todo = [p for p in plan.files.paths if not out.is_done(p)]
        summary.skipped = len(plan.files.paths) - len(todo)
        total = len(todo)
        for container in plan.containers:  # headers and metadata only; members are streamed later
            members, done = count_container(container, out.is_done)
            summary.discovered += members
            summary.skipped += done
            total += members - done
        runs = earlier_runs(previous)
        # The sidecar is saved ("running") before the first record, so no output holds records
        # that it does not describe (resume refuses such a file).
        with recorded_run(output_path, meta, summary, runs, started, progress) as save_running:
            summary.errors += _record_problems(out, plan.files.problems, summary, job.reading.keep_meta)
            summary.label_side = _warm_labels(runner, labels, summary.timings)
            inputs: Iterator[Input] = itertools.chain(todo, iter_members(
                plan.containers, out.is_done, job.reading, summary.problems))
            try:
                _tag(out, inputs, total, runner, job, batch, workers, progress, summary, save_running)
            finally:
                out.close()  # every record on disk before the final metadata
    return summary


def _tag(
    out: Output,
    inputs: Iterator[Input],
    total: int,
    runner: Any,
    job: TagJob,
    batch: int,
    workers: int,
    progress: Progress | None,
    summary: Summary,
    save_meta: Any,
) -> None:
    timings = summary.timings
    last_save = time.monotonic()
    for key in ("decode_wait_s", "infer_s", "recheck_s", "write_s"):
        timings.setdefault(key, 0.0)  # present in the metadata even when never used
    if progress is not None:
        progress.start(total, summary.skipped)
    scorer = BatchScorer(runner, job.labels, job.rule, batch, workers, job.decoding, timings)
    with closing(scorer(inputs)) as scored:
        for item, scores in scored:
            summary.rechecked, summary.gpu_decoded = scorer.rechecked, scorer.gpu_decoded
            start = time.perf_counter()
            out.write(item.records(scores, job.rule, job.reading.keep_meta))
            summary.tagged += len(item.paths)
            summary.errors += len(item.failures)
            if progress is not None:
                progress.update(len(item), summary.errors)
            if time.monotonic() - last_save > META_INTERVAL_S:
                save_meta()  # so a killed run still leaves recent counts behind
                last_save = time.monotonic()
            timings["write_s"] += time.perf_counter() - start
    summary.rechecked, summary.gpu_decoded = scorer.rechecked, scorer.gpu_decoded


def _record_problems(out: Output, problems: list[tuple[Path, str]], summary: Summary, keep_meta: bool) -> int:
    """Unreadable folders hide images, so they get error records (and fail the run); links that
    were skipped because they loop or repeat a folder are only noted."""
    failures = []
    for path, reason in problems:
        if reason.startswith("unreadable"):
            if not out.is_done(path):
                failures.append(error_record(path, reason))
        else:
            summary.problems.append((os.fspath(path), reason))
            log.warning("%s: %s", path, reason)
    out.write(with_meta(failures, {}, keep_meta))
    return len(failures)


def _warm_labels(runner: Any, labels: list[str], timings: dict[str, float]) -> str:
    """Computes (or loads) the label side before the clock of the image loop starts."""
    before = getattr(runner, "text_runs", None)
    start = time.perf_counter()
    if hasattr(runner, "label_side"):
        runner.label_side(labels)
    timings["labels_s"] = time.perf_counter() - start
    if before is None:
        return "unknown"
    return "encoded" if runner.text_runs > before else "cache"
