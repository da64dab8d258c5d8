"""`lensflow plan --estimate`: the funnel from the row counts and a calibration run, cleanly."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path

import pytest
from distributed import Client
from typer.testing import CliRunner

from lensflow.cli import app
from lensflow.errors import ClusterError
from lensflow.scan.estimate import (
    Calibration,
    CalibrationRun,
    calibration_pixels,
    estimate,
    estimate_scan,
    fit_stage,
    makespan,
    partition_rows,
)
from lensflow.scan.plan import PlanRow
from lensflow.scan.state import funnel_totals, read_markers
from lensflow.simulate.mock_sky import MockSky
from lensflow.sky import HealpixPixel, pixel_key
from lensflow.testing import sky_config

runner = CliRunner()


def _rows(counts: list[int]) -> list[PlanRow]:
    return [PlanRow(HealpixPixel(6, 100 + i), rows=n) for i, n in enumerate(counts)]


def _run(
    seconds: float, rows: list[PlanRow], fractions: tuple[float, float, float]
) -> CalibrationRun:
    """A calibration run over `rows` whose funnel passes exactly the given fractions."""
    cuts, photometry, ensemble = fractions
    read = [r.rows for r in rows]
    scanned = [round(n * cuts) for n in read]
    survivors = [round(n * photometry) for n in scanned]
    return CalibrationRun(
        seconds=seconds,
        pixels=tuple(pixel_key(r.pixel) for r in rows),
        rows_read=tuple(read),
        rows_scanned=tuple(scanned),
        rows_after_photometry=tuple(survivors),
        candidates=tuple(round(n * ensemble) for n in survivors),
        select_seconds=tuple(1e-4 * n for n in read),
        classify_seconds=tuple(0.01 * n for n in survivors),
    )


def test_calibration_partitions_span_the_row_counts_in_scan_order() -> None:
    rows = _rows([500, 20, 9_000, 40, 1_300, 700, 5])
    chosen = calibration_pixels(rows, count=3)
    counts = [next(r.rows for r in rows if r.pixel == p) for p in chosen]
    assert sorted(counts) == [5, 500, 9_000]  # smallest, middle, largest
    assert chosen == [r.pixel for r in rows if r.pixel in set(chosen)]
    assert len(calibration_pixels(rows, count=50)) == len(rows)
    assert calibration_pixels([], count=4) == []


def test_a_stage_fit_recovers_a_line_and_never_goes_negative() -> None:
    fit = fit_stage([0, 1_000, 4_000], [0.01, 0.03, 0.09])
    assert fit.intercept == pytest.approx(0.01) and fit.slope == pytest.approx(2e-5)
    falling = fit_stage([10, 20, 30], [0.3, 0.2, 0.1])  # noise: no negative cost per row
    assert falling.slope == 0.0 and falling.intercept == pytest.approx(0.2)
    through_zero = fit_stage([10, 20, 30], [0.0, 0.5, 1.0])
    assert through_zero.intercept == 0.0 and through_zero.slope > 0
    assert fit_stage([], []).intercept == 0.0


def test_makespan_lays_tasks_onto_the_first_free_core() -> None:
    assert makespan([3, 1, 1, 1], cores=2) == 3
    assert makespan([1, 1, 1, 1], cores=2) == 2
    assert makespan([2, 2], cores=1) == 4
    assert makespan([], cores=4) == 0


def test_the_funnel_follows_the_row_counts() -> None:
    calibrated = _rows([2_000, 4_000])
    fractions = (0.1, 0.05, 0.5)
    run = _run(2.0, calibrated, fractions)
    calibration = Calibration(run, run, run, build_seconds=0.1, cluster_start_seconds=1.0)
    small = estimate(_rows([2_000, 6_000]), calibration, cores=2)
    large = estimate(_rows([2_000, 6_000, 12_000, 20_000]), calibration, cores=2)
    for result, rows in ((small, 8_000), (large, 40_000)):
        assert result.rows_read == rows
        assert result.rows_after_cuts == round(rows * 0.1)
        assert result.rows_after_photometry == round(rows * 0.1 * 0.05)
        assert result.candidates == round(rows * 0.1 * 0.05 * 0.5)
    assert large.stage_seconds == pytest.approx(small.stage_seconds * 5, rel=1e-6)
    assert large.wall_seconds > small.wall_seconds
    assert large.core_hours == pytest.approx(2 * large.wall_seconds / 3600)
    assert large.gpu_hours is None
    gpu = estimate(_rows([2_000]), calibration, cores=2, gpus=1)
    assert gpu.gpu_hours == pytest.approx(gpu.wall_seconds / 3600)


def _listing(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


def test_a_calibration_over_every_partition_gives_the_scans_own_funnel(
    mock_sky: MockSky, dask_client: Client, tmp_path: Path, scanned: Path
) -> None:
    config = sky_config(mock_sky, tmp_path / "scan")
    before = _listing(tmp_path)
    rows = partition_rows(config)
    result = estimate_scan(
        config, connect=lambda: nullcontext(dask_client), count=3, small=len(rows)
    )
    totals = funnel_totals(read_markers(scanned))
    assert result.partitions == len(mock_sky.pixels)
    assert result.rows_read == sum(r.rows for r in rows) == totals["rows_read"]
    assert result.rows_after_cuts == totals["rows_after_cuts"]
    assert result.rows_after_photometry == totals["rows_after_photometry"]
    assert result.candidates == totals["candidates"]
    assert result.wall_seconds > 0 and result.cores == 2
    assert len(result.calibration.first.pixels) == 3
    assert _listing(tmp_path) == before  # the scratch folder is gone


def test_a_failed_start_leaves_no_files(mock_sky: MockSky, tmp_path: Path) -> None:
    config = sky_config(mock_sky, tmp_path / "out" / "new" / "scan")  # out/new: not there yet
    (tmp_path / "out").mkdir()

    @contextmanager
    def refused() -> Iterator[Client]:
        raise ClusterError("scheduler refused")
        yield  # pragma: no cover

    with pytest.raises(ClusterError):
        estimate_scan(config, connect=refused)
    assert _listing(tmp_path / "out") == set()


def test_plan_estimate_prints_json_on_the_given_scheduler(
    mock_sky: MockSky, dask_client: Client
) -> None:
    address = dask_client.scheduler.address
    result = runner.invoke(
        app, ["plan", str(mock_sky.config), "--estimate", "--json", "--scheduler", address]
    )
    assert result.exit_code == 0, result.output
    values = json.loads(result.stdout)
    assert values["rows_read"] == 3_000 and values["partitions"] == len(mock_sky.pixels)
    assert values["core_hours"] > 0 and values["gpu_hours"] is None
    assert not list(mock_sky.root.glob(".lensflow-estimate-*"))


def test_a_bad_config_is_one_line(mock_sky: MockSky, tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(mock_sky.config.read_text().replace("[cuts]", "[cutz]"))
    result = runner.invoke(app, ["plan", str(bad), "--estimate"])
    assert result.exit_code == 78
    assert len(result.stderr.strip().splitlines()) == 1 and "cutz" in result.stderr


def test_an_estimate_needs_the_cutouts(mock_sky: MockSky, tmp_path: Path) -> None:
    text = mock_sky.config.read_text()
    start = text.index("[cutouts]")
    end = text.index("\n[", start + 1) if "\n[" in text[start + 1 :] else len(text)
    config = tmp_path / "no-cutouts.toml"
    config.write_text((text[:start] + text[end:]).replace('"catalog"', f'"{mock_sky.catalog}"'))
    result = runner.invoke(app, ["plan", str(config), "--estimate"])
    assert result.exit_code == 78
    line = result.stderr.strip()
    assert "\n" not in line and "--estimate" in line and "[cutouts]" in line
    json_alone = runner.invoke(app, ["plan", str(mock_sky.config), "--json"])
    assert json_alone.exit_code == 64 and "--estimate" in json_alone.stderr
