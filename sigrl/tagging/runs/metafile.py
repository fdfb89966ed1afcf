"""The run metadata sidecar's file: `OUT.meta.json` beside the output, read and written atomically."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

from sigrl.atomic import write_text_atomic
from sigrl.errors import SigrlError


def meta_path(out: str | os.PathLike[str]) -> Path:
    return Path(os.fspath(out) + ".meta.json")


def write_meta(out: str | os.PathLike[str], meta: Mapping[str, Any]) -> Path:
    """Writes the run metadata to `<out>.meta.json` atomically (temp file + os.replace)."""
    return write_text_atomic(meta_path(out), json_text(meta), durable=True)


def json_text(data: Any) -> str:
    """Indented JSON that can always be written as UTF-8: a non-UTF-8 file name that slipped into
    `data` (as a surrogate escape) is written as a JSON escape instead of failing the run."""
    text = json.dumps(data, indent=1, ensure_ascii=False, default=str) + "\n"
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(data, indent=1, ensure_ascii=True, default=str) + "\n"
    return text


def read_meta(out: str | os.PathLike[str]) -> dict[str, Any] | None:
    target = meta_path(out)
    try:
        return json.loads(target.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except json.JSONDecodeError as err:
        raise SigrlError(f"{target}: not valid JSON ({err}); delete it and rerun") from None
