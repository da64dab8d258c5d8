"""`lensflow demo` on an existing mock sky: the funnel, the recovery count and the export agree."""

from __future__ import annotations

import io
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
from rich.console import Console

from lensflow.demo import run_demo
from lensflow.simulate.mock_sky import MockSky


def test_demo_reuses_the_sky_and_counts_recovered_lenses(mock_sky: MockSky, tmp_path: Path) -> None:
    shutil.copytree(mock_sky.root, tmp_path / "sky", ignore=shutil.ignore_patterns("scan"))
    out = io.StringIO()
    report = run_demo(
        tmp_path, sources=1, lenses=1, seed=0, workers=1, console=Console(file=out, width=200)
    )
    assert "using the mock sky" in out.getvalue()
    assert report.exit_status == 0
    assert report.totals["rows_read"] == 3_000
    truth = pq.read_table(mock_sky.truth).to_pandas()
    lens_ids = truth.loc[truth["is_lens"], "id"].to_numpy()
    exported = pq.read_table(report.candidates)
    assert report.lenses == lens_ids.size == 12
    assert report.exported == exported.num_rows
    assert (exported["ensemble_score"].to_numpy() >= report.threshold).all()
    assert report.recovered == int(np.isin(lens_ids, exported["id"].to_numpy()).sum())
    assert report.recovered <= report.reached <= report.lenses
    assert report.cores == 1
