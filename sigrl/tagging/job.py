"""A whole tagging run: discover -> decode (thread pool) -> runner.infer -> decide -> record -> write.

The pieces live in the sibling modules; this module wires them together and owns what only a whole
run knows: which images an earlier run already recorded (resume), the counts and the timings. The
metadata sidecar, and the rule that an output never mixes records of different models, label sets
or decision rules, live in sigrl.tagging.sidecar (shared with the Ray engine).

Decoding runs in `pipeline.iter_batches`' thread pool and is overlapped with inference: while the
runner scores batch k, the pool decodes batches k+1..k+queue_depth. `Summary.timings` says where
the calling thread spent its time (waiting for decoded images, inferring, writing), which is
what the benchmark reports as "decode vs inference".
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from sigrl.errors import SigrlError
from sigrl.tagging.calibrate import stored_thresholds
from sigrl.tagging.decisions import DecisionRule, make_rule, read_thresholds
from sigrl.decode import DecodeOptions
from sigrl.tagging.pipeline import iter_batches
from sigrl.tagging.recheck import Rechecker
from sigrl.tagging.records import batch_records, error_record
from sigrl.tagging.sidecar import Progress, Summary, check_resumable, earlier_runs, recorded_run, run_meta
from sigrl.tagging.sources import Discovery, discover
from sigrl.tagging.writers import Output, holds_records, meta_path, open_output

log = logging.getLogger(__name__)

META_INTERVAL_S = 30.0


def resolve_model(model: str | None) -> str:
    """The model reference to run: the one given, else the embedded default model's file."""
    if model:
        return model
    try:
        from sigrl import default_model
    except ImportError:
        raise SigrlError(
            "this install has no embedded default model; pass --model with a checkpoint, an export "
            "directory, a config name or open_clip:ARCH:TAG"
        ) from None
    path = Path(default_model.path())
    if not path.exists():
        raise SigrlError(f"the embedded default model is missing ({path}); reinstall sigrl or pass --model")
    return os.fspath(path)


def apply_prompt(runner: Any, template: str | None) -> None:
    """Uses `template` for the label prompts instead of the model's own."""
    if template is not None:
        runner.set_prompt(template)


def choose_rule(
    labels: Sequence[str],
    threshold: float | None = None,
    threshold_file: str | os.PathLike[str] | None = None,
    topk: int | None = None,
    scores_mode: str = "tags",
    model: str | os.PathLike[str] | None = None,
    default_topk: int = 5,
) -> tuple[DecisionRule, str]:
    """The decision rule from the user's options, and a phrase saying where it came from.

    With none given: the model's stored thresholds when they were fitted for exactly these labels
    (`sigrl calibrate`), else the `default_topk` best labels. Scores are relative to the label
    set, so no global threshold could be a sensible default.
    """
    per_label = read_thresholds(threshold_file, labels) if threshold_file is not None else None
    parts = []
    if threshold is None and per_label is None and topk is None:
        stored = stored_thresholds(model, labels)
        if stored is not None:
            path, per_label = stored
            parts.append(f"thresholds fitted for these labels ({path})")
        else:
            topk = min(default_topk, len(labels))
            parts.append(f"top-{topk} (default; choose with --threshold, --threshold-file or --topk)")
    else:
        if per_label is not None:
            parts.append(f"thresholds from {threshold_file} ({len(per_label)} labels)")
        if threshold is not None:
            parts.append(f"threshold {threshold:g}" + (" for the other labels" if per_label else ""))
        if topk is not None:
            parts.append(f"top-{topk}")
    return make_rule(labels, threshold, per_label, topk, scores_mode), ", ".join(parts)


def run_tagging(
    inputs: Sequence[str | os.PathLike[str]] | Discovery,
    runner: Any,
    labels: Sequence[str],
    rule: DecisionRule,
    output_path: str | os.PathLike[str],
    resume: bool = False,
    overwrite: bool = False,
    batch_size: int = 8,
    workers: int = 2,
    decoding: DecodeOptions = DecodeOptions(),
    progress: Progress | None = None,
    extra_meta: dict[str, Any] | None = None,
) -> Summary:
    """Tags every image under `inputs` into `output_path`; see the module docstring.

    `runner` is any `sigrl.runtime.Runner` (infer, preprocess, max_batch, model_hash, ...).
    Per-image failures become error records; an error of the runner itself stops the run (the
    records written so far stay valid and `resume` continues from them).
    """
    labels = list(labels)
    if tuple(labels) != rule.labels:
        raise ValueError("the decision rule was made for a different label list")
    started = time.perf_counter()
    found = inputs if isinstance(inputs, Discovery) else discover(inputs)  # found early by a caller
    batch = max(1, min(batch_size, runner.max_batch(len(labels))))
    if batch < batch_size:
        log.info("batch size %d capped to %d for %d labels (head memory)", batch_size, batch, len(labels))
    meta = run_meta(runner, labels, rule, batch, workers, decoding, extra_meta)
    summary = Summary(output=Path(output_path), meta=meta_path(output_path), discovered=len(found.paths), batch_size=batch)
    # Checked before the output is opened, so a refused resume leaves every file as it was.
    previous = check_resumable(output_path, meta, holds_records(output_path)) if resume else None
    with open_output(output_path, resume=resume, overwrite=overwrite) as out:
        summary.repaired_bytes, summary.previous_records = out.repaired_bytes, len(out.done)
        todo = [p for p in found.paths if not out.is_done(p)]
        summary.skipped = len(found.paths) - len(todo)
        runs = earlier_runs(previous)
        # The sidecar is saved ("running") before the first record, so no output holds records
        # that it does not describe (resume refuses such a file).
        with recorded_run(output_path, meta, summary, runs, started, progress) as save_running:
            summary.errors += _record_problems(out, found.problems, summary)
            summary.label_side = _warm_labels(runner, labels, summary.timings)
            try:
                _tag(out, todo, runner, labels, rule, batch, workers, decoding, progress, summary, save_running)
            finally:
                out.close()  # every record on disk before the final metadata
    return summary


def _tag(
    out: Output,
    todo: list[Path],
    runner: Any,
    labels: list[str],
    rule: DecisionRule,
    batch: int,
    workers: int,
    decoding: DecodeOptions,
    progress: Progress | None,
    summary: Summary,
    save_meta: Any,
) -> None:
    timings = summary.timings
    last_save = time.monotonic()
    for key in ("decode_wait_s", "infer_s", "recheck_s", "write_s"):
        timings.setdefault(key, 0.0)  # present in the metadata even when never used
    if progress is not None:
        progress.start(len(todo), summary.skipped)
    batches = iter_batches(todo, runner.preprocess, batch_size=batch, workers=workers, decoding=decoding)

    def write(finals: list) -> None:
        nonlocal last_save
        for item, scores in finals:
            out.write(batch_records(item.paths, scores, rule, item.failures))
            summary.tagged += len(item.paths)
            summary.errors += len(item.failures)
            if progress is not None:
                progress.update(len(item), summary.errors)
        if time.monotonic() - last_save > META_INTERVAL_S:
            save_meta()  # so a killed run still leaves recent counts behind
            last_save = time.monotonic()

    clock = _Clock(timings)
    try:
        with Rechecker(runner, labels, rule, decoding, workers) as rechecker:
            while True:
                with clock("decode_wait_s"):
                    item = next(batches, None)
                if item is None:
                    break
                with clock("infer_s"):
                    scores = runner.infer(item.images, labels) if item.paths else np.zeros((0, len(labels)), np.float32)  # [b, N]
                with clock("recheck_s"):
                    finals = rechecker.push(item, scores)
                summary.rechecked = rechecker.rechecked
                with clock("write_s"):
                    write(finals)
            with clock("recheck_s"):
                finals = rechecker.finish()
            with clock("write_s"):
                write(finals)
    finally:
        batches.close()  # stops the decode pool at once when the consumer failed


class _Clock:
    """`with clock(key):` adds the block's wall time to timings[key]."""

    def __init__(self, timings: dict[str, float]) -> None:
        self.timings = timings

    @contextmanager
    def __call__(self, key: str) -> Iterator[None]:
        start = time.perf_counter()
        try:
            yield
        finally:
            self.timings[key] = self.timings.get(key, 0.0) + time.perf_counter() - start


def _record_problems(out: Output, problems: list[tuple[Path, str]], summary: Summary) -> int:
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
    out.write(failures)
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


