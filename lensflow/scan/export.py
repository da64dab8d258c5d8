"""`lensflow export`: every finished partition's candidates, ranked, in one table or catalog.

Rows are ranked by ensemble_score and cut at min_score; every candidate column travels with
them, p_lens (the calibrated lens probability at the scan's prior) included when the scan's
manifest had a calibration.
"""

from __future__ import annotations

from pathlib import Path

from lensflow.candidates import EXPORT_FORMATS, ExportFormat, export_candidates
from lensflow.errors import ConfigError, ScanStateError
from lensflow.scan.state import read_fingerprint, read_markers


def export_scan(
    scan_dir: Path, out: Path, *, fmt: str, min_score: float | None
) -> tuple[int, float]:
    """Export ranked candidates; min_score None means the scan's ensemble threshold.

    Returns the number of rows written and the score cut used.
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(
            f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}"
        )
    record = read_fingerprint(scan_dir)
    if record is None:
        raise ScanStateError(f"{scan_dir}: not a scan folder (no fingerprint); run `lensflow scan`")
    if min_score is None:
        min_score = float(record["parts"]["ensemble_threshold"])
    pixels = [m.order_pixel for m in read_markers(scan_dir) if m.status == "done"]
    format_name: ExportFormat = fmt  # type: ignore[assignment]
    rows = export_candidates(scan_dir, pixels, out, fmt=format_name, min_score=min_score)
    return rows, min_score
