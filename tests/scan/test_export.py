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
