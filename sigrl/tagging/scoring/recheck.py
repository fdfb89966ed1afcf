"""`--decode checked`: fast decoding, and the near-tied images decoded again in full and rescored.

Reduced-scale (DCT-domain) JPEG decoding moves pixels by a fraction of a level on average, which
moves scores by a few thousandths at most. That changes tags only where two labels, or a label and
its threshold, are closer than that. So the images that were decoded at reduced scale and whose
decisions are that close (decisions.near_ties) are decoded again in full and scored again. Every
other image keeps its reduced-scale scores, whose tags are then those of a full decode.

The margins are measured, not derived. On the benchmark's 200 12 MP photos (scripts/bench/tagging.py),
reduced-scale decoding moved one of an image's k+1 best scores by at most 0.0043 with the
random-init ViT-B/32, 0.0012 with the first embedded world model and 0.015 with today's (a CLIP head,
whose raw cosines move most); the photos whose top-5 set it changed had their 5th and 6th scores,
as reduced-scale decoding gave them, at most 0.0049 apart (scripts/bench/decode_drift.py measures
a model's figures). On a second set of 200 photos (scripts/bench/tagging.py --photo-seed 1000)
"checked" with the margins below gave the tags of a full decode on every photo.
A model more sensitive to small pixel changes would need wider margins; `--decode exact` needs none.
"""

from __future__ import annotations

import logging
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from sigrl.decode import DecodeOptions
from sigrl.tagging.decisions.rule import DecisionRule, near_ties
from sigrl.tagging.scoring.pipeline import Batch, decode_or_reason

log = logging.getLogger(__name__)

SCORE_MARGIN = 0.015  # a score this close to its threshold is a near-tie
GAP_MARGIN = 0.006  # the k-th and (k+1)-th best labels this close are a near-tie


class Rechecker:
    """Scores in, final scores out, in input order; see the module docstring.

    `push(batch, scores)` starts the full decodes of the batch's near-tied images in the
    background and returns the batches that are final by now; a batch with near-ties is held back
    until `lag` later batches have been pushed, so its full decodes overlap their inference.
    `finish()` returns the rest. Used as a context manager, it stops its decode threads on exit.
    With any mode but "checked", every batch is final at once.
    """

    def __init__(self, runner: Any, labels: Sequence[str], rule: DecisionRule, decoding: DecodeOptions,
                 workers: int, lag: int = 2) -> None:
        self.runner, self.labels, self.rule = runner, list(labels), rule
        self.full = decoding.in_full()
        self.active = decoding.checked
        self.lag = lag
        self.rechecked = 0  # images decoded again so far
        self._pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="sigrl-recheck") if self.active else None
        self._held: deque[_Held] = deque()

    def push(self, batch: Batch, scores: np.ndarray) -> list[tuple[Batch, np.ndarray]]:
        """Takes a batch and its scores [b, N]; returns the (batch, scores) pairs now final."""
        redo = np.zeros(0, dtype=int)
        if self.active and batch.reduced.any():
            redo = np.flatnonzero(batch.reduced & near_ties(scores, self.rule, SCORE_MARGIN, GAP_MARGIN))
        futures = [self._pool.submit(self._decode, batch.source(i)) for i in redo] if redo.size else []
        self._held.append(_Held(batch, scores, redo, futures))
        self.rechecked += int(redo.size)
        done = []
        while self._held and (not self._held[0].futures or len(self._held) > self.lag):
            done.append(self._final(self._held.popleft()))
        return done

    def finish(self) -> list[tuple[Batch, np.ndarray]]:
        """The (batch, scores) pairs still held, now final."""
        done = [self._final(held) for held in self._held]
        self._held.clear()
        return done

    def _decode(self, path: Any) -> np.ndarray | str:
        result = decode_or_reason(path, self.runner.preprocess, self.full)
        return result if isinstance(result, str) else result[0]

    def _final(self, held: "_Held") -> tuple[Batch, np.ndarray]:
        if not held.futures:
            return held.batch, held.scores
        # An image whose full decode fails keeps its reduced-scale scores: it did decode.
        rows, images = [], []
        for i, future in zip(held.redo, held.futures):
            result = future.result()
            if isinstance(result, str):
                log.warning("%s: full decode failed (%s); keeping the reduced-scale scores", held.batch.paths[i], result)
            else:
                rows.append(i)
                images.append(result)
        scores = np.array(held.scores, copy=True)  # [b, N]; the runner's array may be read-only
        if rows:
            scores[rows] = self.runner.infer(np.stack(images), self.labels)
        return held.batch, scores

    def __enter__(self) -> "Rechecker":
        return self

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _Held:
    batch: Batch
    scores: np.ndarray  # [b, N]
    redo: np.ndarray  # rows of `batch` being decoded again
    futures: list[Future]  # per row of `redo`: the uint8 [S, S, 3] image or a failure reason
