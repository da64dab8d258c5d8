"""`lensflow recover` on a scan of the mock sky, with the sky's injected lenses as KNOWN."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from distributed import Client
from typer.testing import CliRunner

from lensflow.cli import app
from lensflow.errors import EXIT_DATA
from lensflow.scan import run_scan
from lensflow.simulate.mock_sky import MockSky
from lensflow.testing import sky_config

runner = CliRunner()


@pytest.fixture(scope="module")
def scan(mock_sky: MockSky, dask_client: Client, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("cli-recover") / "scan"
    assert run_scan(sky_config(mock_sky, output), client=dask_client).exit_status == 0
    return output


def test_recover_reports_and_writes(scan: Path, mock_sky: MockSky, tmp_path: Path) -> None:
    out = tmp_path / "recovery.csv"
    result = runner.invoke(
        app, ["recover", str(scan), str(mock_sky.root), "--out", str(out)], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 0, result.output
    table = pd.read_csv(out)
    recovered = int(table["recovered"].sum())
    assert f"{recovered} of {len(table)} known lenses recovered" in result.output
    best = table.sort_values("rank").iloc[0]
    assert str(best["name"]) in result.output  # the whole id, never cut
    assert (tmp_path / "recovery.png").exists() and (
        tmp_path / "recovery_completeness.csv"
    ).exists()


def test_a_bad_known_table_is_one_line(scan: Path, tmp_path: Path) -> None:
    (tmp_path / "known.csv").write_text("name,x,y\nA,1,2\n")
    result = runner.invoke(app, ["recover", str(scan), str(tmp_path / "known.csv")])
    assert result.exit_code == EXIT_DATA  # a missing column: bad data
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "no 'ra' column" in lines[0], result.output
