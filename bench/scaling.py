"""Head scaling: time per image of the full model (backbone + head) as the label count N grows.

The SVFR head costs about P*N*D*D multiply-adds per image and per W3 layer, so past some N it
dominates the backbone. Three ways of running the same weights are timed at each N:
- `torch chunked`: PyTorch with the head computed exactly in label chunks (bounded memory),
- `torch whole`: PyTorch with the whole [B, P, N, D] head at once (label_chunk = None),
- `onnx whole`: the exported image graph on ONNX Runtime (one whole-N head; see export/onnx.py).
The label side (text encoder + GMC) runs once per label set and is timed separately. Peak memory
is the growth of resident memory during the timed calls. Label sets larger than the data's
vocabulary are padded with made-up names: timing does not depend on what the labels say.
"""

from __future__ import annotations

import logging
import time
from typing import Any, Sequence

import numpy as np

from sigrl.bench.timing import PeakRss, Repeats, measure_batch

log = logging.getLogger(__name__)


def label_set(n: int, vocabulary: Sequence[str]) -> list[str]:
    """n distinct labels: the vocabulary first, then made-up names."""
    labels = list(dict.fromkeys(vocabulary))[:n]
    i = 0
    while len(labels) < n:
        name = f"object {i}"
        if name not in labels:
            labels.append(name)
        i += 1
    return labels


def _variants(job: dict) -> list[tuple[str, Any]]:
    from sigrl.model.factory import open_model
    from sigrl.runtime.torch_runner import TorchRunner

    out: list[tuple[str, Any]] = []
    if job["model"]:  # None when only an export was given
        chunked = open_model(job["model"]).eval()
        chunk = chunked.config.head.label_chunk or 32
        chunked.config = chunked.config.replace(head={"label_chunk": chunk})
        out.append((f"torch chunked ({chunk})", lambda: TorchRunner(chunked, "cpu", "fp32")))
        whole = open_model(job["model"]).eval()
        whole.config = whole.config.replace(head={"label_chunk": None})
        out.append(("torch whole", lambda: TorchRunner(whole, "cpu", "fp32")))
    if job.get("export"):
        from sigrl.runtime.onnx_runner import OnnxRunner

        out.append(("onnx whole", lambda: OnnxRunner(job["export"], "fp32", "cpu")))
    return out


def run_scaling(job: dict) -> dict[str, Any]:
    """{"cases": [{variant, n_labels, batch, seconds_per_image, label_side_s, head_peak_bytes}]}"""
    images = np.load(job["images"])  # [n, S, S, 3]
    batch = int(job["scaling_batch"])
    x = np.ascontiguousarray(np.concatenate([images] * (-(-batch // len(images))))[:batch])
    repeats = Repeats(**job["repeats"])
    cases = []
    for variant, make in _variants(job):
        with make() as runner:
            for n in job["labels_sweep"]:
                labels = label_set(n, job["labels"])
                t0 = time.perf_counter()
                runner.label_side(labels)
                label_s = time.perf_counter() - t0
                b = min(batch, runner.max_batch(n))
                try:
                    with PeakRss() as peak:
                        ran, stats = measure_batch(lambda bb: runner.infer(x[:bb], labels), b, repeats)
                except Exception as err:  # a case that fails is reported, the sweep goes on
                    log.warning("%s at N=%d failed: %s", variant, n, err)
                    cases.append({"variant": variant, "n_labels": n, "status": f"failed: {err}"})
                    continue
                cases.append({
                    "variant": variant, "n_labels": n, "batch": ran, "status": "ran",
                    "seconds_per_image": stats.median_s / ran, "outliers": stats.outliers, "reps": stats.reps,
                    "label_side_s": label_s, "head_peak_bytes": peak.growth_bytes,
                })
    return {"cases": cases}
