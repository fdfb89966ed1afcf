"""The embedded default model: the best validated OV checkpoint trained on the procedural world
(today a CLIP head on the world CLIP: it beat the SigRL heads, docs/results.md), and its export.

It ships inside the package in two forms, kept in step:
- `sigrl-world.safetensors`: the checkpoint (weights in fp16 to stay small; they load into fp32
  parameters) with its label set, all world labels, in the metadata. Training (`--init`),
  evaluation and `--backend torch` use it.
- `export/`: the same model exported for ONNX Runtime (`sigrl export`; its weights are stored in
  fp16 too, which is exact for an fp16 checkpoint), whose manifest names the checkpoint's sha256.
  Tagging with no --model runs it when onnxruntime is installed: no torch import, so a short job
  starts in about a second instead of eight.

Rebuild both with `python scripts/results.py --pack-default` (see docs/results.md), then, from the
repository root:

    sigrl export --model sigrl/default_model/sigrl-world.safetensors --out sigrl/default_model/export

This module imports nothing heavy (no torch): the ONNX Runtime path asks it where the export is.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from sigrl.errors import SigrlError

FILENAME = "sigrl-world.safetensors"
EXPORT_DIRNAME = "export"


def _here() -> Path:
    return Path(str(resources.files("sigrl.default_model")))


def path() -> Path:
    """Where the packaged default checkpoint lives (raises if this install has none)."""
    found = _here() / FILENAME
    if not found.is_file():
        raise SigrlError(f"{found}: this install ships no default model; pass a checkpoint explicitly or "
                         "rebuild it with `python scripts/results.py --pack-default`")
    return found


def export_path() -> Path | None:
    """The packaged export of the default model (None when this install ships none)."""
    found = _here() / EXPORT_DIRNAME
    return found if (found / "manifest.json").is_file() else None


def is_default(target: str | Path) -> bool:
    """Whether a model reference is the packaged default model, in either form."""
    here = _here().resolve()
    try:
        resolved = Path(target).resolve()
    except OSError:
        return False
    return resolved in (here / FILENAME, here / EXPORT_DIRNAME)


def load_default():
    """The default model (a `sigrl.model.SigRL` in eval mode)."""
    from sigrl.model import load_model

    return load_model(path())


def labels() -> list[str]:
    from sigrl.checkpoint import read_metadata

    return list(read_metadata(path())["labels"])


def pack(checkpoint: str | Path, out: str | Path, extra_summary: Mapping[str, Any] | None = None) -> Path:
    """Copy a model checkpoint with floating-point weights stored as fp16 (half the size)."""
    from sigrl.checkpoint import load_tensors, read_metadata, save_tensors

    meta = read_metadata(checkpoint)
    if meta.get("format") != "sigrl-model":
        raise SigrlError(f"{checkpoint}: not a sigrl model checkpoint")
    tensors = {k: v.half() if v.is_floating_point() else v for k, v in load_tensors(checkpoint).items()}
    meta = dict(meta)
    meta["summary"] = {**meta.get("summary", {}), "stored_dtype": "float16", "packed_from": str(checkpoint),
                       **dict(extra_summary or {})}
    save_tensors(Path(out), tensors, meta)
    return Path(out)
