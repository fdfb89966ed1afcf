"""The embedded default model: an OV SigRL checkpoint trained on the procedural world.

It ships inside the package (weights in fp16 to stay small; they load into fp32 parameters) with
its label set, all world labels, in the checkpoint metadata. Commands that take a model use it
when none is given. It is reproduced by `python scripts/results.py --pack-default` (see
docs/results.md), which packs the OV SigRL run with the best validation mAP.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from sigrl.checkpoint import load_tensors, read_metadata, save_tensors
from sigrl.errors import SigrlError

FILENAME = "sigrl-world.safetensors"


def path() -> Path:
    """Where the packaged default checkpoint lives (raises if this install has none)."""
    found = Path(str(resources.files("sigrl.default_model") / FILENAME))
    if not found.is_file():
        raise SigrlError(f"{found}: this install ships no default model; pass a checkpoint explicitly or "
                         "rebuild it with `python scripts/results.py --pack-default`")
    return found


def load_default():
    """The default model (a `sigrl.model.SigRL` in eval mode)."""
    from sigrl.model import load_model

    return load_model(path())


def labels() -> list[str]:
    return list(read_metadata(path())["labels"])


def pack(checkpoint: str | Path, out: str | Path, extra_summary: Mapping[str, Any] | None = None) -> Path:
    """Copy a model checkpoint with floating-point weights stored as fp16 (half the size)."""
    meta = read_metadata(checkpoint)
    if meta.get("format") != "sigrl-model":
        raise SigrlError(f"{checkpoint}: not a sigrl model checkpoint")
    tensors = {k: v.half() if v.is_floating_point() else v for k, v in load_tensors(checkpoint).items()}
    meta = dict(meta)
    meta["summary"] = {**meta.get("summary", {}), "stored_dtype": "float16", "packed_from": str(checkpoint),
                       **dict(extra_summary or {})}
    save_tensors(Path(out), tensors, meta)
    return Path(out)
