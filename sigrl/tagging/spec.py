"""What a tagging run is, as one frozen value: `TagJob`.

The CLI builds it once from its options (`build_job`); the local engine (sigrl.tagging.engines.local) and
the Ray engine (sigrl.tagging.engines.ray_engine) both take it; the run's metadata sidecar is written from
it (sigrl.tagging.runs.sidecar.run_meta) and `--resume` compares the settings that decide what a record
says (model, labels and prompt, decision rule, what is read from containers) with the sidecar's.

    TagJob
      inputs      folders, image files, path lists, tar shards (brace patterns), Parquet files/folders
      output      OutputPolicy: the output file (or folder, Ray), resume / overwrite
      model       ModelSpec: how a runner is opened (model, backend, device, precision, cache, prompt)
      labels      the label list, in order
      rule        the decision rule, and where it came from (rule_source)
      decoding    DecodeOptions (--decode, --max-pixels, --gpu-decode)
      reading     ReadOptions: --keep-meta, --image-column, --image-ext
      batch_size, workers
      engine      EngineOptions: local or ray, and Ray's address, replicas, shard size
"""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from sigrl.decode import DecodeOptions
from sigrl.errors import SigrlError
from sigrl.tagging.decisions.choose import choose_rule
from sigrl.tagging.decisions.labels import read_labels
from sigrl.tagging.decisions.rule import DecisionRule
from sigrl.tagging.inputs.options import ReadOptions, parse_image_ext
from sigrl.tagging.outputs.formats import FORMATS

ENGINES = ("local", "ray")
DEFAULT_TOPK = 5


@dataclass(frozen=True)
class ModelSpec:
    """How a runner is opened: the arguments of `sigrl.runtime.open_runner`, plus the prompt.

    A runner cannot travel to a Ray worker; this recipe does, and every replica builds its own.
    """

    model: str
    backend: str = "auto"
    device: str = "auto"
    precision: str | None = None
    label_cache: str | None = None
    prompt: str | None = None

    def open(self, shared_cpu: bool = True) -> Any:
        """An open runner (a context manager); `shared_cpu`: let decode threads have the cores."""
        from sigrl.runtime import LabelCache, open_runner

        cache = LabelCache(self.label_cache) if self.label_cache is not None else LabelCache()
        runner = open_runner(self.model, self.backend, self.device, self.precision, cache, shared_cpu=shared_cpu)
        if self.prompt is not None:
            runner.set_prompt(self.prompt)
        return runner


@dataclass(frozen=True)
class OutputPolicy:
    """Where records go, and what happens to an output that exists."""

    path: str
    resume: bool = False  # continue it: recorded inputs are skipped
    overwrite: bool = False  # replace it

    def __post_init__(self) -> None:
        if self.resume and self.overwrite:
            raise SigrlError("--resume continues an output and --overwrite replaces it; choose one")


@dataclass(frozen=True)
class EngineOptions:
    """Which engine runs the job, and the Ray engine's options."""

    kind: str = "local"
    address: str | None = None  # Ray: None starts a local instance, "auto" or "ray://host:port" joins one
    replicas: int | None = None  # Ray: model replicas (default one per GPU, else one per 2 CPUs)
    shard_size: int = 1000  # Ray: files per output shard (each tar or table is a shard of its own)

    def __post_init__(self) -> None:
        if self.kind not in ENGINES:
            raise SigrlError(f"--engine must be local or ray, got {self.kind!r}")


@dataclass(frozen=True)
class TagJob:
    """Everything that defines a tagging run; see the module docstring."""

    inputs: tuple[str, ...]
    output: OutputPolicy
    model: ModelSpec
    labels: tuple[str, ...]
    rule: DecisionRule
    rule_source: str = ""
    decoding: DecodeOptions = field(default_factory=DecodeOptions)
    reading: ReadOptions = field(default_factory=ReadOptions)
    batch_size: int = 8
    workers: int | None = None  # decoding threads; None: the engine's default
    engine: EngineOptions = field(default_factory=EngineOptions)

    def __post_init__(self) -> None:
        if tuple(self.labels) != self.rule.labels:
            raise ValueError("the decision rule was made for a different label list")
        if self.batch_size < 1:
            raise SigrlError(f"--batch-size must be >= 1, got {self.batch_size}")
        if self.reading.keep_meta and _output_format(self.output.path) == "csv":
            raise SigrlError("--keep-meta carries each sample's other members into its record; write .jsonl or "
                             ".parquet for that (CSV has no column for it)")

    def meta(self) -> dict[str, Any]:
        """The job's own entries in the run's metadata sidecar (the runner adds what it resolved)."""
        meta = {"decision_source": self.rule_source, "keep_meta": self.reading.keep_meta,
                "image_column": self.reading.image_column}
        if self.reading.image_ext is not None:  # absent: the default list (sidecars stay as they were)
            meta["image_ext"] = list(self.reading.image_ext)
        return meta


def _output_format(path: str) -> str:
    return FORMATS.get(Path(path).suffix.lower(), "")


def resolve_model(model: str | None, backend: str = "auto") -> str:
    """The model reference to run: the one given, else the embedded default model: its shipped
    export where ONNX Runtime can run it (auto or onnx), else its checkpoint (PyTorch)."""
    if model:
        return model
    try:
        from sigrl import default_model
    except ImportError:
        raise SigrlError(
            "this install has no embedded default model; pass --model with a checkpoint, an export "
            "directory, a config name or open_clip:ARCH:TAG"
        ) from None
    export = default_model.export_path()
    if export is not None and backend in ("auto", "onnx") and importlib.util.find_spec("onnxruntime") is not None:
        return os.fspath(export)
    path = Path(default_model.path())
    if not path.exists():
        raise SigrlError(f"the embedded default model is missing ({path}); reinstall sigrl or pass --model")
    return os.fspath(path)


def model_and_rule(
    labels: Sequence[str], target: str, backend: str = "auto", device: str = "auto", precision: str | None = None,
    prompt: str | None = None, label_cache: str | os.PathLike[str] | None = None, threshold: float | None = None,
    threshold_file: str | os.PathLike[str] | None = None, topk: int | None = None, scores: str = "tags",
) -> tuple[ModelSpec, DecisionRule, str]:
    """The runner recipe and the decision rule (with where it came from) for `labels` on the model
    `target` (from resolve_model), as `sigrl tag` and the Tagger choose them."""
    rule, source = choose_rule(labels, threshold, threshold_file, topk, scores, target, DEFAULT_TOPK)
    cache = None if label_cache is None else os.fspath(label_cache)
    return ModelSpec(target, backend, device, precision, cache, prompt), rule, source


def build_job(
    inputs: Sequence[str | os.PathLike[str]],
    labels: str | os.PathLike[str],
    out: str | os.PathLike[str],
    model: str | None = None,
    backend: str = "auto",
    device: str = "auto",
    precision: str | None = None,
    prompt: str | None = None,
    label_cache: str | os.PathLike[str] | None = None,
    threshold: float | None = None,
    threshold_file: str | os.PathLike[str] | None = None,
    topk: int | None = None,
    scores: str = "tags",
    resume: bool = False,
    overwrite: bool = False,
    batch_size: int = 8,
    workers: int | None = None,
    decode: str = "fast",
    max_pixels: int | None = None,
    gpu_decode: bool = True,
    keep_meta: bool = False,
    image_column: str | None = None,
    image_ext: str | None = None,
    engine: str = "local",
    address: str | None = None,
    replicas: int | None = None,
    shard_size: int = 1000,
) -> TagJob:
    """The job `sigrl tag` runs, from its option values (a labels file, not a list)."""
    names = read_labels(labels)
    reading = ReadOptions(keep_meta, image_column, parse_image_ext(image_ext))
    decoding = DecodeOptions.from_options(decode, max_pixels, gpu_decode)
    target = resolve_model(model, backend)
    engine_options = EngineOptions(engine, address, replicas, shard_size)
    spec, rule, source = model_and_rule(names, target, backend, device, precision, prompt, label_cache, threshold,
                                        threshold_file, topk, scores)
    return TagJob(
        inputs=tuple(os.fspath(p) for p in inputs),
        output=OutputPolicy(os.fspath(out), resume, overwrite),
        model=spec,
        labels=tuple(names), rule=rule, rule_source=source, decoding=decoding,
        reading=reading, batch_size=batch_size, workers=workers, engine=engine_options,
    )
