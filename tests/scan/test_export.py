"""`lensflow export` of a scan folder: the finished partitions' candidates, ranked."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from lensflow.errors import ConfigError, ScanStateError
from lensflow.scan.export import export_scan
from lensflow.scan.state import FINGERPRINT_FILE, read_markers


def test_the_default_cut_is_the_scans_ensemble_threshold(scanned: Path, tmp_path: Path) -> None:
    rows, used = export_scan(scanned, tmp_path / "top.parquet", fmt="parquet", min_score=None)
    fingerprint = json.loads((scanned / FINGERPRINT_FILE).read_text())
    assert used == fingerprint["parts"]["ensemble_threshold"]
    assert rows == sum(m.candidates for m in read_markers(scanned))
    table = pq.read_table(tmp_path / "top.parquet")
    scores = table["ensemble_score"].to_numpy()
    assert table.num_rows == rows and (scores >= used).all()
    assert np.all(np.diff(scores) <= 0), "best first"


def test_a_zero_cut_exports_every_scored_row(scanned: Path, tmp_path: Path) -> None:
    rows, used = export_scan(scanned, tmp_path / "all.csv", fmt="csv", min_score=0.0)
    every = sum(pq.read_metadata(scanned / str(m.output)).num_rows for m in read_markers(scanned))
    assert used == 0.0 and rows == every > 0
    assert len((tmp_path / "all.csv").read_text().splitlines()) == every + 1


def test_unknown_formats_and_folders_are_refused(scanned: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="unknown export format 'xlsx'; choose one of parquet"):
        export_scan(scanned, tmp_path / "out.xlsx", fmt="xlsx", min_score=None)
    with pytest.raises(ScanStateError, match=rf"{tmp_path}: not a scan folder"):
        export_scan(tmp_path, tmp_path / "out.parquet", fmt="parquet", min_score=None)
    assert not list(tmp_path.iterdir())


def _copy(scanned: Path, tmp_path: Path) -> Path:
    import shutil

    copy = tmp_path / "scan"
    shutil.copytree(scanned, copy)
    return copy


def test_an_incomplete_scan_is_refused_unless_partial(scanned: Path, tmp_path: Path) -> None:
    from lensflow.errors import IncompleteScanError
    from lensflow.scan.export import export_scan_report
    from lensflow.scan.state import marker_path

    scan = _copy(scanned, tmp_path)
    markers = read_markers(scan)
    gone = max(markers, key=lambda m: m.candidates)
    marker_path(scan, gone.order_pixel).unlink()
    out = tmp_path / "top.parquet"
    n = len(markers)
    with pytest.raises(IncompleteScanError, match=rf"incomplete: {n - 1} of {n} partitions done"):
        export_scan(scan, out, min_score=0.0)
    assert not out.exists()
    report = export_scan_report(scan, out, min_score=0.0, partial=True)
    assert report.partial and report.fmt == "parquet"
    every = sum(pq.read_metadata(scan / str(m.output)).num_rows for m in markers if m != gone)
    assert report.rows == pq.read_table(out).num_rows == every
    assert gone.candidates == 0 or set(pq.read_table(out)["id"].to_pylist()).isdisjoint(
        pq.read_table(scan / str(gone.output))["id"].to_pylist()
    )


@pytest.mark.parametrize(
    ("name", "fmt"), [("c.fits", "fits"), ("c.csv", "csv"), ("c.parquet", "parquet"), ("c", "hats")]
)
def test_the_format_follows_the_suffix(scanned: Path, tmp_path: Path, name: str, fmt: str) -> None:
    from lensflow.scan.export import export_scan_report

    report = export_scan_report(scanned, tmp_path / name, min_score=0.0)
    assert report.fmt == fmt
    out = tmp_path / name
    if fmt == "fits":
        assert out.read_bytes()[:6] == b"SIMPLE"
    elif fmt == "parquet":
        assert out.read_bytes()[:4] == b"PAR1"
    elif fmt == "csv":
        assert out.read_text().startswith('"id","ra","dec"')
    else:
        assert (out / "hats.properties").is_file()


@pytest.mark.parametrize(
    ("name", "fmt", "message"),
    [
        ("c.fits", "parquet", "--format parquet but the suffix .fits means fits"),
        ("c.xlsx", None, "unknown suffix '.xlsx'"),
        ("c.csv", "hats", "the suffix .csv means csv, not --format hats"),
    ],
)
def test_a_suffix_at_odds_with_the_format_is_refused(
    scanned: Path, tmp_path: Path, name: str, fmt: str | None, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        export_scan(scanned, tmp_path / name, fmt=fmt, min_score=0.0)
    assert not list(tmp_path.iterdir())


def test_an_existing_output_is_kept_without_overwrite(scanned: Path, tmp_path: Path) -> None:
    from lensflow.errors import OutputError

    out = tmp_path / "c.parquet"
    out.write_bytes(b"someone's file")
    with pytest.raises(OutputError, match="exists; pass --overwrite"):
        export_scan(scanned, out, min_score=0.0)
    assert out.read_bytes() == b"someone's file"
    rows, _ = export_scan(scanned, out, min_score=0.0, overwrite=True)
    assert pq.read_table(out).num_rows == rows
    other = tmp_path / "notes"
    other.mkdir()
    (other / "thesis.tex").write_text("keep me")
    with pytest.raises(OutputError, match="not a lensflow export"):
        export_scan(scanned, other, min_score=0.0, overwrite=True)
    assert (other / "thesis.tex").read_text() == "keep me"


def test_a_hats_export_is_replaced_whole(scanned: Path, tmp_path: Path) -> None:
    """An older export's partitions never stay beside a newer, smaller one's."""
    import pyarrow.dataset as ds

    from lensflow.scan.state import marker_path

    lsdb = pytest.importorskip("lsdb")
    scan = _copy(scanned, tmp_path)
    out = tmp_path / "candidates"
    every, _ = export_scan(scan, out, min_score=0.0)
    gone = max(read_markers(scan), key=lambda m: m.candidates)
    marker_path(scan, gone.order_pixel).unlink()
    rows, _ = export_scan(scan, out, min_score=0.0, partial=True, overwrite=True)
    assert 0 < rows < every
    frame = lsdb.read_hats(out).compute()
    table = ds.dataset(out / "dataset", format="parquet", exclude_invalid_files=True).to_table()
    assert len(frame) == table.num_rows == rows
    assert sorted(frame["id"].tolist()) == sorted(table["id"].to_pylist())
    leaf = f"Norder={gone.order_pixel.order}/Dir={gone.order_pixel.pixel // 10_000 * 10_000}"
    assert not (out / "dataset" / leaf / f"Npix={gone.order_pixel.pixel}.parquet").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["candidates", "scan"], "no temp folder"
