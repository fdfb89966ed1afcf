"""What a run did (Summary, also the one line `sigrl tag` prints) and what it reports while it goes."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol


class Progress(Protocol):
    """What a run reports while it goes (the CLI draws a progress bar from it)."""

    def start(self, total: int, skipped: int) -> None: ...

    def update(self, images: int, errors: int) -> None: ...

    def close(self) -> None: ...


@dataclass
class Summary:
    """What a run did. Counts are for this invocation; `skipped` were recorded by an earlier one."""

    output: Path
    meta: Path
    discovered: int = 0
    skipped: int = 0
    tagged: int = 0
    errors: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)  # discovery notes, not failures
    wall_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)
    label_side: str = ""  # "cache" (no text-encoder work) or "encoded"
    batch_size: int = 0
    repaired_bytes: int = 0
    rechecked: int = 0  # images decoded again in full (--decode checked)
    gpu_decoded: int | None = None  # images decoded on the GPU; None: the run decoded on the CPU only
    previous_records: int = 0  # records already in the output when this run started

    @property
    def processed(self) -> int:
        return self.tagged + self.errors

    @property
    def images_per_s(self) -> float:
        return self.processed / self.wall_s if self.wall_s > 0 else 0.0

    @property
    def failed(self) -> bool:
        """True when any image of this run got an error record (the CLI then exits with 1)."""
        return self.errors > 0

    def line(self) -> str:
        """The one-line summary printed at the end of `sigrl tag`."""
        parts = [f"{self.processed} images in {self.wall_s:.1f} s ({self.images_per_s:.1f} images/s)"]
        parts.append(f"{self.tagged} tagged")
        parts.append(f"{self.errors} error{'s' if self.errors != 1 else ''}")
        if self.skipped:
            parts.append(f"{self.skipped} already done")
        if self.rechecked:
            parts.append(f"{self.rechecked} near-tie{'s' if self.rechecked != 1 else ''} decoded again in full")
        if self.gpu_decoded is not None:
            parts.append(f"{self.gpu_decoded} decoded on the GPU")
        if self.problems:
            parts.append(f"{len(self.problems)} folder problem{'s' if len(self.problems) != 1 else ''}")
        return ", ".join(parts) + f" -> {self.output}"
