"""The simulate commands: survey profiles, and unknown ones refused before any work."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from lensflow.cli import app
from lensflow.errors import USER_ERRORS

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
    assert result.exit_code in USER_ERRORS, result.output
    assert "unknown survey 'euclid'; shipped profiles: hsc, legacy, lsst" in result.stderr
    assert not (tmp_path / "out").exists()


def test_simulate_inject_paints_lenses_into_a_store(tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    from tests.simulate.inject_store import make_injection_store

    deflectors = make_injection_store(tmp_path / "deflectors")
    out, png = tmp_path / "injected", tmp_path / "gallery.png"
    args = ["simulate", "inject", str(deflectors.store), "--out", str(out), "--lenses", "3"]
    args += ["--labels", str(deflectors.catalog), "--seed", "4", "--workers", "1"]
    result = runner.invoke(app, [*args, "--gallery", str(png)])
    assert result.exit_code == 0, result.output
    assert "3 injected lenses (of 3) on 6 deflectors (photometry: labels" in result.output
    labels = pq.read_table(out / "labels.parquet")
    assert labels.num_rows == 3 + deflectors.ids.size
    assert png.read_bytes()[:4] == b"\x89PNG"
    again = runner.invoke(app, args)
    assert again.exit_code in USER_ERRORS and "already holds a set" in again.stderr


def test_simulate_inject_refuses_bad_input_in_one_line(tmp_path: Path) -> None:
    from lensflow.cutouts import create_store

    store = tmp_path / "store.zarr"
    create_store(
        store, bands=["g", "r", "N921"], pixel_scale_arcsec=0.2, psf_fwhm_arcsec={"g": 0.8,
        "r": 0.7, "N921": 0.7}, cutout_size=64,
    )  # fmt: skip
    out = tmp_path / "out"
    result = runner.invoke(app, ["simulate", "inject", str(store), "--out", str(out)])
    assert result.exit_code in USER_ERRORS, result.output
    assert "bands ['N921'] are not in survey profile 'lsst'" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not out.exists()
    where = ["--deflectors-where", "colour > 1"]
    lsst = tmp_path / "lsst.zarr"
    create_store(lsst, bands=["g", "r", "i"], pixel_scale_arcsec=0.2,
                 psf_fwhm_arcsec={"g": 0.8, "r": 0.7, "i": 0.7}, cutout_size=64)  # fmt: skip
    result = runner.invoke(app, ["simulate", "inject", str(lsst), "--out", str(out), *where])
    assert result.exit_code in USER_ERRORS and "unknown column 'colour'" in result.stderr


def test_simulate_takes_a_population(tmp_path: Path) -> None:
    import zarr

    out = tmp_path / "wide"
    args = ["simulate", "training-set", str(out), "--lenses", "1", "--non-lenses", "1"]
    result = runner.invoke(app, [*args, "--population", "wide", "--workers", "1"])
    assert result.exit_code == 0, result.output
    assert zarr.open_group(str(out / "cutouts.zarr"), mode="r").attrs["population"] == "wide"
    png = tmp_path / "wide.png"
    result = runner.invoke(
        app, ["simulate", "gallery", str(png), "--per-class", "1", "--population", "wide"]
    )
    assert result.exit_code == 0, result.output
    assert png.read_bytes()[:4] == b"\x89PNG"
    result = runner.invoke(app, [*args, "--population", "broad"])
    assert result.exit_code in USER_ERRORS, result.output
    assert "unknown population 'broad'; choose one of ['classic', 'wide']" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (out.parent / "broad").exists()


def test_check_set_writes_a_store_labels_and_gallery(tmp_path: Path) -> None:
    from lensflow.cutouts import open_store
    from lensflow.labels import read_labels

    out, png = tmp_path / "check", tmp_path / "check.png"
    args = ["simulate", "check-set", str(out), "--lenses", "1", "--non-lenses", "9"]
    result = runner.invoke(app, [*args, "--seed", "3", "--workers", "1", "--gallery", str(png)])
    assert result.exit_code == 0, result.output
    printed = result.output.replace("\n", "")  # the console wraps long paths
    assert f"1 lenses + 9 non-lenses -> {out / 'cutouts.zarr'}" in printed
    assert open_store(out / "cutouts.zarr").bands == ("g", "r", "i")
    labels = read_labels(out / "labels.parquet")
    assert labels.classes is not None and len(set(labels.classes)) == 10
    assert png.read_bytes()[:4] == b"\x89PNG"
    again = runner.invoke(app, args)
    assert again.exit_code in USER_ERRORS
    assert "already holds a cutout set" in again.stderr


def test_check_set_refuses_bands_it_cannot_render_before_any_work(tmp_path: Path) -> None:
    from importlib import resources

    text = resources.files("lensflow.surveys").joinpath("lsst.toml").read_text()
    text = text.replace("wavelength_nm = 869.0", "wavelength_nm = 1650.0")
    profile = tmp_path / "infrared.toml"
    profile.write_text(text.replace('name = "lsst"', 'name = "infrared"'))
    out = tmp_path / "out"
    result = runner.invoke(app, ["simulate", "check-set", str(out), "--survey", str(profile)])
    assert result.exit_code in USER_ERRORS, result.output
    assert "z (1650 nm) lie outside" in result.stderr
    assert not out.exists()
    unknown = runner.invoke(app, ["simulate", "check-set", str(out), "--survey", "euclid"])
    assert unknown.exit_code in USER_ERRORS
    assert "unknown survey 'euclid'" in unknown.stderr
