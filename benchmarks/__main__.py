"""Run every benchmark (`make bench`), then regenerate the README's benchmark table.

`python -m benchmarks` runs each `bench_*.py` here (each writes its tables under
benchmarks/results/) and then `benchmarks.readme`; `python -m benchmarks bench_scan ...` runs
only those named (the README is regenerated from whatever results are there).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

FIRST = (
    "bench_catalog",
    "bench_cutouts",
    "bench_ensemble",
    "bench_images",
    "bench_scan",
    "bench_estimate",
    "bench_load",
    "bench_simulate",
)


def modules() -> list[str]:
    """Every benchmark module: the ones above in their order, then any other bench_*.py."""
    found = sorted(p.stem for p in Path(__file__).parent.glob("bench_*.py"))
    return [m for m in FIRST if m in found] + [m for m in found if m not in FIRST]


def main() -> int:
    chosen = sys.argv[1:] or modules()
    for name in chosen:
        print(f"== {name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()
    print("== readme", flush=True)
    importlib.import_module("benchmarks.readme").main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
