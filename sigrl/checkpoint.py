"""Self-describing checkpoints: safetensors weights + JSON metadata in the same file.

The metadata (config, preprocessing, labels, version, training summary) lives in the safetensors
header, so one file is the whole artifact and loading never unpickles anything.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path
from typing import Any, Mapping

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from sigrl.errors import SigrlError

_META_KEY = "sigrl"


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks: identifies checkpoints and graphs."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def save_tensors(path: Path, tensors: Mapping[str, torch.Tensor], meta: Mapping[str, Any]) -> None:
    """Write tensors and JSON metadata atomically (a crash never leaves a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # safetensors refuses tensors that share storage (tied or view weights); store plain copies.
    plain = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    tmp = path.with_name(path.name + ".tmp")
    save_file(plain, str(tmp), metadata={_META_KEY: json.dumps(meta, sort_keys=True)})
    os.replace(tmp, path)


def _header(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            raw = fh.read(8)
            if len(raw) < 8:
                raise SigrlError(f"{path}: file is truncated or not a safetensors checkpoint ({len(raw)} bytes)")
            (size,) = struct.unpack("<Q", raw)
            if size > 100_000_000:
                raise SigrlError(f"{path}: not a safetensors checkpoint (implausible header size)")
            blob = fh.read(size)
    except FileNotFoundError:
        raise SigrlError(f"{path}: no such checkpoint file") from None
    except IsADirectoryError:
        raise SigrlError(f"{path}: is a directory, expected a .safetensors checkpoint file") from None
    if len(blob) < size:
        raise SigrlError(f"{path}: file is truncated (header cut short); re-copy or re-save the checkpoint")
    try:
        header = json.loads(blob)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise SigrlError(f"{path}: not a safetensors checkpoint (unreadable header)") from None
    if not isinstance(header, dict) or not isinstance(header.get("__metadata__", {}), dict):
        raise SigrlError(f"{path}: not a safetensors checkpoint (its header is not a JSON object of tensors)")
    return header


def read_metadata(path: str | Path) -> dict[str, Any]:
    """The JSON metadata of a checkpoint, reading only its header."""
    path = Path(path)
    meta = _header(path).get("__metadata__") or {}
    if _META_KEY not in meta:
        return {}
    try:
        data = json.loads(meta[_META_KEY])
    except (TypeError, json.JSONDecodeError):
        data = None
    if not isinstance(data, dict):
        raise SigrlError(f"{path}: its sigrl metadata is not a JSON object; re-save the checkpoint with sigrl")
    return data


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """All tensors of a checkpoint, after checking the file is whole."""
    path = Path(path)
    header = _header(path)
    with open(path, "rb") as fh:
        (size,) = struct.unpack("<Q", fh.read(8))
    data_end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    expected, actual = 8 + size + data_end, path.stat().st_size
    if actual < expected:
        raise SigrlError(f"{path}: file is truncated ({actual} of {expected} bytes); re-copy or re-save the checkpoint")
    try:
        return load_file(str(path))
    except SafetensorError as err:
        raise SigrlError(f"{path}: corrupt checkpoint ({err})") from None
