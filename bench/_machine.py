"""Where a benchmark ran: the machine and the package versions, recorded with every result."""

from __future__ import annotations

import importlib.metadata as md
import os
import platform
from pathlib import Path


def machine() -> dict:
    """CPU model, cores (all and usable), memory, Python, platform and the load average at start."""
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                   if line.startswith("model name"))
    except (OSError, StopIteration):
        cpu = platform.processor() or "unknown"
    try:
        mem_kb = int(next(line for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")).split()[1])
    except (OSError, StopIteration):
        mem_kb = 0
    return {"cpu": cpu, "cores": os.cpu_count(), "usable_cores": len(os.sched_getaffinity(0)), "memory_gb": round(mem_kb / 2**20, 1),
            "python": platform.python_version(), "platform": platform.platform(), "loadavg_start": [round(x, 2) for x in os.getloadavg()]}


def versions(names: tuple[str, ...]) -> dict[str, str | None]:
    """Installed versions of ``names`` (None where a package is missing)."""
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = md.version(name)
        except md.PackageNotFoundError:
            out[name] = None
    return out
