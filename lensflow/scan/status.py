"""`lensflow status`: a scan folder's markers and funnel totals, read back for the views."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lensflow.errors import ScanStateError
from lensflow.scan.state import CONFIG_FILE, Marker, funnel_totals, read_markers

FUNNEL = (
    ("rows_read", "read"),
    ("rows_after_cuts", "after cuts"),
    ("rows_in_region", "in region"),
    ("rows_after_photometry", "after photometry"),
    ("candidates", "candidates"),
)
"""The funnel's counts in order, as the markers name them, and their labels."""


@dataclass(frozen=True)
class ScanStatus:
    """A scan folder's markers (sorted by pixel) and their totals (see funnel_totals)."""

    folder: Path
    markers: tuple[Marker, ...]
    totals: dict[str, Any]

    @property
    def failed(self) -> int:
        return int(self.totals.get("failed", 0))

    @property
    def funnel(self) -> tuple[tuple[str, str], ...]:
        """The funnel's (count, label) steps; "in region" only for a scan with a [sky] region."""
        return tuple((k, label) for k, label in FUNNEL if k != "rows_in_region" or k in self.totals)


def read_status(scan_dir: Path) -> ScanStatus:
    """The markers and totals of a scan folder; ScanStateError when it is not one."""
    if not (scan_dir / CONFIG_FILE).exists():
        raise ScanStateError(f"{scan_dir}: not a scan folder (no {CONFIG_FILE})")
    markers = read_markers(scan_dir)
    return ScanStatus(scan_dir, tuple(markers), funnel_totals(markers))
