"""The scan: one task chain per HEALPix partition on dask.distributed, resumable from disk.

Names are imported on first use, so a worker unpickling a stage function imports
`lensflow.scan.stages` alone, never the driver (`lensflow.scan.run`) and what it needs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lensflow.scan.run import ScanOutcome, rerun_scan, run_scan
    from lensflow.scan.stages import (
        PartitionResult,
        Survivors,
        classify_partition,
        select_partition,
    )

__all__ = [
    "PartitionResult",
    "ScanOutcome",
    "Survivors",
    "classify_partition",
    "rerun_scan",
    "run_scan",
    "select_partition",
]

_HOMES = {
    "ScanOutcome": "lensflow.scan.run",
    "rerun_scan": "lensflow.scan.run",
    "run_scan": "lensflow.scan.run",
    "PartitionResult": "lensflow.scan.stages",
    "Survivors": "lensflow.scan.stages",
    "classify_partition": "lensflow.scan.stages",
    "select_partition": "lensflow.scan.stages",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(home), name)
