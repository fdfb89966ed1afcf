"""How far reduced-scale JPEG decoding (`--decode fast`) moves a model's scores: the figures that
`--decode checked`'s near-tie margins (sigrl/tagging/scoring/recheck.py) must cover.

    python -P scripts/bench/decode_drift.py PHOTOS_FOLDER [--model EXPORT_DIR] [--labels FILE] [--topk 5]

Each photo is decoded both ways and scored on ONNX Runtime; printed: the largest move of one of an
image's k+1 best scores, of a difference between two of them, the top-k sets that change, the
k-th/(k+1)-th gaps of those, and how many photos each candidate gap margin would decode again.
Photos: the 12 MP set that scripts/bench/tagging.py makes (under its --work folder).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from sigrl import default_model
from sigrl.decode import DecodeOptions, decode
from sigrl.runtime.onnx_runner import OnnxRunner
from sigrl.tagging.decisions import read_labels
from sigrl.tagging.scoring.recheck import GAP_MARGIN, SCORE_MARGIN

REPO = Path(__file__).resolve().parents[2]


def scores(runner: OnnxRunner, paths: list[Path], labels: list[str], mode: str) -> np.ndarray:
    images = np.stack([decode(p, runner.preprocess, DecodeOptions(mode=mode)) for p in paths])
    return np.concatenate([runner.infer(images[i:i + 16], labels) for i in range(0, len(images), 16)])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("photos", type=Path)
    p.add_argument("--model", type=Path, default=None, help="export directory (default: the embedded model's)")
    p.add_argument("--labels", type=Path, default=REPO / "examples" / "labels.txt")
    p.add_argument("--topk", type=int, default=5)
    p.add_argument("--limit", type=int, default=200)
    args = p.parse_args()
    paths = sorted(args.photos.rglob("*.jpg"))[: args.limit]
    labels, k = read_labels(args.labels), args.topk
    with OnnxRunner(args.model or default_model.export_path()) as runner:
        fast, full = scores(runner, paths, labels, "fast"), scores(runner, paths, labels, "exact")
    order = np.argsort(-full, 1)[:, : k + 1]  # the full decode's k+1 best labels
    a, b = np.take_along_axis(fast, order, 1), np.take_along_axis(full, order, 1)
    pair_move = np.abs((a[:, :, None] - a[:, None, :]) - (b[:, :, None] - b[:, None, :])).max()
    top = lambda s: np.sort(np.argsort(-s, 1)[:, :k], 1)  # noqa: E731
    changed = ~(top(fast) == top(full)).all(1)
    fast_sorted = -np.sort(-fast, 1)
    gap = fast_sorted[:, k - 1] - fast_sorted[:, k]  # what the rechecker sees
    print(f"{len(paths)} photos, {len(labels)} labels, top-{k}")
    print(f"largest move of one of the k+1 best scores: {np.abs(a - b).max():.4f} (margin {SCORE_MARGIN})")
    print(f"largest move of a difference between two of them: {pair_move:.4f}")
    print(f"top-{k} sets changed by fast decoding: {int(changed.sum())}; their k-th/(k+1)-th gaps: "
          + ", ".join(f"{g:.4f}" for g in gap[changed]))
    for margin in sorted({0.002, 0.005, GAP_MARGIN, 0.01, 0.02}):
        print(f"gap margin {margin}: {int((gap < margin).sum())} photos decoded again, "
              f"{int((changed & (gap >= margin)).sum())} changed sets missed")


if __name__ == "__main__":
    main()
