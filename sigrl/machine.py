"""Facts about this machine: usable cores, CPU model, a readable machine id.

It imports nothing of sigrl, so any layer (the runtime's runners, the tagging engines, the install
report in sigrl.environment, the bench) can ask without pulling in the others.
"""

from __future__ import annotations

import os
import platform


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_model() -> str:
    try:
        for line in open("/proc/cpuinfo", encoding="utf-8"):
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_id() -> str:
    """A stable, readable name for this kind of machine, for results folders: cpu-slug + cores (+ GPU)."""
    import re

    slug = re.sub(r"[^a-z0-9]+", "-", cpu_model().lower()).strip("-")
    slug = re.sub(r"-(processor|cpu)\b.*$", "", slug)[:40].strip("-")
    name = f"{slug}-{os.cpu_count()}c"
    try:
        import sys

        torch = sys.modules.get("torch")  # only if already loaded: this must stay cheap
        if torch is not None and torch.cuda.is_available():
            gpu = re.sub(r"[^a-z0-9]+", "-", torch.cuda.get_device_name(0).lower()).strip("-")
            name += f"-{gpu}"
    except Exception:
        pass
    return name
