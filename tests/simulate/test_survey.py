"""Survey profiles: the shipped TOML files, user files, depths, PSF sizes, gain; shifted variants."""

from __future__ import annotations

import math
import pickle
import tomllib
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import tomli_w
from frozendict import frozendict

from lensflow.errors import ConfigError, SimulationError
from lensflow.surveys import (
    Survey,
    ab_to_njy,
    frozen,
    njy_to_ab,
    shipped_profiles,
    sky_sigma_for_depth,
    survey_profile,
)

LSST = survey_profile("lsst")
SHIPPED = Path(__file__).resolve().parents[2] / "lensflow" / "surveys"


def _profile_table(name: str) -> dict[str, Any]:
    with (SHIPPED / f"{name}.toml").open("rb") as f:
        return tomllib.load(f)


def _write(path: Path, table: dict[str, Any]) -> Path:
    path.write_text(tomli_w.dumps(table))
    return path


def test_lsst_is_the_design_profile() -> None:
    s = LSST
    assert s == survey_profile(SHIPPED / "lsst.toml")
    assert s.bands == ("g", "r", "i")
    assert s.catalog_bands == ("g", "r", "i", "z")
    assert (s.pixel_scale_arcsec, s.cutout_size, s.zero_point_ab) == (0.2, 64, 31.4)
    assert dict(s.psf_fwhm_arcsec) == {"g": 0.85, "r": 0.75, "i": 0.70, "z": 0.70}
    assert dict(s.sky_sigma_njy) == {"g": 2.85, "r": 3.88, "i": 6.60, "z": 10.5}


@pytest.mark.parametrize(("band", "depth"), [("g", 26.5), ("r", 26.3), ("i", 25.8)])
def test_point_depths_follow_from_the_sky_sigma(band: str, depth: float) -> None:
    assert LSST.point_depth(band) == pytest.approx(depth, abs=0.02)


def test_gain_makes_sigma_the_dark_sky_poisson_noise() -> None:
    for band in LSST.catalog_bands:
        sky = LSST.sky_level_njy(band)
        assert math.sqrt(sky / LSST.gain(band)) == pytest.approx(LSST.sky_sigma_njy[band])


def test_shifted_changes_seeing_and_depth() -> None:
    worse = LSST.shifted(seeing_factor=1.3, depth_mag=-0.5)
    for band in LSST.catalog_bands:
        assert worse.psf_fwhm_arcsec[band] == pytest.approx(1.3 * LSST.psf_fwhm_arcsec[band])
        assert worse.sky_sigma_njy[band] == pytest.approx(
            LSST.sky_sigma_njy[band] * 10 ** (0.4 * 0.5)
        )
    shallower = LSST.shifted(depth_mag=-0.5)
    for band in LSST.catalog_bands:
        assert shallower.point_depth(band) == pytest.approx(LSST.point_depth(band) - 0.5)
    assert worse.point_depth("r") < LSST.point_depth("r") - 0.5
    assert LSST.shifted() == LSST
    with pytest.raises(SimulationError, match="seeing_factor"):
        LSST.shifted(seeing_factor=0.0)


def test_survey_is_hashable_and_picklable() -> None:
    assert hash(LSST) == hash(survey_profile(SHIPPED / "lsst.toml"))
    assert pickle.loads(pickle.dumps(LSST)) == LSST
    custom = replace(LSST, psf_fwhm_arcsec={"g": 1.0, "r": 1.0, "i": 1.0, "z": 1.0})
    assert isinstance(custom.psf_fwhm_arcsec, frozendict)
    assert custom != LSST


def test_frozen_mapping_is_read_only() -> None:
    m = frozen({"g": 1.0})
    assert m == {"g": 1.0}
    assert dict(m) == {"g": 1.0}
    with pytest.raises(TypeError):
        m["g"] = 2.0  # type: ignore[index]
    with pytest.raises(KeyError):
        m["x"]


def test_a_survey_missing_a_band_is_refused() -> None:
    with pytest.raises(SimulationError, match="lacks values"):
        replace(LSST, sky_sigma_njy={"g": 1.0, "r": 1.0, "i": 1.0})
    with pytest.raises(SimulationError, match="image bands"):
        replace(LSST, bands=("g", "y"))


def test_ab_conversions() -> None:
    assert ab_to_njy(31.4) == pytest.approx(1.0)
    assert njy_to_ab(ab_to_njy(22.3)) == pytest.approx(22.3)
    assert njy_to_ab(0.0) == math.inf
    assert math.isnan(njy_to_ab(-1.0))
    assert ab_to_njy(math.inf) == 0.0


def test_the_shipped_profiles_are_lsst_hsc_and_legacy() -> None:
    assert shipped_profiles() == ("hsc", "legacy", "lsst")
    for name in shipped_profiles():
        survey = survey_profile(name)
        assert isinstance(survey, Survey) and survey.name == name
        assert set(survey.bands) <= set(survey.catalog_bands)
        assert survey.units == "nJy" and survey.zero_point_ab == 31.4
        assert survey.store_attributes()["units"] == "nJy"
        for band in survey.catalog_bands:
            assert math.sqrt(survey.sky_level_njy(band) / survey.gain(band)) == pytest.approx(
                survey.sky_sigma_njy[band]
            )


@pytest.mark.parametrize("name", ["hsc", "legacy"])
def test_depths_round_trip_through_the_sky_sigma(name: str) -> None:
    survey = survey_profile(name)
    for band, numbers in _profile_table(name)["bands"].items():
        depth = numbers["point_depth_5sigma"]
        sigma = sky_sigma_for_depth(
            depth,
            fwhm_arcsec=numbers["psf_fwhm_arcsec"],
            pixel_scale_arcsec=survey.pixel_scale_arcsec,
        )
        assert survey.sky_sigma_njy[band] == pytest.approx(sigma)
        assert survey.point_depth(band) == pytest.approx(depth, abs=0.01)


def test_the_hsc_profile_is_the_wide_layer() -> None:
    hsc = survey_profile("hsc")
    assert hsc.bands == hsc.catalog_bands == ("g", "r", "i", "z", "y")
    assert (hsc.pixel_scale_arcsec, hsc.coadd_units, hsc.coadd_zero_point_ab) == (
        0.168,
        "counts",
        27.0,
    )
    assert dict(hsc.psf_fwhm_arcsec) == {"g": 0.79, "r": 0.75, "i": 0.61, "z": 0.68, "y": 0.68}
    assert [round(hsc.point_depth(b), 2) for b in hsc.catalog_bands] == [
        26.5,
        26.5,
        26.2,
        25.2,
        24.4,
    ]
    columns = hsc.columns
    assert (columns.id, columns.ra, columns.dec) == ("object_id", "ra", "dec")
    assert columns.band("mag", "i") == "i_cmodel_mag"
    assert columns.band("magerr", "y") == "y_cmodel_magerr"
    assert columns.band("psf_mag", "g") == "g_psfflux_mag"


def test_the_legacy_profile_is_dr10() -> None:
    legacy = survey_profile("legacy")
    assert legacy.bands == ("g", "r", "i", "z")
    assert (legacy.pixel_scale_arcsec, legacy.coadd_units, legacy.coadd_zero_point_ab) == (
        0.262,
        "nanomaggy",
        22.5,
    )
    assert dict(legacy.psf_fwhm_arcsec) == {"g": 1.29, "r": 1.18, "i": 1.1, "z": 1.11}


def test_a_user_profile_file_works(tmp_path: Path) -> None:
    table = _profile_table("hsc")
    table["name"] = "my_survey"
    table["image_bands"] = ["g", "r", "i"]
    del table["bands"]["r"]["point_depth_5sigma"]
    table["bands"]["r"]["sky_sigma_njy"] = 3.0
    survey = survey_profile(_write(tmp_path / "mine.toml", table))
    assert survey.name == "my_survey" and survey.bands == ("g", "r", "i")
    assert survey.sky_sigma_njy["r"] == 3.0
    assert survey.store_attributes()["pixel_scale_arcsec"] == 0.168
    assert survey_profile(str(tmp_path / "mine.toml")) == survey


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (lambda t: t.update(pixel_scale=0.2), "pixel_scale"),
        (lambda t: t["bands"]["g"].update(psf_fwhm_arcsc=0.8), "bands.g.psf_fwhm_arcsc"),
        (lambda t: t["columns"].update(mag="cmodel_mag"), "columns.mag"),
        (lambda t: t["bands"]["g"].update(sky_sigma_njy=2.0), "exactly one of"),
        (lambda t: t.pop("cutout_size"), "cutout_size"),
        (lambda t: t["bands"].pop("y"), "[bands.<band>]"),
        (lambda t: t.update(zero_point_ab=27.0), "zero_point_ab"),
    ],
)
def test_a_bad_profile_is_refused_by_name(tmp_path: Path, change: Any, named: str) -> None:
    table = _profile_table("hsc")
    change(table)
    with pytest.raises(ConfigError, match="invalid survey profile") as caught:
        survey_profile(_write(tmp_path / "bad.toml", table))
    assert named in str(caught.value)


def test_an_unknown_survey_lists_the_shipped_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="shipped profiles: hsc, legacy, lsst"):
        survey_profile("euclid")
    with pytest.raises(ConfigError, match="no survey profile here"):
        survey_profile(tmp_path / "absent.toml")
