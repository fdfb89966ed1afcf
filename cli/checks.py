"""The CLI's one validation layer: checks of argument values, run by Typer before a command starts.

Numeric bounds are declared on the options themselves (`min=`, `max=`); what Typer cannot declare
(places that must be writable, a prompt template, a positive float) is a callback here. Either way
a bad value becomes a click usage error, which `main` prints as one line with exit code 2, before
any model is loaded or any file is touched.
"""

from __future__ import annotations

import os
import string
import tempfile
from pathlib import Path
from typing import Optional

import typer


def _nearest_existing(path: Path) -> Path:
    path = Path(os.path.abspath(path))
    while not path.exists() and path.parent != path:
        path = path.parent
    return path


def _check_can_create_in(target: Path, where: Path) -> None:
    """Creating `target` needs `where` (its nearest existing ancestor) to be a folder we can write."""
    base = _nearest_existing(where)
    if not base.is_dir():
        raise typer.BadParameter(f"{target}: {base} is a file, so nothing can be created under it")
    try:  # the only reliable test: permissions, read-only mounts and special file systems differ
        tempfile.TemporaryFile(dir=base).close()
    except OSError as err:
        raise typer.BadParameter(f"{target}: cannot write in {base} ({err.strerror}); choose a place you can write to") from None


def output_file(value: Optional[Path]) -> Optional[Path]:
    """A file to create or replace: not a folder, and creatable where it is."""
    if value is not None:
        if value.is_dir():
            raise typer.BadParameter(f"{value} is a folder; give a file name")
        _check_can_create_in(value, value.parent)
    return value


def output_path(value: Optional[Path]) -> Optional[Path]:
    """A file or a folder to create (`sigrl tag --out` is a folder with --engine ray)."""
    if value is not None:
        _check_can_create_in(value, value if value.is_dir() else value.parent)
    return value


def output_folder(value: Optional[Path]) -> Optional[Path]:
    """A folder to create or write into."""
    if value is not None:
        if value.exists() and not value.is_dir():
            raise typer.BadParameter(f"{value} is a file; give a folder")
        _check_can_create_in(value, value)
    return value


def prompt_template(value: Optional[str]) -> Optional[str]:
    """A prompt template: `{label}` and no other placeholder."""
    if value is None:
        return value
    try:
        fields = {name for _, name, _, _ in string.Formatter().parse(value) if name is not None}
    except ValueError as err:
        raise typer.BadParameter(f"{value!r} is not a valid template ({err}); write {{{{ and }}}} for literal braces") from None
    if fields != {"label"}:
        other = sorted(fields - {"label"})
        what = f"unknown placeholder(s) {other}" if other else "no {label} placeholder"
        raise typer.BadParameter(f"{value!r} has {what}; use exactly one kind, {{label}}, e.g. 'a photo of a {{label}}'")
    return value


def positive_float(value: Optional[float]) -> Optional[float]:
    if value is not None and not value > 0:  # also refuses NaN
        raise typer.BadParameter(f"must be a number > 0, got {value}")
    return value
