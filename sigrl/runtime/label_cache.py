"""On-disk cache of label-side tensors, so a label set goes through the text encoder once.

An entry is an .npz file (plain numpy arrays, no pickle, readable without torch) named by the
sha256 of (model hash, labels, prompt template): a different model, label set, label order or
prompt is a different entry. Writes are atomic (temporary file + rename), so a crash or two
processes writing the same entry never leave a half-written file behind; a corrupt or mismatched
entry is logged, ignored and overwritten by the next write.

Location: the directory given, else `$SIGRL_CACHE/labels`, else `~/.cache/sigrl/labels`.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger(__name__)

CACHE_ENV = "SIGRL_CACHE"
_FORMAT = 1


@dataclass(frozen=True)
class LabelArrays:
    """The label-side tensors of one label set, as float32 host arrays."""

    embeddings: np.ndarray  # H [N, D]
    context: np.ndarray  # [N, D]

    def __len__(self) -> int:
        return self.embeddings.shape[0]


def default_cache_dir() -> Path:
    root = os.environ.get(CACHE_ENV)
    base = Path(root).expanduser() if root else Path.home() / ".cache" / "sigrl"
    return base / "labels"


def cache_key(model_hash: str, labels: Sequence[str], prompt: str) -> str:
    """sha256 over the three things the label side depends on (labels in order)."""
    blob = json.dumps({"format": _FORMAT, "model": model_hash, "labels": list(labels), "prompt": prompt})
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


class LabelCache:
    """Label-side tensors on disk; `hits`, `misses` and `writes` count what happened."""

    def __init__(self, directory: str | os.PathLike[str] | None = None):
        self.directory = Path(directory).expanduser() if directory is not None else default_cache_dir()
        self.hits = self.misses = self.writes = 0

    def path(self, model_hash: str, labels: Sequence[str], prompt: str) -> Path:
        return self.directory / f"{cache_key(model_hash, labels, prompt)}.npz"

    def get(self, model_hash: str, labels: Sequence[str], prompt: str) -> LabelArrays | None:
        """The cached tensors, or None (absent, unreadable, or not for these labels)."""
        path = self.path(model_hash, labels, prompt)
        if not path.is_file():
            self.misses += 1
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(bytes(data["meta"]).decode("utf-8"))
                embeddings = np.ascontiguousarray(data["embeddings"], dtype=np.float32)
                context = np.ascontiguousarray(data["context"], dtype=np.float32)
            valid = (
                meta == {"model": model_hash, "labels": list(labels), "prompt": prompt}
                and embeddings.ndim == 2
                and embeddings.shape[0] == len(labels)
                and context.shape == embeddings.shape
            )
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile, UnicodeDecodeError) as err:
            log.warning("label cache entry %s is unreadable (%s); recomputing it", path, err)
            self.misses += 1
            return None
        if not valid:
            log.warning("label cache entry %s does not match its key; recomputing it", path)
            self.misses += 1
            return None
        self.hits += 1
        log.debug("label cache hit %s (%d labels)", path.name, len(labels))
        return LabelArrays(embeddings=embeddings, context=context)

    def put(self, model_hash: str, labels: Sequence[str], prompt: str, side: LabelArrays) -> Path:
        """Store the tensors atomically; returns the entry's path."""
        path = self.path(model_hash, labels, prompt)
        self.directory.mkdir(parents=True, exist_ok=True)
        meta = json.dumps({"model": model_hash, "labels": list(labels), "prompt": prompt}).encode("utf-8")
        fd, tmp = tempfile.mkstemp(dir=self.directory, prefix=path.stem[:16], suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as fh:
                np.savez(
                    fh,
                    embeddings=np.asarray(side.embeddings, dtype=np.float32),
                    context=np.asarray(side.context, dtype=np.float32),
                    meta=np.frombuffer(meta, dtype=np.uint8),
                )
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        self.writes += 1
        return path

    def clear(self) -> int:
        """Delete every entry; returns how many were removed."""
        removed = 0
        for entry in self.directory.glob("*.npz"):
            entry.unlink(missing_ok=True)
            removed += 1
        return removed
