"""Scoring: inputs -> decoded batches -> runner.infer -> final scores, in input order.

    scorer.py           BatchScorer: the decode/infer/recheck loop every engine and the Tagger drive
    pipeline.py         iter_batches: CPU decoding in a thread pool, overlapped with inference
    device_pipeline.py  iter_device_batches: JPEGs decoded on the runner's CUDA device
    recheck.py          Rechecker: near-tied images decoded again in full (--decode checked)

Knows the runner interface (infer, preprocess, device) and the inputs' Member; never outputs or engines.
"""

from sigrl.tagging.scoring.pipeline import Batch, Input, iter_batches
from sigrl.tagging.scoring.scorer import BatchScorer, uses_device_decode

__all__ = ["Batch", "BatchScorer", "Input", "iter_batches", "uses_device_decode"]
