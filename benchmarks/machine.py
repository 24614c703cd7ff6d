"""What the benchmarks ran on, for the headers they write into RESULTS.md, and writing their sections there."""

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


def replace_section(results: Path, name: str, text: str) -> None:
    """Put ``text`` (which starts with ``<!-- name -->`` and ends with ``<!-- /name -->``) in place
    of that section of ``results``, or append it when the file has none."""
    current = results.read_text() if results.exists() else "# Benchmark results\n"
    start, end = f"<!-- {name} -->", f"<!-- /{name} -->"
    if start in current and end in current:
        current = current[: current.index(start)] + text + current[current.index(end) + len(end) :]
    else:
        current = current.rstrip("\n") + "\n\n" + text + "\n"
    results.write_text(current)
