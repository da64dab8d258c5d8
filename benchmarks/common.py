"""Timing helpers shared by the benchmarks: best of several runs, single-threaded where stated."""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def best_seconds(work: Callable[[], object], *, repeats: int = 5) -> float:
    """The fastest of `repeats` runs of work(), after one warm-up run."""
    work()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return min(times)


def machine() -> str:
    """A one-line description of the machine the numbers come from."""
    return f"{platform.processor() or platform.machine()}, Python {platform.python_version()}"


def write_result(name: str, lines: list[str]) -> Path:
    """Write a markdown table of results and print it."""
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / f"{name}.md"
    text = "\n".join(lines) + "\n"
    path.write_text(text)
    print(text)
    return path
