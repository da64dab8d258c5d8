"""`lensflow export`: every finished partition's candidates, ranked, in one table or catalog.

Rows are ranked by ensemble_score and cut at min_score; every candidate column travels with
them, p_lens (the calibrated lens probability at the scan's prior) included when the scan's
manifest had a calibration. An incomplete scan (partitions failed or missing) is refused
unless a partial export is asked for; the format comes from the output's suffix (see
candidates.export_format) and an existing output is replaced only when asked.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lensflow.candidates import export_candidates, export_format
from lensflow.errors import ScanStateError
from lensflow.scan.state import not_a_scan_folder, read_fingerprint
from lensflow.scan.status import Completeness, read_status, require_complete


@dataclass(frozen=True)
class Exported:
    """What an export wrote: rows, the score cut, the format and the scan's completeness."""

    rows: int
    min_score: float
    fmt: str
    out: Path
    completeness: Completeness

    @property
    def partial(self) -> bool:
        return not self.completeness.complete


def export_scan(
    scan_dir: Path,
    out: Path,
    *,
    fmt: str | None = None,
    min_score: float | None = None,
    partial: bool = False,
    overwrite: bool = False,
) -> tuple[int, float]:
    """Export ranked candidates; min_score None means the scan's ensemble threshold.

    Returns the number of rows written and the score cut used (see export_scan_report).
    """
    report = export_scan_report(
        scan_dir, out, fmt=fmt, min_score=min_score, partial=partial, overwrite=overwrite
    )
    return report.rows, report.min_score


def export_scan_report(
    scan_dir: Path,
    out: Path,
    *,
    fmt: str | None = None,
    min_score: float | None = None,
    partial: bool = False,
    overwrite: bool = False,
) -> Exported:
    """Export ranked candidates of the done partitions; refuse an incomplete scan unless partial.

    fmt None: from out's suffix (.parquet, .fits, .csv; none: a HATS folder).
    """
    chosen = export_format(out, fmt)
    record = read_fingerprint(scan_dir)
    if record is None:
        raise not_a_scan_folder(scan_dir, lacks="fingerprint")
    status = read_status(scan_dir)
    require_complete(status, partial=partial)
    if min_score is None:
        min_score = float(record["parts"]["ensemble_threshold"])
    done = set(status.completeness.done)
    pixels = [m.order_pixel for m in status.markers if m.pixel in done]
    if not pixels:
        raise ScanStateError(f"{scan_dir}: no partition is done yet; run `lensflow scan` first")
    rows = export_candidates(
        scan_dir, pixels, out, fmt=chosen, min_score=min_score, overwrite=overwrite
    )
    return Exported(rows, min_score, chosen, out, status.completeness)
