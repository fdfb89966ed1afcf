"""Inputs -> (batch, final scores), in input order: decode pool -> runner.infer -> recheck.

The loop at the heart of every tagging path (the local engine, the Python API's Tagger); records
are made from what it yields (records.batch_records). `timings` collects where the calling thread
waited: decoded images (decode_wait_s), inference (infer_s), full decodes of near-ties (recheck_s).
"""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from typing import Any, Iterable, Iterator, Sequence

import numpy as np

from sigrl.decode import DecodeOptions
from sigrl.tagging.decisions.rule import DecisionRule
from sigrl.tagging.scoring.pipeline import Batch, Input, iter_batches
from sigrl.tagging.scoring.recheck import Rechecker

log = logging.getLogger(__name__)


class BatchScorer:
    """Yields (batch, scores [b, N]) for `inputs`; `rechecked` counts images decoded again in full."""

    def __init__(self, runner: Any, labels: Sequence[str], rule: DecisionRule, batch_size: int, workers: int,
                 decoding: DecodeOptions, timings: dict[str, float] | None = None,
                 device_decode: bool | None = None) -> None:
        self.runner, self.labels, self.rule = runner, list(labels), rule
        self.batch_size, self.workers, self.decoding = batch_size, workers, decoding
        self.timings = {} if timings is None else timings
        self.rechecked = 0
        self.device_decode = uses_device_decode(runner, decoding, device_decode)
        self._device_stats: dict[str, int] = {}

    @property
    def gpu_decoded(self) -> int | None:
        """Images decoded on the runner's device so far; None when this scorer decodes on the CPU."""
        return self._device_stats.get("decoded", 0) if self.device_decode else None

    def _batches(self, inputs: Iterable[Input]) -> Iterator[Batch]:
        if self.device_decode:
            from sigrl.tagging.scoring.device_pipeline import iter_device_batches

            return iter_device_batches(inputs, self.runner.preprocess, self.runner.device, batch_size=self.batch_size,
                                       workers=max(1, self.workers), decoding=self.decoding, stats=self._device_stats)
        return iter_batches(inputs, self.runner.preprocess, batch_size=self.batch_size, workers=self.workers,
                            decoding=self.decoding)

    def __call__(self, inputs: Iterable[Input]) -> Iterator[tuple[Batch, np.ndarray]]:
        yield from self.score(self._batches(inputs))  # a generator: nothing starts before the first next()

    def score(self, batches: Iterator[Batch]) -> Iterator[tuple[Batch, np.ndarray]]:
        """(batch, final scores [b, N]) for batches decoded already (the Ray engine ships them)."""
        clock = Clock(self.timings)
        n_labels = len(self.labels)
        try:
            with Rechecker(self.runner, self.labels, self.rule, self.decoding, self.workers) as rechecker:
                while True:
                    with clock("decode_wait_s"):
                        item = next(batches, None)
                    if item is None:
                        break
                    with clock("infer_s"):
                        scores = self.runner.infer(item.images, self.labels) if item.paths else np.zeros((0, n_labels), np.float32)  # [b, N]
                    with clock("recheck_s"):
                        finals = rechecker.push(item, scores)
                    self.rechecked = rechecker.rechecked
                    yield from finals
                with clock("recheck_s"):
                    finals = rechecker.finish()
                yield from finals
        finally:
            batches.close()  # stops the decode pool at once when the consumer failed


def uses_device_decode(runner: Any, decoding: DecodeOptions, wanted: bool | None = None) -> bool:
    """Whether JPEGs are decoded on the runner's device (sigrl.tagging.scoring.device_pipeline).

    `wanted` None: when the runner is on CUDA, takes device tensors, and decoding.gpu_decode
    allows it. `--decode exact` always keeps the CPU decoder (pixel-identical to PIL + torchvision).
    True forces the device path on any device that takes tensors (the tests run it on the CPU).
    """
    if wanted is False or decoding.exact or not getattr(runner, "accepts_device_tensors", False):
        return False
    if wanted is None and (runner.device != "cuda" or not decoding.gpu_decode):
        return False
    try:
        import torchvision.io  # noqa: F401
    except ImportError:
        log.warning("torchvision is not installed: decoding on the CPU (pip install torchvision for GPU decoding)")
        return False
    return True


class Clock:
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
