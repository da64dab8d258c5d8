"""The scan: one task chain per HEALPix partition on dask.distributed, resumable from disk."""

from lensflow.scan.run import ScanOutcome, rerun_scan, run_scan
from lensflow.scan.stages import PartitionResult, Survivors, classify_partition, select_partition

__all__ = [
    "PartitionResult",
    "ScanOutcome",
    "Survivors",
    "classify_partition",
    "rerun_scan",
    "run_scan",
    "select_partition",
]
