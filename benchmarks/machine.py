"""What the benchmarks ran on, for the headers they write into RESULTS.md."""

from __future__ import annotations

import platform
from pathlib import Path


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``), e.g. "Intel(R) Xeon(R) Processor"; timings from
    different CPUs are not comparable, and this project's machines vary between sessions."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
