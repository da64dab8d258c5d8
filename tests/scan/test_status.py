"""`lensflow status`: the funnel, completeness against the catalog, failures in full."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import pytest
from rich.console import Console

from lensflow.errors import IncompleteScanError, ScanStateError
from lensflow.scan.state import (
    CONFIG_FILE,
    Marker,
    load_scan_config,
    marker_path,
    read_markers,
    write_marker,
)
from lensflow.scan.status import read_status, require_complete
from lensflow.views import print_status


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=400, color_system=None), out


def _copy(scanned: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "scan"
    shutil.copytree(scanned, copy)
    return copy


def test_a_finished_scan_shows_its_funnel(scanned: Path) -> None:
    console, out = _console()
    status = read_status(scanned)
    print_status(console, status)
    assert status.failed == 0 and status.completeness.complete
    text = out.getvalue()
    markers = read_markers(scanned)
    for marker in markers:
        assert marker.pixel in text
    candidates = sum(m.candidates for m in markers)
    assert "funnel: 3,000 read -> " in text and f"-> {candidates:,} candidates" in text
    n = len(markers)
    assert f"complete: {n} of {n} partitions done (0 failed, 0 missing)" in text


def test_missing_and_failed_partitions_are_counted_against_the_catalog(
    scanned: Path, tmp_path: Path
) -> None:
    scan = _copy(scanned, tmp_path)
    markers = read_markers(scan)
    total = len(markers)
    gone, failed, fileless = markers[0], markers[1], markers[2]
    marker_path(scan, gone.order_pixel).unlink()  # never ran (interrupted)
    error = "pixel " + failed.pixel + ": " + "a very long reason that a table cell would cut " * 5
    write_marker(scan, Marker(failed.pixel, "failed", error=error, error_kind="io"))
    (scan / str(fileless.output)).unlink()  # done, but its candidate file is gone
    status = read_status(scan)
    state = status.completeness
    assert state.expected == total and len(state.done) == total - 3
    assert state.failed == (failed.pixel,) and set(state.missing) == {gone.pixel, fileless.pixel}
    console, out = _console()
    print_status(console, status, per_partition=False)
    lines = out.getvalue().splitlines()
    assert f"incomplete: {total - 3} of {total} partitions done (1 failed, 2 missing)" in lines
    assert f"failed {failed.pixel} (io): {error}" in lines
    assert any(line.startswith("missing: ") and gone.pixel in line for line in lines)
    with pytest.raises(IncompleteScanError, match=rf"incomplete: {total - 3} of {total}") as info:
        require_complete(status, partial=False)
    assert info.value.exit_code == 3 and "--partial" in str(info.value)
    require_complete(status, partial=True)


@pytest.mark.parametrize("damage", [b'{"pixel": "1/', b"", b'{"pixel": "1/2", "bogus": 1}'])
def test_a_corrupt_marker_is_an_error_naming_it(
    scanned: Path, tmp_path: Path, damage: bytes
) -> None:
    scan = _copy(scanned, tmp_path)
    marker = read_markers(scan)[3]
    path = marker_path(scan, marker.order_pixel)
    path.write_bytes(damage)
    with pytest.raises(ScanStateError, match=rf"{path}: corrupt marker") as info:
        read_status(scan)
    assert f"lensflow rerun {scan} --pixels {marker.pixel}" in str(info.value)


def test_a_region_scan_expects_only_the_partitions_it_touches(
    scanned: Path, tmp_path: Path
) -> None:
    scan = _copy(scanned, tmp_path)
    config = load_scan_config(scan)
    kept = read_markers(scan)[0].pixel
    text = (scan / CONFIG_FILE).read_text()
    (scan / CONFIG_FILE).write_text(f'{text}\n[sky]\npixels = ["{kept}"]\n')
    assert load_scan_config(scan).sky is not None and config.sky is None
    state = read_status(scan).completeness
    assert state.expected == 1 and state.done == (kept,)


def test_a_folder_that_is_not_a_scan_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScanStateError, match=rf"{tmp_path}: not a scan folder"):
        read_status(tmp_path)
