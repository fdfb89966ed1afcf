"""The Python API: tagging embedded in a program, with the model opened once and reused.

    from sigrl.tagging import Tagger

    with Tagger(model=None, backend="auto", labels=["red circle", "blue square"], topk=1) as tagger:
        records = tagger.tag(["a.jpg", "b.png", pixels_uint8_hwc])   # one record per input, in order
        scores = tagger.scores(["a.jpg"])                            # float32 [n, N], label order
        summary = tagger.run(["shards/{000..009}.tar"], "tags.jsonl")  # a whole job, as `sigrl tag`

Records are those `sigrl tag` writes (sigrl.tagging.records), made by the same decoder, batching,
decision rule and rechecks. `sigrl tag` itself runs its local engine through `Tagger.run_job`.
"""

from __future__ import annotations

import os
from collections import defaultdict, deque
from pathlib import Path
from typing import Any, Iterable, Sequence, Union

import numpy as np

from sigrl.decode import DecodeOptions
from sigrl.errors import SigrlError
from sigrl.tagging.engines.local import default_workers, run_job
from sigrl.tagging.inputs.member import Member
from sigrl.tagging.inputs.plan import InputPlan
from sigrl.tagging.records import Record
from sigrl.tagging.runs.summary import Progress, Summary
from sigrl.tagging.scoring.scorer import BatchScorer
from sigrl.tagging.spec import ModelSpec, OutputPolicy, ReadOptions, TagJob, model_and_rule, resolve_model

# An image file's path, encoded image bytes, a PIL image, a uint8 array or torch tensor ([H, W, C]
# or [C, H, W]), or a Hugging Face Image value {"bytes": ..., "path": ...}.
ImageInput = Union[str, "os.PathLike[str]", bytes, np.ndarray, dict, Any]
ACCEPTED = ("an image path (str or Path), encoded image bytes, a PIL image, a uint8 numpy array or torch tensor "
            "([H, W, C] or [C, H, W]), or a {'bytes': ..., 'path': ...} dict (a Hugging Face Image value)")


class Tagger:
    """A model and a label set, ready to tag; see the module docstring.

    `model`: a checkpoint, an export folder, a config name or open_clip:ARCH[:TAG]; None is the
    embedded default model. The decision rule is chosen as by `sigrl tag`: `threshold`,
    `threshold_file`, `topk`, else the model's calibrated thresholds for these labels, else the 5
    best. `decode` is fast, exact or checked (see sigrl.decode.DecodeOptions); `gpu_decode` False
    keeps JPEG decoding on the CPU when the runner is on CUDA.
    """

    def __init__(
        self,
        model: str | os.PathLike[str] | None = None,
        backend: str = "auto",
        labels: Sequence[str] = (),
        *,
        device: str = "auto",
        precision: str | None = None,
        prompt: str | None = None,
        threshold: float | None = None,
        threshold_file: str | os.PathLike[str] | None = None,
        topk: int | None = None,
        scores: str = "tags",
        decode: str = "fast",
        max_pixels: int | None = None,
        gpu_decode: bool = True,
        batch_size: int = 8,
        workers: int | None = None,
        label_cache: str | os.PathLike[str] | None = None,
    ) -> None:
        labels = [str(label) for label in labels]
        if not labels:
            raise SigrlError("Tagger needs labels: Tagger(labels=['red circle', 'dog', ...])")
        target = resolve_model(None if model is None else os.fspath(model), backend)
        spec, rule, source = model_and_rule(labels, target, backend, device, precision, prompt, label_cache, threshold,
                                            threshold_file, topk, scores)
        self._setup(spec, rule, source, DecodeOptions.from_options(decode, max_pixels, gpu_decode), batch_size, workers)

    @classmethod
    def from_job(cls, job: TagJob) -> "Tagger":
        """The Tagger that runs `job` (its model, labels, rule, decoding, batch size and workers)."""
        tagger = cls.__new__(cls)
        tagger._setup(job.model, job.rule, job.rule_source, job.decoding, job.batch_size, job.workers)
        return tagger

    def _setup(self, spec: ModelSpec, rule: Any, source: str, decoding: DecodeOptions, batch_size: int,
               workers: int | None) -> None:
        if batch_size < 1:
            raise SigrlError(f"batch_size must be >= 1, got {batch_size}")
        self.spec, self.rule, self.rule_source, self.decoding = spec, rule, source, decoding
        self.labels: list[str] = list(rule.labels)
        self.workers = default_workers() if workers is None else workers
        self.runner = spec.open()
        self.batch_size = max(1, min(batch_size, self.runner.max_batch(len(self.labels))))
        self._requested_batch = batch_size

    # -- in-memory use --------------------------------------------------------------------------

    def tag(self, inputs: ImageInput | Iterable[ImageInput]) -> list[Record]:
        """One record per input, in input order; an input that cannot be decoded gets an error record.

        `inputs` is one input (a path is one input, never its characters) or a list of them. A
        record's path is the file's path, or `array[i]`, `image[i]`, `bytes[i]` for the i-th input
        given as an array or tensor, a PIL image or encoded bytes; a dict's `path` where it has one.
        """
        items = self._items(inputs)
        records: list[Record] = []
        for batch, scores in self._scored(items):
            records.extend(batch.records(scores, self.rule))
        return _in_order(items, records, lambda r: os.fspath(r["path"]))

    def scores(self, inputs: ImageInput | Iterable[ImageInput]) -> np.ndarray:
        """Every label's score for every input: float32 [n, N], rows in input order, columns in
        label order. An input that cannot be decoded is an error (tag() records it instead)."""
        items = self._items(inputs)
        rows: list[tuple[str, np.ndarray]] = []
        for batch, scores in self._scored(items):
            if batch.failures:
                path, reason = batch.failures[0]
                raise SigrlError(f"{os.fspath(path)}: {reason}")
            rows.extend((os.fspath(p), row) for p, row in zip(batch.paths, scores))
        ordered = _in_order(items, rows, lambda r: r[0])
        return np.stack([row for _, row in ordered]).astype(np.float32) if ordered else np.zeros((0, len(self.labels)), np.float32)  # [n, N]

    def _items(self, inputs: ImageInput | Iterable[ImageInput]) -> list[Path | Member]:
        return [_item(i, value) for i, value in enumerate(_one_or_many(inputs))]

    def _scored(self, items: list[Path | Member]) -> Any:
        scorer = BatchScorer(self.runner, self.labels, self.rule, self.batch_size, self.workers, self.decoding)
        return scorer(items)

    # -- whole jobs ------------------------------------------------------------------------------

    def run(
        self,
        inputs: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        out: str | os.PathLike[str],
        resume: bool = False,
        overwrite: bool = False,
        keep_meta: bool = False,
        image_column: str | None = None,
        progress: Progress | None = None,
    ) -> Summary:
        """Tags folders, files, path lists, tar shards and Parquet tables into `out`, as `sigrl tag`;
        `inputs` is one path or a list of them (in-memory images go to tag() or scores())."""
        job = TagJob(
            inputs=tuple(_run_input(i, p) for i, p in enumerate(_one_or_many(inputs))), output=OutputPolicy(os.fspath(out), resume, overwrite),
            model=self.spec, labels=tuple(self.labels), rule=self.rule, rule_source=self.rule_source,
            decoding=self.decoding, reading=ReadOptions(keep_meta, image_column),
            batch_size=self._requested_batch, workers=self.workers,
        )
        return self.run_job(job, progress=progress)

    def run_job(self, job: TagJob, plan: InputPlan | None = None, progress: Progress | None = None) -> Summary:
        """Runs a TagJob made for this Tagger's model with the local engine (sigrl.tagging.engines.local)."""
        return run_job(job, self.runner, plan, progress)

    @property
    def description(self) -> str:
        """The backend line `sigrl tag` prints: backend (device, precision): why it was chosen."""
        r = self.runner
        return f"{r.backend} ({r.device}, {r.precision}): {r.reason}"

    def close(self) -> None:
        self.runner.close()

    def __enter__(self) -> "Tagger":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _in_order(items: list[Path | Member], results: list, path_of: Any) -> list:
    """`results` (batch order: each batch's decoded inputs, then its failures) back in input order."""
    slots: dict[str, deque[int]] = defaultdict(deque)
    for i, item in enumerate(items):
        slots[item.path if isinstance(item, Member) else os.fspath(item)].append(i)
    ordered: list = [None] * len(items)
    for result in results:
        ordered[slots[path_of(result)].popleft()] = result
    return ordered


def _one_or_many(inputs: Any) -> list:
    """`inputs` as a list: a path, bytes, a dict, a PIL image or one array/tensor image is one input."""
    from PIL import Image

    if isinstance(inputs, (str, os.PathLike, bytes, bytearray, memoryview, dict, Image.Image)):
        return [inputs]
    if (isinstance(inputs, np.ndarray) or _is_tensor(inputs)) and len(inputs.shape) in (2, 3):
        return [inputs]  # one image; a 4-D array or tensor is a batch of them
    try:
        return list(inputs)
    except TypeError:
        raise SigrlError(f"{type(inputs).__name__} is not an input: pass one or a list of {ACCEPTED}") from None


def _item(i: int, value: Any) -> Path | Member:
    from PIL import Image

    if isinstance(value, (str, os.PathLike)):
        return Path(value)
    if isinstance(value, Image.Image):
        return Member(f"image[{i}]", data=value)
    if isinstance(value, (bytes, bytearray, memoryview)):
        return Member(f"bytes[{i}]", data=bytes(value))
    if isinstance(value, dict) and ("bytes" in value or "path" in value):
        data, path = value.get("bytes"), value.get("path")
        if data is not None:
            return Member(os.fspath(path) if path else f"bytes[{i}]", data=bytes(data))
        if path:
            return Path(path)
    if isinstance(value, np.ndarray) or _is_tensor(value):
        return Member(f"array[{i}]", data=_hwc(value))
    raise SigrlError(f"input {i}: {type(value).__name__} is not an image path or image; accepted: {ACCEPTED}")


def _is_tensor(value: Any) -> bool:
    return type(value).__module__.split(".")[0] == "torch" and hasattr(value, "detach")


def _hwc(value: Any) -> np.ndarray:
    """A uint8 array image as [H, W(, C)]; [C, H, W] (torch's layout, HF's with_format("torch")) transposed."""
    pixels = value.detach().cpu().numpy() if _is_tensor(value) else value
    if pixels.dtype != np.uint8:
        raise SigrlError(f"an array or tensor image must be uint8 (0-255), got {pixels.dtype} {list(pixels.shape)}")
    if pixels.ndim == 3 and pixels.shape[0] in (1, 3, 4) and pixels.shape[2] not in (1, 3, 4):
        pixels = np.transpose(pixels, (1, 2, 0))  # [C, H, W] -> [H, W, C]
    return pixels


def _run_input(i: int, value: Any) -> str:
    if isinstance(value, (str, os.PathLike)):
        return os.fspath(value)
    raise SigrlError(f"input {i}: run() reads folders, image files, path lists, tar shards and Parquet tables by "
                     f"path, and {type(value).__name__} is not one; tag() and scores() take in-memory images "
                     f"({ACCEPTED})")
