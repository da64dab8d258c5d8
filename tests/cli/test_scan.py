"""Scan, rerun, plan, status and export from the command line, as a survey team runs them."""

from __future__ import annotations

import errno
import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from distributed import Client
from typer.testing import CliRunner

from lensflow.cli import app
from lensflow.scan.state import marker_path, read_markers
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
    assert result.exit_code == 78
    assert "xlsx" in result.output


def test_plan_exact_counts_rows_after_cuts(mock_sky: MockSky, dask_client: Client) -> None:
    result = runner.invoke(
        app, ["plan", str(mock_sky.config), "--exact", "--scheduler", dask_client.scheduler.address]
    )
    assert result.exit_code == 0, result.output
    assert "3,000" in result.output and "after cuts" in result.output


def test_bad_cut_exits_78_with_the_position(mock_sky: MockSky, tmp_path: Path) -> None:
    sky = copy_sky(mock_sky, tmp_path / "sky")
    text = sky.config.read_text()
    start = text.index('expression = "') + len('expression = "')
    end = text.index('"', start)
    sky.config.write_text(text[:start] + "rKronMag << 21" + text[end:])
    result = runner.invoke(app, ["plan", str(sky.config)])
    assert result.exit_code == 78
    assert "column" in result.output


def test_rerun_refuses_unknown_pixels(cli_scan: Path, dask_client: Client) -> None:
    result = runner.invoke(
        app,
        ["rerun", str(cli_scan), "--pixels", "0/1", "--scheduler", dask_client.scheduler.address],
    )
    assert result.exit_code == 64
    assert "not a partition" in result.output


@pytest.fixture
def no_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fail a test that starts or joins a cluster: its error must come before one."""

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("a cluster was started before the inputs were checked")

    monkeypatch.setattr("lensflow.cluster.connect", refuse)


def _copy(scan: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "scan"
    shutil.copytree(scan, copy)
    return copy


def test_status_and_export_say_incomplete_and_exit_3(cli_scan: Path, tmp_path: Path) -> None:
    scan = _copy(cli_scan, tmp_path)
    markers = read_markers(scan)
    n = len(markers)
    marker_path(scan, markers[0].order_pixel).unlink()  # as after a Ctrl-C
    status = runner.invoke(app, ["status", str(scan)])
    assert status.exit_code == 3, status.output
    assert f"incomplete: {n - 1} of {n} partitions done (0 failed, 1 missing)" in status.stdout
    assert runner.invoke(app, ["status", str(scan), "--partial"]).exit_code == 0
    report = json.loads(runner.invoke(app, ["status", str(scan), "--json"]).stdout)
    assert report["partitions"]["missing"] == [markers[0].pixel]
    out = tmp_path / "c.parquet"
    export = runner.invoke(app, ["export", str(scan), str(out), "--min-score", "0"])
    assert export.exit_code == 3 and not out.exists()
    assert f"incomplete: {n - 1} of {n} partitions done" in export.stderr
    partial = runner.invoke(app, ["export", str(scan), str(out), "--min-score", "0", "--partial"])
    assert partial.exit_code == 0, partial.output
    assert f"partial export: {n - 1} of {n} partitions done" in partial.stdout


def test_a_truncated_marker_is_an_error_not_a_warning(cli_scan: Path, tmp_path: Path) -> None:
    scan = _copy(cli_scan, tmp_path)
    marker = read_markers(scan)[1]
    path = marker_path(scan, marker.order_pixel)
    path.write_bytes(path.read_bytes()[:40])
    for args in (["status", str(scan)], ["export", str(scan), str(tmp_path / "c.csv")]):
        result = runner.invoke(app, args)
        assert result.exit_code == 65, result.output
        assert result.stderr.startswith(f"error: {path}: corrupt marker")
        assert f"--pixels {marker.pixel}" in result.stderr


def test_export_infers_fits_and_never_overwrites(cli_scan: Path, tmp_path: Path) -> None:
    from astropy.table import Table

    out = tmp_path / "c.fits"
    result = runner.invoke(app, ["export", str(cli_scan), str(out), "--min-score", "0"])
    assert result.exit_code == 0, result.output
    assert len(Table.read(out)) > 0, "c.fits is FITS"
    again = runner.invoke(app, ["export", str(cli_scan), str(out), "--min-score", "0.9"])
    assert again.exit_code == 73 and "--overwrite" in again.stderr
    odd = runner.invoke(app, ["export", str(cli_scan), str(out), "--format", "parquet"])
    assert odd.exit_code == 78 and "suffix .fits means fits" in odd.stderr


@pytest.mark.parametrize(
    ("code", "status", "words"),
    [
        (errno.ENOSPC, 74, "No space left on device"),
        (errno.EROFS, 73, "Read-only file system"),
        (errno.EACCES, 77, "Permission denied"),
    ],
)
def test_os_errors_end_in_one_line_and_leave_no_temp(
    cli_scan: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    code: int,
    status: int,
    words: str,
) -> None:
    def fail(table: object, where: Path, **kwargs: object) -> None:
        Path(where).write_bytes(b"")
        raise OSError(code, words, str(where))

    monkeypatch.setattr(pq, "write_table", fail)
    out = tmp_path / "out" / "c.parquet"
    result = runner.invoke(app, ["export", str(cli_scan), str(out)])
    assert result.exit_code == status, result.output
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert words in result.stderr and "out/.c.parquet" in result.stderr
    assert isinstance(result.exception, SystemExit), "no traceback"
    assert list((tmp_path / "out").iterdir()) == []


def test_ctrl_c_is_one_line_and_exit_130(
    cli_scan: Path, tmp_path: Path, dask_client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    scan = _copy(cli_scan, tmp_path)
    markers = read_markers(scan)
    for marker in markers[:2]:
        marker_path(scan, marker.order_pixel).unlink()

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr("lensflow.scan.run.run_context", interrupted)
    config = scan / "scan.toml"
    result = runner.invoke(
        app,
        ["scan", str(config), "--output", str(scan), "--scheduler", dask_client.scheduler.address],
    )
    assert result.exit_code == 130, result.output
    n = len(markers)
    assert result.stderr == (
        f"error: interrupted: {n - 2} of {n} partitions done; rerun the same command to resume\n"
    )


def test_rerun_of_an_absent_pixel_names_real_ones_before_a_cluster(
    cli_scan: Path, no_cluster: None
) -> None:
    result = runner.invoke(app, ["rerun", str(cli_scan), "--pixels", "3/123,4/511"])
    assert result.exit_code == 64, result.output
    first = read_markers(cli_scan)[0].pixel
    assert "3/123, 4/511: not a partition" in result.stderr and first in result.stderr
    assert "dashboard" not in result.output


def test_readme_rerun_pixels_are_partitions_of_its_sky() -> None:
    readme = (Path(__file__).parents[2] / "README.md").read_text()
    line = next(x for x in readme.splitlines() if x.startswith("lensflow rerun scan --pixels"))
    assert "3/123" not in line and "4/511" not in line


@pytest.mark.parametrize(
    ("change", "status"),
    [
        (('mag_g = "gKronMag"', 'mag_g = "gKronMga"'), 65),
        (('expression = "', 'expression = "nosuch > 1 and '), 78),
    ],
)
def test_input_errors_come_before_a_cluster(
    mock_sky: MockSky, tmp_path: Path, no_cluster: None, change: tuple[str, str], status: int
) -> None:
    sky = copy_sky(mock_sky, tmp_path / "sky")
    text = sky.config.read_text()
    assert change[0] in text
    sky.config.write_text(text.replace(*change, 1))
    for args in (
        ["scan", str(sky.config), "--output", str(tmp_path / "s")],
        ["plan", str(sky.config), "--exact"],
    ):
        result = runner.invoke(app, args)
        if args[0] == "plan" and status == 65:
            continue  # plan does not read the photometry columns
        assert result.exit_code == status, result.output
        assert result.stdout == "" and "dashboard" not in result.output


def test_plan_exact_names_unreadable_partitions_whole_in_a_log(
    mock_sky: MockSky, tmp_path: Path, dask_client: Client
) -> None:
    sky = copy_sky(mock_sky, tmp_path / "sky")
    leaves = sorted((sky.catalog / "dataset").rglob("Npix=*.parquet"))
    leaf = leaves[0]
    leaf.write_bytes(leaf.read_bytes()[:100])
    result = runner.invoke(
        app, ["plan", str(sky.config), "--exact", "--scheduler", dask_client.scheduler.address]
    )
    assert result.exit_code == 65, result.output
    pixel = f"{leaf.parent.parent.name.removeprefix('Norder=')}/{leaf.stem.removeprefix('Npix=')}"
    assert f"partitions unreadable: {pixel}" in result.stderr
    [line] = [x for x in result.stdout.splitlines() if x.startswith(f"unreadable {pixel}: ")]
    assert str(leaf) in line, "the whole error, not cut to a table cell"
