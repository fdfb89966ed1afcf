"""Progress of a large label set's encoding (a tqdm bar on stderr).

Encoding 10,000 labels takes minutes on a CPU, most of it in GMC's pairwise attention. The bar
counts label-rows of work: one pass of the text encoder over the N labels, then one pass per GMC
layer (`passes` in all). A backend that encodes in one opaque call (the exported text graph on
ONNX Runtime) shows the time elapsed instead, refreshed while it waits.
"""

from __future__ import annotations

import sys
import threading
from contextlib import contextmanager
from typing import Iterator

# Smaller label sets take seconds at most: no bar.
PROGRESS_MIN_LABELS = 1000


class LabelProgress:
    """`update(rows)` after each block; `waiting()` around a call that cannot report blocks.

    enabled: True forces the bar, False hides it, None shows it on a terminal only (tqdm's rule).
    """

    def __init__(self, n_labels: int, passes: int, name: str, enabled: bool | None = None):
        self._bar = None
        if enabled is False or n_labels < PROGRESS_MIN_LABELS:
            return
        from tqdm import tqdm

        self._bar = tqdm(total=n_labels * passes, desc=f"{name}: encoding {n_labels:,} labels", unit="row",
                         unit_scale=True, dynamic_ncols=True, file=sys.stderr, leave=False,
                         disable=None if enabled is None else False)

    def update(self, rows: int) -> None:
        if self._bar is not None:
            self._bar.update(rows)

    @contextmanager
    def waiting(self, what: str) -> Iterator[None]:
        """Refresh the bar's clock every second while a blocking call runs."""
        if self._bar is None:
            yield
            return
        self._bar.set_postfix_str(what)
        done = threading.Event()

        def tick() -> None:
            while not done.wait(1.0):
                self._bar.refresh()

        thread = threading.Thread(target=tick, daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "LabelProgress":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
