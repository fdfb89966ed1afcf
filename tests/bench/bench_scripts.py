"""The measurement scripts of scripts/bench/ (not installed with sigrl), imported from the checkout."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from types import ModuleType

SCRIPTS = Path(__file__).resolve().parents[2] / "scripts" / "bench"


def bench_script(name: str) -> ModuleType:
    """scripts/bench/NAME.py as a module; its folder goes on sys.path, as when it runs as a script."""
    if str(SCRIPTS) not in sys.path:
        sys.path.insert(0, str(SCRIPTS))
    return importlib.import_module(name)
