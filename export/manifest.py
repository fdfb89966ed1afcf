"""The export directory contract: `manifest.json` and the guard against clobbering user data.

An export directory needs nothing else to be used (no PyTorch model, no checkpoint):

    DIR/manifest.json    this file's contract (format "sigrl-export", format_version 1)
    DIR/text.onnx        tokens int64 [N, C] -> embeddings float32 [N, D], context float32 [N, D]
    DIR/image.onnx       images uint8 [B, S, S, 3], embeddings [N, D], context [N, D] -> scores [B, N]
    DIR/image.int8.onnx  the image graph, ONNX Runtime dynamic int8 (with --precision int8)
    DIR/image.<p>.engine + .engine.json   TensorRT engine and its sidecar (--format trt)
    DIR/parity.json      the verification report of the export

manifest.json:
    {"format": "sigrl-export", "format_version": 1, "sigrl_version": str,
     "model": {"name", "config" (ModelConfig.to_dict()), "arch", "labels" (list or null),
               "source", "source_sha256" (null when the model is not a file)},
     "preprocess": {PreprocessConfig fields}, "prompt": str,
     "tokenizer": {"kind": "open_clip-bpe", "context_length": C},
     "graphs": {"text":  {"file", "inputs": {"tokens": ["N", C]},
                          "outputs": {"embeddings": ["N", D], "context": ["N", D]}},
                "image": {"file", "inputs": {"images": ["B", S, S, 3], "embeddings": ["N", D],
                                              "context": ["N", D]},
                          "outputs": {"scores": ["B", "N"]}, "label_chunk": null}},
     "variants": {"image": {"fp32": "image.onnx", "int8": "image.int8.onnx"}},
     "engines": {precision: {"file", "sidecar"}}, "parity": "parity.json"}

Shapes name dynamic axes by letter and give static ones as integers. The token context C is static:
the text graph takes the tokenizer's full, zero-padded output (see onnx.py for why).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

from sigrl.atomic import write_text_atomic
from sigrl.errors import SigrlError

# The contract's constants and its reader live in the library (sigrl.runtime.manifest), which
# reads what this package writes; the exporter uses the same ones.
from sigrl.runtime.manifest import FORMAT as EXPORT_FORMAT
from sigrl.runtime.manifest import FORMAT_VERSION, MANIFEST  # noqa: F401  (part of this module's API)
from sigrl.runtime.manifest import read_manifest as _read_export


def write_json(path: Path, data: Mapping[str, Any]) -> None:
    """Write JSON atomically, so a crash never leaves a half-written manifest or report."""
    write_text_atomic(path, json.dumps(data, indent=2, sort_keys=False) + "\n")


def read_manifest(out_dir: str | Path) -> dict[str, Any]:
    """The manifest of an existing export, checked as the runners check it (parity included)."""
    return dict(_read_export(out_dir).data)


def is_export_dir(path: Path) -> bool:
    try:
        return json.loads((path / MANIFEST).read_text()).get("format") == EXPORT_FORMAT
    except (OSError, ValueError):
        return False


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create DIR, or reuse it if empty or a previous sigrl export; never touch anything else."""
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise SigrlError(f"{path}: exists and is not a directory; choose a new directory for the export")
    if path.is_dir() and any(path.iterdir()) and not is_export_dir(path):
        raise SigrlError(
            f"{path}: directory is not empty and holds no sigrl export (no {MANIFEST}); "
            "refusing to overwrite it: choose an empty or new directory"
        )
    path.mkdir(parents=True, exist_ok=True)
    return path
