"""Scan, rerun, plan, status and export from the command line, as a survey team runs them."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from distributed import Client
from typer.testing import CliRunner

from lensflow.cli import app
from lensflow.simulate.mock_sky import MockSky
from lensflow.testing import copy_sky

runner = CliRunner()


@pytest.fixture(scope="module")
def cli_scan(
    mock_sky: MockSky, dask_client: Client, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    output = tmp_path_factory.mktemp("cli") / "scan"
    result = runner.invoke(
        app,
        [
            "scan",
            str(mock_sky.config),
            "--output",
            str(output),
            "--scheduler",
            dask_client.scheduler.address,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "funnel:" in result.output
    return output


def test_status_reports_the_funnel(cli_scan: Path) -> None:
    result = runner.invoke(app, ["status", str(cli_scan), "--json"])
    assert result.exit_code == 0
    totals = json.loads(result.output)["totals"]
    assert totals["rows_read"] == 3_000 and totals["failed"] == 0


@pytest.mark.parametrize("fmt", ["parquet", "csv", "fits", "hats"])
def test_export_ranks_by_ensemble_score(cli_scan: Path, tmp_path: Path, fmt: str) -> None:
    out = tmp_path / f"candidates.{fmt}"
    result = runner.invoke(
        app, ["export", str(cli_scan), str(out), "--format", fmt, "--min-score", "0"]
    )
    assert result.exit_code == 0, result.output
    if fmt == "parquet":
        scores = pq.read_table(out)["ensemble_score"].to_numpy()
    elif fmt == "csv":
        import pandas as pd

        scores = pd.read_csv(out)["ensemble_score"].to_numpy()
    elif fmt == "fits":
        from astropy.table import Table

        table = Table.read(out)
        scores = np.asarray(table["ensemble_score"])
        assert table["id"].dtype.kind == "i" and table["id"].dtype.itemsize == 8
        ids = set(pq.read_table(cli_scan / "dataset")["id"].to_pylist())
        assert {int(i) for i in table["id"]} <= ids, "ids must survive FITS exactly"
    else:
        lsdb = pytest.importorskip("lsdb")
        frame = lsdb.read_hats(out).compute()
        scores = np.sort(frame["ensemble_score"].to_numpy())[::-1]
    assert scores.size > 0
    assert np.all(np.diff(scores) <= 0)


def test_export_min_score_cuts(cli_scan: Path, tmp_path: Path) -> None:
    out = tmp_path / "top.parquet"
    runner.invoke(app, ["export", str(cli_scan), str(out), "--min-score", "0.5"])
    scores = pq.read_table(out)["ensemble_score"].to_numpy()
    assert np.all(scores >= 0.5)


def test_unknown_format_is_refused(cli_scan: Path, tmp_path: Path) -> None:
    result = runner.invoke(app, ["export", str(cli_scan), str(tmp_path / "x"), "--format", "xlsx"])
    assert result.exit_code == 1
    assert "xlsx" in result.output


def test_plan_exact_counts_rows_after_cuts(mock_sky: MockSky, dask_client: Client) -> None:
    result = runner.invoke(
        app, ["plan", str(mock_sky.config), "--exact", "--scheduler", dask_client.scheduler.address]
    )
    assert result.exit_code == 0, result.output
    assert "3,000" in result.output and "after cuts" in result.output


def test_bad_cut_exits_1_with_the_position(mock_sky: MockSky, tmp_path: Path) -> None:
    sky = copy_sky(mock_sky, tmp_path / "sky")
    text = sky.config.read_text()
    start = text.index('expression = "') + len('expression = "')
    end = text.index('"', start)
    sky.config.write_text(text[:start] + "rKronMag << 21" + text[end:])
    result = runner.invoke(app, ["plan", str(sky.config)])
    assert result.exit_code == 1
    assert "column" in result.output


def test_rerun_refuses_unknown_pixels(cli_scan: Path, dask_client: Client) -> None:
    result = runner.invoke(
        app,
        ["rerun", str(cli_scan), "--pixels", "0/1", "--scheduler", dask_client.scheduler.address],
    )
    assert result.exit_code == 1
    assert "not a partition" in result.output
