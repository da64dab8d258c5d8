"""The mock survey profile: bands, depths, PSF sizes, gain; shifted variants."""

from __future__ import annotations

import math
import pickle

import pytest
from frozendict import frozendict

from lensflow.errors import SimulationError
from lensflow.simulate import LSST_LIKE, Survey
from lensflow.simulate.survey import ab_to_njy, frozen, njy_to_ab


def test_lsst_like_is_the_design_profile() -> None:
    s = LSST_LIKE
    assert s == Survey()
    assert s.bands == ("g", "r", "i")
    assert s.catalog_bands == ("g", "r", "i", "z")
    assert (s.pixel_scale_arcsec, s.cutout_size, s.zero_point_ab) == (0.2, 64, 31.4)
    assert dict(s.psf_fwhm_arcsec) == {"g": 0.85, "r": 0.75, "i": 0.70, "z": 0.70}
    assert dict(s.sky_sigma_njy) == {"g": 2.85, "r": 3.88, "i": 6.60, "z": 10.5}


@pytest.mark.parametrize(("band", "depth"), [("g", 26.5), ("r", 26.3), ("i", 25.8)])
def test_point_depths_follow_from_the_sky_sigma(band: str, depth: float) -> None:
    assert LSST_LIKE.point_depth(band) == pytest.approx(depth, abs=0.02)


def test_gain_makes_sigma_the_dark_sky_poisson_noise() -> None:
    for band in LSST_LIKE.catalog_bands:
        sky = LSST_LIKE.sky_level_njy(band)
        assert math.sqrt(sky / LSST_LIKE.gain(band)) == pytest.approx(LSST_LIKE.sky_sigma_njy[band])


def test_shifted_changes_seeing_and_depth() -> None:
    worse = LSST_LIKE.shifted(seeing_factor=1.3, depth_mag=-0.5)
    for band in LSST_LIKE.catalog_bands:
        assert worse.psf_fwhm_arcsec[band] == pytest.approx(1.3 * LSST_LIKE.psf_fwhm_arcsec[band])
        assert worse.sky_sigma_njy[band] == pytest.approx(
            LSST_LIKE.sky_sigma_njy[band] * 10 ** (0.2 * 0.5)
        )
    assert worse.point_depth("r") < LSST_LIKE.point_depth("r") - 0.5
    assert LSST_LIKE.shifted() == LSST_LIKE
    with pytest.raises(SimulationError, match="seeing_factor"):
        LSST_LIKE.shifted(seeing_factor=0.0)


def test_survey_is_hashable_and_picklable() -> None:
    assert hash(LSST_LIKE) == hash(Survey())
    assert pickle.loads(pickle.dumps(LSST_LIKE)) == LSST_LIKE
    custom = Survey(psf_fwhm_arcsec={"g": 1.0, "r": 1.0, "i": 1.0, "z": 1.0})
    assert isinstance(custom.psf_fwhm_arcsec, frozendict)
    assert custom != LSST_LIKE


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
        Survey(sky_sigma_njy={"g": 1.0, "r": 1.0, "i": 1.0})
    with pytest.raises(SimulationError, match="image bands"):
        Survey(bands=("g", "y"))


def test_ab_conversions() -> None:
    assert ab_to_njy(31.4) == pytest.approx(1.0)
    assert njy_to_ab(ab_to_njy(22.3)) == pytest.approx(22.3)
    assert njy_to_ab(0.0) == math.inf
    assert math.isnan(njy_to_ab(-1.0))
    assert ab_to_njy(math.inf) == 0.0
