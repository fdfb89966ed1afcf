"""Parallel decoding overlapped with the consumer (inference), in input order, memory-bounded.

Threads, not processes: Pillow releases the GIL while decoding and resizing, and on the 2-core
machines this project is measured on a 2-thread pool beat a 2-process pool (no pickling of
arrays between processes). Each worker writes its image straight into a preallocated batch
array, so a decoded image is copied once (only batches with failures are compacted).

At most `queue_depth` batches are in flight (being decoded or waiting for the consumer); the
consumer's pace therefore bounds memory to queue_depth * batch_size * S * S * 3 bytes (plus, for
images read from tar shards or tables, their encoded bytes).

Inputs are file paths, or Members (sigrl.tagging.inputs.member: an image inside a tar shard or a Parquet
table, as its record path and encoded bytes); both go through the same decoder.
"""

from __future__ import annotations

import itertools
import logging
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, TypeVar, Union

import numpy as np

from sigrl.config import PreprocessConfig
from sigrl.decode import DecodeError, DecodeOptions, decode_noting_scale
from sigrl.errors import SigrlError
from sigrl.tagging.decisions.rule import DecisionRule
from sigrl.tagging.inputs.member import Member
from sigrl.tagging.records import Record, batch_records, with_meta

_Work = TypeVar("_Work")

log = logging.getLogger(__name__)

Input = Union[str, "os.PathLike[str]", Member]


@dataclass
class Batch:
    """Decoded images of one batch, in input order, and the inputs that failed (in input order).

    `images` may have zero rows when every input of the batch failed.
    """

    paths: list[Path | str]  # record paths: a file's Path, a Member's path
    images: np.ndarray  # [b, S, S, 3] uint8, row i is paths[i]
    failures: list[tuple[Path | str, str]] = field(default_factory=list)  # (path, reason)
    reduced: np.ndarray | None = None  # [b] bool: decoded at reduced scale; None: none was
    sources: list[Path | Member] | None = None  # what row i was decoded from; None: paths
    meta: dict[str, Mapping[str, Any]] = field(default_factory=dict)  # record path -> Member.meta
    failure_rows: list[int] | None = None  # where each failure stood among the batch's inputs

    def __post_init__(self) -> None:
        if self.reduced is None:
            self.reduced = np.zeros(len(self.paths), dtype=bool)

    def source(self, index: int) -> Path | str | Member:
        """What row `index` was decoded from, to decode it again (--decode checked)."""
        return self.paths[index] if self.sources is None else self.sources[index]

    def __len__(self) -> int:
        return len(self.paths) + len(self.failures)

    def records(self, scores: np.ndarray, rule: DecisionRule, keep_meta: bool = False) -> list[Record]:
        """The batch's records in input order (failures where they stood), meta included (with
        `keep_meta` in every record, `{}` where an input has none)."""
        records = batch_records(self.paths, scores, rule, self.failures, self.failure_rows)
        return with_meta(records, self.meta, keep_meta)


@dataclass
class _Pending:
    paths: list[Path | Member]
    images: np.ndarray  # [n, S, S, 3], filled by the workers
    reduced: np.ndarray  # [n] bool, filled by the workers
    results: list[Future | str | None]  # per image: a future, or (inline decode) None / reason


def iter_batches(
    paths: Iterable[Input],
    preprocess: PreprocessConfig,
    batch_size: int = 8,
    workers: int = 2,
    decoding: DecodeOptions = DecodeOptions(),
    queue_depth: int = 4,
) -> Iterator[Batch]:
    """Decoded batches of `paths`, in order; every input appears once, as an image or a failure.

    `paths` may be a lazy iterator. workers=0 decodes in the calling thread (for debugging).
    Closing the generator early, or an exception in the consumer (KeyboardInterrupt included),
    cancels queued decodes and waits only for those already running.
    """
    check_batching(batch_size, queue_depth, f"workers must be >= 0, got {workers}" if workers < 0 else None)
    # Arguments are checked now; the work (and the thread pool) starts at the first next().
    return _batches(iter(paths), preprocess, batch_size, workers, decoding, queue_depth)


def check_batching(batch_size: int, queue_depth: int, workers_problem: str | None) -> None:
    """The argument checks of both decode pipelines; `workers_problem` says what is wrong with the
    number of decode threads (each pipeline has its own minimum), or None."""
    if batch_size < 1:
        raise SigrlError(f"batch size must be >= 1, got {batch_size}")
    if workers_problem is not None:
        raise SigrlError(workers_problem)
    if queue_depth < 1:
        raise SigrlError(f"queue depth must be >= 1, got {queue_depth}")


def _batches(
    source: Iterator[Input],
    preprocess: PreprocessConfig,
    batch_size: int,
    workers: int,
    decoding: DecodeOptions,
    queue_depth: int,
) -> Iterator[Batch]:
    size = preprocess.image_size
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="sigrl-decode") if workers else None

    def start(chunk: list[Path | Member]) -> _Pending:
        item = _Pending(chunk, np.empty((len(chunk), size, size, 3), dtype=np.uint8), np.zeros(len(chunk), dtype=bool), [])
        if pool is None:
            item.results = [_decode_into(p, item, i, preprocess, decoding) for i, p in enumerate(chunk)]
        else:
            item.results = [pool.submit(_decode_into, p, item, i, preprocess, decoding) for i, p in enumerate(chunk)]
        return item

    def finish(item: _Pending) -> Batch:
        return _assemble(item, [r.result() if isinstance(r, Future) else r for r in item.results])

    def cancel(item: _Pending) -> None:
        for r in item.results:
            if isinstance(r, Future):
                r.cancel()

    try:
        yield from read_ahead(chunks(source, batch_size), queue_depth, start, finish, cancel)
    finally:
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)


def chunks(source: Iterator[Input], size: int) -> Iterator[list[Path | Member]]:
    """Consecutive lists of up to `size` inputs (paths as Path, members as they are)."""
    return iter(lambda: [p if isinstance(p, Member) else Path(p) for p in itertools.islice(source, size)], [])


def read_ahead(items: Iterator[Any], depth: int, start: Callable[[Any], _Work], finish: Callable[[_Work], Batch],
               cancel: Callable[[_Work], None]) -> Iterator[Batch]:
    """finish(start(item)) for every item, in order, with up to `depth` started ahead of the one
    handed over; on close, `cancel` gets every started item not handed over yet."""
    pending: deque[_Work] = deque()

    def submit_next() -> bool:
        item = next(items, None)
        if item is None:
            return False
        pending.append(start(item))
        return True

    try:
        while len(pending) < depth and submit_next():
            pass
        while pending:
            out = finish(pending.popleft())
            submit_next()  # refill before handing over, so the work overlaps the consumer's
            yield out
    finally:
        for work in pending:
            cancel(work)


def _decode_into(path: Path | Member, item: _Pending, index: int, preprocess: PreprocessConfig, decoding: DecodeOptions) -> str | None:
    """Decodes into row `index` of `item`; returns None on success, else the failure reason."""
    result = decode_or_reason(path, preprocess, decoding)
    if isinstance(result, str):
        return result
    item.images[index], item.reduced[index] = result
    return None


def decode_or_reason(path: Path | str | Member, preprocess: PreprocessConfig, decoding: DecodeOptions) -> tuple[np.ndarray, bool] | str:
    """decode_noting_scale's (image, reduced), or the reason the input failed; never raises for one input."""
    if isinstance(path, Member):
        if path.error is not None or path.data is None:
            return path.error or "no image data"
        source: Any = path.data
    else:
        source = path
    try:
        return decode_noting_scale(source, preprocess, decoding)
    except DecodeError as err:
        return err.reason
    except Exception as err:  # a bug or MemoryError on one file must not stop the run
        log.warning("unexpected error decoding %s", path, exc_info=True)
        return f"unexpected error: {type(err).__name__}: {err}"


def _assemble(item: _Pending, reasons: list[str | None]) -> Batch:
    ok = [i for i, r in enumerate(reasons) if r is None]
    failures = [(i, r) for i, r in enumerate(reasons) if r is not None]
    images, reduced = (item.images, item.reduced) if not failures else (item.images[ok], item.reduced[ok])
    return make_batch(item.paths, ok, failures, images, reduced)


def make_batch(sources: list[Path | Member], ok: list[int], failures: list[tuple[int, str]], images: Any,
               reduced: np.ndarray) -> Batch:
    """The Batch of `sources` whose rows `ok` decoded into `images` [len(ok), S, S, 3] (an array or,
    from the device pipeline, a tensor); `failures` are (index into sources, reason)."""
    failed = [(_record_path(sources[i]), reason) for i, reason in failures]
    members = [p for p in sources if isinstance(p, Member)]
    rows = [i for i, _ in failures]
    if not members:  # files only: exactly the batches of before
        return Batch(paths=[sources[i] for i in ok], images=images, failures=failed, reduced=reduced, failure_rows=rows)
    meta = {m.path: m.meta for m in members if m.meta is not None}
    return Batch(paths=[_record_path(sources[i]) for i in ok], images=images, failures=failed, reduced=reduced,
                 sources=[sources[i] for i in ok], meta=meta, failure_rows=rows)


def _record_path(source: Path | Member) -> Path | str:
    return source.path if isinstance(source, Member) else source
