"""The command line: exit statuses, help, and the commands a survey team runs after a scan."""

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


def test_help_explains_every_command() -> None:
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("scan", "rerun", "plan", "status", "export", "demo", "simulate", "train"):
        assert command in result.output


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


def test_remote_plain_tcp_scheduler_needs_insecure(mock_sky: MockSky, tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "scan",
            str(mock_sky.config),
            "--output",
            str(tmp_path / "s"),
            "--scheduler",
            "tcp://192.0.2.1:8786",
        ],
    )
    assert result.exit_code == 1
    assert "--insecure" in result.output


def test_an_error_is_one_line_on_stderr_and_exit_1(tmp_path: Path) -> None:
    not_a_scan = tmp_path / ("a-folder-with-a-long-name-" * 4) / "[scan]"
    not_a_scan.mkdir(parents=True)
    result = runner.invoke(app, ["status", str(not_a_scan)])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert result.stderr.count("\n") == 1, "one line, never wrapped"
    assert f"{not_a_scan}: not a scan folder" in result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["plan", "{missing}"],
        ["scan", "{bad}"],
        ["rerun", "{missing}", "--pixels", "0/1"],
        ["export", "{missing}", "{missing}.parquet"],
        ["evaluate", "{missing}", "{missing}.parquet"],
        ["train", "photometry", "--config", "{bad}"],
    ],
)
def test_every_command_reports_bad_input_the_same_way(tmp_path: Path, args: list[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("misspelt_key = 1\n")
    paths = {"missing": str(tmp_path / "missing"), "bad": str(bad)}
    result = runner.invoke(app, [a.format(**paths) for a in args])
    assert result.exit_code == 1, result.output
    assert isinstance(result.exception, SystemExit), "a LensflowError never escapes"
    assert result.stdout == ""
    assert result.stderr.startswith("error: ")
    assert str(tmp_path) in result.stderr or "misspelt_key" in result.stderr


def test_simulate_takes_a_survey_profile(tmp_path: Path) -> None:
    from lensflow.cutouts import open_store

    result = runner.invoke(
        app,
        [
            "simulate",
            "training-set",
            str(tmp_path / "set"),
            "--lenses",
            "1",
            "--non-lenses",
            "2",
            "--survey",
            "legacy",
            "--workers",
            "1",
        ],
    )
    assert result.exit_code == 0, result.output
    info = open_store(tmp_path / "set" / "cutouts.zarr")
    assert info.bands == ("g", "r", "i", "z") and info.pixel_scale_arcsec == 0.262
    png = tmp_path / "hsc.png"
    result = runner.invoke(
        app, ["simulate", "gallery", str(png), "--per-class", "1", "--survey", "hsc"]
    )
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:4] == b"\x89PNG"


@pytest.mark.parametrize(
    "args",
    [
        ["simulate", "sky", "{out}", "--survey", "euclid"],
        ["simulate", "sky", "{out}", "--survey", "euclid", "--tiles"],
        ["simulate", "gallery", "{out}.png", "--survey", "euclid"],
        ["train", "photometry", "--config", "{config}", "--survey", "euclid"],
        ["train", "ensemble", "--config", "{ensemble}", "--survey", "euclid"],
    ],
)
def test_an_unknown_survey_is_refused_before_any_work(tmp_path: Path, args: list[str]) -> None:
    config = tmp_path / "photometry.toml"
    config.write_text('survey = "lsst"\n')
    ensemble = tmp_path / "ensemble.toml"
    ensemble.write_text('[[members]]\nname = "a"\narchitecture = "resnet"\n')
    paths = {"out": str(tmp_path / "out"), "config": str(config), "ensemble": str(ensemble)}
    result = runner.invoke(app, [a.format(**paths) for a in args])
    assert result.exit_code == 1, result.output
    assert "unknown survey 'euclid'; shipped profiles: hsc, legacy, lsst" in result.stderr
    assert not (tmp_path / "out").exists()


def test_cutouts_build_from_tiles_then_resume(tmp_path: Path, dask_client: Client) -> None:
    from tests.images import grid_rows, write_rows_catalog, write_tract

    tract = write_tract(tmp_path / "tract", masked=((95, 95, 1),))
    rows = grid_rows(tract)
    write_rows_catalog(tmp_path / "catalog", rows)
    config = tmp_path / "build.toml"
    config.write_text(
        '[catalog]\npath = "catalog"\n[catalog.columns]\nid = "objectId"\nra = "ra"\n'
        'dec = "dec"\n[cutouts]\npath = "cutouts.zarr"\n[images]\n'
        'tiles = "tract/calexp-{band}-*.fits.fz"\nbands = ["g", "r"]\nsize = 16\n'
        "psf_fwhm_arcsec = { g = 0.8, r = 0.7 }\n"
    )
    args = ["cutouts", "build", str(config), "--scheduler", dask_client.scheduler.address]
    first = runner.invoke(app, args)
    assert first.exit_code == 0, first.output
    report = json.loads((tmp_path / "cutouts.zarr.build" / "report.json").read_text())
    totals = report["totals"]
    assert totals["rows"] == sum(r.ids.size for r in rows.values())
    assert f"{totals['written']:,} stamps of {totals['rows']:,} rows" in first.output
    assert "masked 1" in first.output and "edge" in first.output
    again = runner.invoke(app, args)
    assert again.exit_code == 0, again.output
    assert f"({len(rows)} already done, 0 failed)" in again.output


def test_cutouts_build_needs_an_images_section(mock_sky: MockSky) -> None:
    result = runner.invoke(app, ["cutouts", "build", str(mock_sky.config)])
    assert result.exit_code == 1
    assert "no [images] section" in result.output


def test_a_command_prints_no_cluster_log_lines(mock_sky: MockSky) -> None:
    import subprocess
    import sys

    command = [str(Path(sys.executable).with_name("lensflow")), "plan", str(mock_sky.config)]
    result = subprocess.run(
        [*command, "--exact", "--workers", "1"],
        check=False,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "total" in result.stdout
    assert " INFO " not in result.stderr, result.stderr
