"""`lensflow status`: the funnel per partition and in total, failures with their whole error."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from rich.console import Console

from lensflow.errors import ScanStateError
from lensflow.scan.state import CONFIG_FILE, Marker, read_markers, write_marker
from lensflow.scan.status import read_status
from lensflow.views import print_status


def _console() -> tuple[Console, io.StringIO]:
    out = io.StringIO()
    return Console(file=out, width=400, color_system=None), out


def test_a_finished_scan_shows_its_funnel(scanned: Path) -> None:
    console, out = _console()
    status = read_status(scanned)
    print_status(console, status)
    assert status.failed == 0
    text = out.getvalue()
    markers = read_markers(scanned)
    for marker in markers:
        assert marker.pixel in text
    candidates = sum(m.candidates for m in markers)
    assert "funnel: 3,000 read -> " in text and f"-> {candidates:,} candidates" in text
    assert f"partitions: {len(markers)} done, 0 failed" in text


def test_failures_are_listed_with_their_whole_error(tmp_path: Path) -> None:
    (tmp_path / CONFIG_FILE).write_text("")
    error = "pixel 4/7: " + "a very long reason that a table cell would cut " * 5
    for marker in (
        Marker(
            "4/6",
            "done",
            rows_read=1_200,
            rows_after_cuts=300,
            rows_after_photometry=40,
            candidates=3,
            rejected={"missing_cutout": 5, "bad_coordinates": 2},
        ),
        Marker("4/7", "failed", error=error, error_kind="io"),
    ):
        write_marker(tmp_path, marker)
    console, out = _console()
    status = read_status(tmp_path)
    print_status(console, status, per_partition=False)
    assert status.failed == 1
    lines = out.getvalue().splitlines()
    assert "funnel: 1,200 read -> 300 after cuts -> 40 after photometry -> 3 candidates" in lines[0]
    assert "rows set aside: bad_coordinates 2, missing_cutout 5" in lines
    assert "partitions: 1 done, 1 failed" in lines
    assert f"failed 4/7 (io): {error}" in lines


def test_a_folder_that_is_not_a_scan_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ScanStateError, match=rf"{tmp_path}: not a scan folder"):
        read_status(tmp_path)
