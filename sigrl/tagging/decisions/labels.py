"""Reading a label file: one label per line, `#` comment lines and blank lines ignored."""

from __future__ import annotations

import os
from pathlib import Path

from sigrl.errors import SigrlError


def label_key(label: str) -> str:
    """Labels that the model cannot tell apart: CLIP's tokenizer lower-cases and splits on
    whitespace, so "Red car" and "red  car" would get identical scores."""
    return " ".join(label.casefold().split())


def read_labels(path: str | os.PathLike[str]) -> list[str]:
    """The labels in `path`, in file order, stripped of surrounding whitespace.

    Whole-line comments only: a `#` inside a label is kept. Duplicates (compared by `label_key`)
    and a file with no labels are errors that name the file and the offending lines.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise SigrlError(f"{path}: label file not found") from None
    except OSError as err:
        raise SigrlError(f"{path}: cannot read label file ({err.strerror or err})") from None
    try:
        text = raw.decode("utf-8-sig")  # tolerate a byte-order mark written by some editors
    except UnicodeDecodeError as err:
        line = raw[: err.start].count(b"\n") + 1
        raise SigrlError(
            f"{path}: line {line} is not valid UTF-8 (byte {err.start}); save the label file as UTF-8"
        ) from None

    lines = text.splitlines()
    labels: list[str] = []
    lines_of: dict[str, list[int]] = {}
    for number, line in enumerate(lines, start=1):
        label = line.strip()
        if not label or label.startswith("#"):
            continue
        key = label_key(label)
        if key not in lines_of:
            labels.append(label)
        lines_of.setdefault(key, []).append(number)

    duplicates = [numbers for numbers in lines_of.values() if len(numbers) > 1]
    if duplicates:
        listed = "; ".join(
            f"{lines[numbers[0] - 1].strip()!r} on lines {', '.join(map(str, numbers))}" for numbers in duplicates
        )
        raise SigrlError(
            f"{path}: duplicate labels (compared ignoring case and spacing): {listed}; keep one of each"
        )
    if not labels:
        raise SigrlError(
            f"{path}: no labels (all {len(lines)} lines are blank or # comments); write one label per line"
        )
    return labels
