"""Repeated timing with warm-up, percentiles and outliers; batch sizes stepped down on out-of-memory.

A measurement runs `warmup` untimed calls, then timed calls until both `min_reps` calls and
`min_seconds` have passed (at most `max_reps`), so fast cases get many samples and slow ones still
get enough for a stable median. Outliers are samples above Q3 + 1.5 IQR (Tukey's fence); they are
counted and reported, not dropped: on a shared machine they are the neighbours' load showing up.
"""

from __future__ import annotations

import os
import threading
import time
from dataclasses import asdict, dataclass
from typing import Any, Callable

import numpy as np


@dataclass(frozen=True)
class Repeats:
    warmup: int = 3
    min_reps: int = 10
    min_seconds: float = 1.0
    max_reps: int = 1000

    @classmethod
    def quick(cls) -> "Repeats":
        return cls(warmup=2, min_reps=5, min_seconds=0.2, max_reps=50)


@dataclass(frozen=True)
class Stats:
    reps: int
    median_s: float
    p50_s: float
    p95_s: float
    p99_s: float
    min_s: float
    max_s: float
    outliers: int  # samples above Q3 + 1.5 IQR

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(samples: list[float]) -> Stats:
    arr = np.asarray(samples, dtype=np.float64)
    q1, q3 = np.percentile(arr, [25, 75])
    fence = q3 + 1.5 * (q3 - q1)
    p50, p95, p99 = (float(v) for v in np.percentile(arr, [50, 95, 99]))
    return Stats(
        reps=int(arr.size), median_s=p50, p50_s=p50, p95_s=p95, p99_s=p99,
        min_s=float(arr.min()), max_s=float(arr.max()), outliers=int((arr > fence).sum()),
    )


def measure(call: Callable[[], object], repeats: Repeats) -> Stats:
    """Time `call` as described in the module docstring."""
    for _ in range(repeats.warmup):
        call()
    samples: list[float] = []
    start = time.perf_counter()
    while len(samples) < repeats.max_reps:
        t0 = time.perf_counter()
        call()
        samples.append(time.perf_counter() - t0)
        if len(samples) >= repeats.min_reps and time.perf_counter() - start >= repeats.min_seconds:
            break
    return summarize(samples)


def is_out_of_memory(err: BaseException) -> bool:
    """Whether an exception from a backend means the batch did not fit in memory."""
    if isinstance(err, MemoryError):
        return True
    text = f"{type(err).__name__}: {err}".lower()
    return any(s in text for s in ("out of memory", "outofmemory", "failed to allocate", "bad_alloc", "cannot allocate"))


def measure_batch(
    run: Callable[[int], object], batch: int, repeats: Repeats
) -> tuple[int, Stats]:
    """Measure `run(batch)`, halving the batch on out-of-memory; returns the batch that ran."""
    while True:
        try:
            return batch, measure(lambda: run(batch), repeats)
        except Exception as err:
            if not is_out_of_memory(err) or batch == 1:
                raise
            batch //= 2


class PeakRss:
    """Peak resident memory of this process while the block runs, sampled every few milliseconds.

    ru_maxrss is a high-water mark for the whole process life; this measures one block, as the
    peak above the resident size when the block started.
    """

    def __init__(self, interval_s: float = 0.005):
        self.interval_s = interval_s
        self.start_bytes = 0
        self.peak_bytes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> "PeakRss":
        self.start_bytes = self.peak_bytes = rss_bytes()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()
        return self

    def _poll(self) -> None:
        while not self._stop.wait(self.interval_s):
            self.peak_bytes = max(self.peak_bytes, rss_bytes())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        self.peak_bytes = max(self.peak_bytes, rss_bytes())

    @property
    def growth_bytes(self) -> int:
        return max(0, self.peak_bytes - self.start_bytes)


def rss_bytes() -> int:
    """Resident set size of this process (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/statm", encoding="ascii") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0
