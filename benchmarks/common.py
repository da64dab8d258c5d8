"""The benchmarks' one convention: lensflow and the bare library interleaved, as a rate ratio.

`interleave(lensflow, bare, rounds=5)` runs A, B, A, B, ... (after one warm-up run of each),
takes the median time of each and reports the rate ratio lensflow/bare: 1.00 when lensflow is
as fast as the bare library, below 1 when slower. For identical work it cannot exceed 1.0, so
a ratio above 1.02 is flagged as measurement noise. The machine's load average is recorded
before and after, beside the numbers.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lensflow.io import write_text

RESULTS = Path(__file__).parent / "results"
MIN_ROUNDS = 5
NOISE = 1.02
"""A rate ratio above this, for identical work, is measurement noise."""
NOISE_FLAG = "noise: > 1.02 cannot hold for identical work"


def load_average() -> tuple[float, float, float]:
    """The 1-, 5- and 15-minute load averages (os.getloadavg)."""
    one, five, fifteen = os.getloadavg()
    return round(one, 2), round(five, 2), round(fifteen, 2)


@dataclass(frozen=True)
class Interleaved:
    """Seconds of each round of lensflow (A) and the bare library (B), and the load around them."""

    lensflow: tuple[float, ...]
    bare: tuple[float, ...]
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float]

    @property
    def lensflow_median(self) -> float:
        return statistics.median(self.lensflow)

    @property
    def bare_median(self) -> float:
        return statistics.median(self.bare)

    @property
    def ratio(self) -> float:
        """Rate ratio lensflow/bare of the medians (<= 1.0 for identical work)."""
        return self.bare_median / self.lensflow_median

    @property
    def round_ratios(self) -> tuple[float, float]:
        """The lowest and highest rate ratio of one round's pair (A_i, B_i)."""
        pairs = [b / a for a, b in zip(self.lensflow, self.bare, strict=True)]
        return min(pairs), max(pairs)

    @property
    def noisy(self) -> bool:
        return self.ratio > NOISE

    def ratio_cell(self, *, above: str = NOISE_FLAG) -> str:
        """The ratio for a table: median, the rounds' range, and `above` when above 1.02."""
        low, high = self.round_ratios
        flag = f" ({above})" if self.noisy else ""
        return f"{self.ratio:.2f} [{low:.2f}-{high:.2f}]{flag}"

    def load_text(self) -> str:
        """'load 1.9 -> 2.3' (1-minute averages before and after)."""
        return f"load {self.load_before[0]:.2f} -> {self.load_after[0]:.2f}"


def _seconds(work: Callable[[], object]) -> float:
    start = time.perf_counter()
    work()
    return time.perf_counter() - start


def interleave(
    lensflow: Callable[[], object],
    bare: Callable[[], object],
    *,
    rounds: int = MIN_ROUNDS,
    warmup: bool = True,
) -> Interleaved:
    """Time lensflow and bare alternately (A, B, A, B, ...), `rounds` of each (>= 5)."""
    if rounds < MIN_ROUNDS:
        msg = f"rounds must be at least {MIN_ROUNDS}, got {rounds}"
        raise ValueError(msg)
    before = load_average()
    if warmup:
        lensflow()
        bare()
    a: list[float] = []
    b: list[float] = []
    for _ in range(rounds):
        a.append(_seconds(lensflow))
        b.append(_seconds(bare))
    return Interleaved(tuple(a), tuple(b), before, load_average())


def best_seconds(work: Callable[[], object], *, repeats: int = 5) -> float:
    """The fastest of `repeats` runs of work(), after one warm-up run (one-sided timings)."""
    work()
    return min(_seconds(work) for _ in range(repeats))


def machine() -> str:
    """A one-line description of the machine the numbers come from."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, Python {platform.python_version()}"


CONVENTION = (
    "Convention: lensflow (A) and the bare library (B) interleaved A, B, A, B, ... after one "
    "warm-up run each; ratio = rate of lensflow / rate of bare from the median times (1.00: as "
    "fast; below 1: slower), [lowest-highest] of the rounds' pairs; above 1.02 for identical "
    "work is flagged as noise. Load: 1-minute load average before -> after."
)


def write_result(name: str, lines: list[str]) -> Path:
    """Write a markdown table of results under benchmarks/results/ and print it."""
    path = RESULTS / f"{name}.md"
    text = "\n".join(lines) + "\n"
    write_text(path, text)
    print(text)
    return path


def rate_text(rate: float, unit: str) -> str:
    """A rate for a table: '11.2 M rows/s' from 1e6 up, else '3,050 images/s'."""
    if rate >= 1e6:
        return f"{rate / 1e6:.1f} M {unit}"
    return f"{rate:,.0f} {unit}"


def summary_row(
    stage: str, result: Interleaved, *, items: float, unit: str, bare: str
) -> dict[str, str]:
    """One row of the README's table: the stage, both rates, the ratio and the load."""
    return {
        "stage": stage,
        "lensflow": rate_text(items / result.lensflow_median, unit),
        "bare": f"{rate_text(items / result.bare_median, unit)} ({bare})",
        "ratio": result.ratio_cell(),
        "load": result.load_text(),
    }


def record(name: str, rows: list[dict[str, str]], **extra: object) -> Path:
    """Write results/<name>.json: the README's rows of this benchmark and any extra numbers."""
    path = RESULTS / f"{name}.json"
    write_text(path, json.dumps({"rows": rows, **extra}, indent=1) + "\n")
    return path
