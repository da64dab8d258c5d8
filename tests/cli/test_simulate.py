"""The simulate commands: survey profiles, and unknown ones refused before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lensflow.cli import app

runner = CliRunner()


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
