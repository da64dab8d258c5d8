"""Run every benchmark (`make bench`); each writes its table under benchmarks/results/."""

from __future__ import annotations

import importlib
import sys

MODULES = (
    "bench_catalog",
    "bench_cutouts",
    "bench_ensemble",
    "bench_images",
    "bench_load",
    "bench_simulate",
)


def main() -> int:
    chosen = sys.argv[1:] or list(MODULES)
    for name in chosen:
        print(f"== {name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").main()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
