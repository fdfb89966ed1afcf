"""What the bench runs on: the model (default: the embedded one), the data (default: the world's test
split) and the model's ONNX export, each resolved once and cached.

Caches live under `$SIGRL_CACHE/bench` (else `~/.cache/sigrl/bench`), like the label cache:
- the world's test split, synthesized with seed 0 when no manifest is given. Every world image is
  drawn from a generator seeded by (seed, split, index), so these n images are exactly the first n
  of `sigrl data synth --seed 0`'s test split, whatever machine made them;
- the export of a model (`sigrl export --format onnx --precision int8`, i.e. fp32 + int8 graphs with
  their parity report), keyed by the checkpoint's sha256 (or the config name) and sigrl's version.
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import sigrl
from sigrl.errors import SigrlError

log = logging.getLogger(__name__)

CACHE_ENV = "SIGRL_CACHE"
WORLD_SEED = 0
FALLBACK_MODEL = "sigrl-tiny"


def cache_root() -> Path:
    root = os.environ.get(CACHE_ENV)
    return (Path(root).expanduser() if root else Path.home() / ".cache" / "sigrl") / "bench"


@dataclass(frozen=True)
class ModelChoice:
    spec: str | None  # what open_model accepts (checkpoint, config name, open_clip spec); None: export only
    note: str  # where it came from, shown in the report
    export: str | None = None  # an export directory given with --model

    @property
    def label(self) -> str:
        return self.spec or str(self.export)


def resolve_model(model: str | None) -> ModelChoice:
    """The given model, else the embedded default model, else the tiny config (random weights).

    An export directory is accepted too: its graphs are measured as they are, and the PyTorch rows
    run its source checkpoint when that file is still where the export recorded it.
    """
    if model:
        path = Path(model)
        if path.is_dir():
            return _from_export(path)
        if model.endswith(".safetensors") and not path.is_file():
            raise SigrlError(f"{model}: no such checkpoint; pass --model with an existing .safetensors file")
        return ModelChoice(model, "given with --model")
    try:
        from sigrl import default_model  # type: ignore[attr-defined]

        path = Path(default_model.path())
        if path.is_file():
            return ModelChoice(str(path), "the embedded default model")
        why = f"{path} is missing"
    except (ImportError, AttributeError, SigrlError, OSError) as err:
        why = f"not available ({type(err).__name__}: {err})"
    log.warning("embedded default model %s; benchmarking %s with random weights", why, FALLBACK_MODEL)
    return ModelChoice(FALLBACK_MODEL, f"{FALLBACK_MODEL} with random weights (embedded default model {why})")


def _from_export(path: Path) -> ModelChoice:
    from sigrl.runtime.manifest import read_manifest

    source = read_manifest(path).data["model"].get("source")
    if source and Path(source).is_file():
        return ModelChoice(str(source), f"source checkpoint of the export {path}", str(path))
    return ModelChoice(None, f"the export {path} (its source {source!r} is not available to PyTorch)", str(path))


def world_test_split(n_images: int, root: Path | None = None) -> Path:
    """The manifest of the first n_images of the seed-0 world's test split, synthesized once."""
    from sigrl.data.world import SynthSpec, synth

    base = (root or cache_root()) / f"world-seed{WORLD_SEED}-test{n_images}"
    manifest = base / "test.jsonl"
    if manifest.is_file():
        return manifest
    base.parent.mkdir(parents=True, exist_ok=True)
    # Built in a temporary sibling and renamed, so an interrupted run never leaves half a split.
    tmp = Path(tempfile.mkdtemp(prefix=base.name + ".", dir=base.parent))
    try:
        synth(SynthSpec(out=tmp, seed=WORLD_SEED, sizes={"test": n_images}))
        os.replace(tmp, base)
    except OSError:
        if not manifest.is_file():  # another process won the rename: use its copy
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log.info("synthesized %d world test images into %s", n_images, base)
    return manifest


def _export_key(spec: str) -> str:
    from sigrl.checkpoint import file_sha256

    ident = file_sha256(spec) if Path(spec).is_file() else spec
    return hashlib.sha256(f"{ident}|{sigrl.__version__}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class ExportOutcome:
    directory: Path | None
    error: str  # empty when the export exists and passed parity
    parity: dict  # variant -> {"passed", "max_abs_diff", ...}


def ensure_export(spec: str, root: Path | None = None) -> ExportOutcome:
    """The cached fp32 + int8 ONNX export of `spec`, exporting it on first use."""
    from sigrl.runtime.manifest import is_export_dir

    if is_export_dir(Path(spec)):
        return ExportOutcome(Path(spec), "", _read_parity(Path(spec)))
    directory = (root or cache_root()) / "exports" / _export_key(spec)
    if not (is_export_dir(directory) and (directory / "parity.json").is_file()):
        from sigrl.export.exporter import export_model

        try:
            export_model(spec, directory, format="onnx", precision="int8")
        except SigrlError as err:
            return ExportOutcome(None, f"export failed: {err}", _read_parity(directory))
        except Exception as err:  # a tracer failure is a row status, not a crash of the whole bench
            log.warning("export of %s failed", spec, exc_info=True)
            return ExportOutcome(None, f"export failed: {type(err).__name__}: {err}", {})
    return ExportOutcome(directory, "", _read_parity(directory))


def ensure_engine(directory: Path, precision: str) -> str:
    """Build (or reuse, TensorRT caches them) the export's engine; returns "" or why it failed."""
    from sigrl.runtime.manifest import read_manifest

    if precision in read_manifest(directory).engines():
        return ""
    from sigrl.export.exporter import export_model

    try:
        export_model(None, directory, format="trt", precision=precision)
    except Exception as err:  # a failed engine build is the trt row's status
        log.warning("TensorRT %s engine for %s failed", precision, directory, exc_info=True)
        return f"engine build failed: {type(err).__name__}: {err}"
    return ""


def _read_parity(directory: Path) -> dict:
    import json

    try:
        return dict(json.loads((directory / "parity.json").read_text()).get("variants", {}))
    except (OSError, ValueError):
        return {}
