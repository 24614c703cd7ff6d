"""What the benchmarks ran on, for the headers they write into RESULTS.md, and writing their sections there."""

from __future__ import annotations

import platform
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar

Work = TypeVar("Work")


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


def interleaved_ms(
    steps: dict[str, Callable[[Work], None]],
    work: Callable[[int], Sequence[Work]],
    trials: int,
    warm_up: Sequence[Work],
) -> dict[str, list[float]]:
    """Milliseconds per item of work for each of ``steps`` (name -> a function of one item), one
    figure per trial: each step first runs ``warm_up`` (optimiser state, allocator), then every
    trial gives all steps the same ``work(trial)``, in an order that alternates between trials so
    neither side always runs first (cache, clock)."""
    for step in steps.values():
        for item in warm_up:
            step(item)
    out: dict[str, list[float]] = {name: [] for name in steps}
    for trial in range(trials):
        items = work(trial)
        for name in list(steps)[:: 1 if trial % 2 == 0 else -1]:
            start = time.perf_counter()
            for item in items:
                steps[name](item)
            out[name].append((time.perf_counter() - start) / len(items) * 1e3)
    return out


def spread(values: list[float], digits: int = 1) -> str:
    """``median [min, max]`` of a figure's trials."""
    return f"{statistics.median(values):.{digits}f} [{min(values):.{digits}f}, {max(values):.{digits}f}]"
