"""`lensflow status`: a scan folder's markers, funnel totals and completeness, for the views.

Completeness compares the markers with the catalog's partitions (those the scan's [sky] region
touches, when it has one), read from the catalog the scan's config names: a partition is done
when its marker says so and its candidate file is in place, failed when its marker says so,
missing otherwise (never run, interrupted, or its file removed). A marker that cannot be read
is an error naming the file, never skipped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lensflow.errors import IncompleteScanError, LensflowError, ScanStateError
from lensflow.scan.state import (
    CONFIG_FILE,
    MARKERS,
    Marker,
    funnel_totals,
    load_scan_config,
    not_a_scan_folder,
)
from lensflow.sky import HealpixPixel, pixel_key

FUNNEL = (
    ("rows_read", "read"),
    ("rows_after_cuts", "after cuts"),
    ("rows_in_region", "in region"),
    ("rows_after_photometry", "after photometry"),
    ("candidates", "candidates"),
)
"""The funnel's counts in order, as the markers name them, and their labels."""

SHOWN = 5
"""How many pixels a line names before "...": enough to act on, short enough to read."""


@dataclass(frozen=True)
class Completeness:
    """How many of a scan's partitions are done, failed or missing (ORDER/PIXEL names)."""

    expected: int
    done: tuple[str, ...]
    failed: tuple[str, ...]
    missing: tuple[str, ...]

    @property
    def complete(self) -> bool:
        return len(self.done) == self.expected

    @property
    def summary(self) -> str:
        """`N of M partitions done (F failed, K missing)`."""
        return (
            f"{len(self.done)} of {self.expected} partitions done ({len(self.failed)} failed, "
            f"{len(self.missing)} missing)"
        )

    def advice(self, scan_dir: Path) -> str:
        """What to run to finish the scan: scan resumes the missing, rerun redoes the failed."""
        steps = []
        if self.missing:
            steps.append(f"`lensflow scan` with the same config and --output {scan_dir} resumes")
        if self.failed:
            steps.append(
                f"`lensflow rerun {scan_dir} --pixels {','.join(self.failed[:SHOWN])}"
                f"{',...' if len(self.failed) > SHOWN else ''}` redoes the failed"
            )
        return "; ".join(steps)

    def as_dict(self) -> dict[str, Any]:
        return {
            "expected": self.expected,
            "done": len(self.done),
            "failed": list(self.failed),
            "missing": list(self.missing),
            "complete": self.complete,
        }


@dataclass(frozen=True)
class ScanStatus:
    """A scan folder's markers (sorted by pixel), their totals and its completeness."""

    folder: Path
    markers: tuple[Marker, ...]
    totals: dict[str, Any]
    completeness: Completeness

    @property
    def failed(self) -> int:
        return len(self.completeness.failed)

    @property
    def funnel(self) -> tuple[tuple[str, str], ...]:
        """The funnel's (count, label) steps; "in region" only for a scan with a [sky] region."""
        return tuple((k, label) for k, label in FUNNEL if k != "rows_in_region" or k in self.totals)


def read_status(scan_dir: Path) -> ScanStatus:
    """The markers, totals and completeness of a scan folder.

    ScanStateError when it is not a scan folder or a marker is corrupt; the catalog's own
    errors when the catalog it scanned can no longer be opened.
    """
    if not (scan_dir / CONFIG_FILE).exists():
        raise not_a_scan_folder(scan_dir, lacks=CONFIG_FILE)
    expected = scan_partitions(scan_dir)
    markers = read_markers_strictly(scan_dir)
    wanted = set(expected)
    counted = [m for m in markers if m.order_pixel in wanted]
    return ScanStatus(
        scan_dir, tuple(counted), funnel_totals(counted), completeness(scan_dir, expected, counted)
    )


def scan_partitions(scan_dir: Path) -> tuple[HealpixPixel, ...]:
    """The partitions a scan covers: the catalog's (in its [sky] region), as the scan read them."""
    from lensflow.catalog import open_inputs

    config = load_scan_config(scan_dir)
    try:
        return open_inputs(config).catalog.pixels
    except LensflowError as exc:
        raise type(exc)(
            f"{exc} (the catalog of the scan in {scan_dir}, needed to check which partitions "
            "are done)"
        ) from None


def read_markers_strictly(scan_dir: Path) -> list[Marker]:
    """Every marker of a scan folder, sorted by pixel; a corrupt one is a ScanStateError."""
    markers = []
    for path in sorted((scan_dir / MARKERS).glob("Norder=*/Npix=*.json")):
        pixel = f"{path.parent.name.removeprefix('Norder=')}/{path.stem.removeprefix('Npix=')}"
        try:
            marker = Marker(**json.loads(path.read_text()))
            marker.order_pixel  # noqa: B018  (a pixel name that is not ORDER/PIXEL raises)
        except (
            json.JSONDecodeError,
            TypeError,
            UnicodeDecodeError,
            ValueError,
            LensflowError,
        ) as exc:
            raise ScanStateError(
                f"{path}: corrupt marker ({type(exc).__name__}: {exc}); rerun that pixel: "
                f"lensflow rerun {scan_dir} --pixels {pixel}"
            ) from None
        if marker.pixel != pixel:
            raise ScanStateError(
                f"{path}: marker of pixel {marker.pixel} in the file of {pixel}; rerun that "
                f"pixel: lensflow rerun {scan_dir} --pixels {pixel}"
            )
        markers.append(marker)
    return sorted(markers, key=lambda m: (m.order_pixel.order, m.order_pixel.pixel))


def completeness(
    scan_dir: Path, expected: tuple[HealpixPixel, ...], markers: list[Marker]
) -> Completeness:
    """Which expected partitions are done (marker and file), failed, or missing."""
    by_pixel = {m.order_pixel: m for m in markers}
    done, failed, missing = [], [], []
    for pixel in expected:
        marker = by_pixel.get(pixel)
        if marker is None:
            missing.append(pixel_key(pixel))
        elif marker.status == "failed":
            failed.append(marker.pixel)
        elif (
            marker.status == "done"
            and marker.output is not None
            and (scan_dir / marker.output).is_file()
        ):
            done.append(marker.pixel)
        else:
            missing.append(marker.pixel)
    return Completeness(len(expected), tuple(done), tuple(failed), tuple(missing))


def require_complete(status: ScanStatus, *, partial: bool) -> None:
    """Refuse an incomplete scan (IncompleteScanError) unless partial results were asked for."""
    state = status.completeness
    if state.complete or partial:
        return
    raise IncompleteScanError(
        f"{status.folder}: incomplete: {state.summary}; {state.advice(status.folder)}; "
        "or pass --partial to use the partitions done"
    )
