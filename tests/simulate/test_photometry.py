"""Catalog photometry: magnitudes scatter as their errors say, errors follow the depth, and a
catalog row's morphology tells stars from galaxies."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lensflow.simulate import (
    draw_scene,
    observe_magnitudes,
)
from lensflow.simulate.photometry import (
    CALIBRATION_MAG,
    Photometry,
    observe_catalog,
    observe_morphology,
    observe_photometry,
)
from lensflow.surveys import survey_profile

LSST = survey_profile("lsst")


def test_observed_magnitudes_follow_the_depth() -> None:
    scene = draw_scene("elliptical", seed=3, mag_r=21.0)
    rng = np.random.default_rng(0)
    draws = [observe_magnitudes(scene, rng=rng) for _ in range(200)]
    r = np.array([m["r"] for m, _ in draws])
    err = np.array([e["r"] for _, e in draws])
    assert set(draws[0][0]) == set(LSST.catalog_bands)
    assert np.nanmean(r) == pytest.approx(21.0, abs=0.01)
    assert np.std(r) == pytest.approx(np.mean(err), rel=0.2)
    shallow = LSST.shifted(depth_mag=-2.0)
    _, shallow_err = observe_magnitudes(scene, rng=rng, survey=shallow)
    assert shallow_err["r"] > 1.5 * np.mean(err)
    faint = draw_scene("elliptical", seed=3, mag_r=31.0)
    mags, errors = observe_magnitudes(faint, rng=rng)
    assert math.isnan(mags["r"]) and math.isnan(errors["r"])


def test_faint_sources_get_larger_errors() -> None:
    rng = np.random.default_rng(5)
    errors = []
    for mag in (19.0, 22.0, 24.0):
        scene = draw_scene("star", seed=2, mag_r=mag)
        errors.append(observe_magnitudes(scene, rng=rng)[1]["r"])
    assert errors[0] < errors[1] < errors[2]


def test_photometry_keeps_the_magnitudes_and_adds_the_calibration() -> None:
    scene = draw_scene("spiral", seed=8, mag_r=20.5)
    mags, errors = observe_magnitudes(scene, rng=np.random.default_rng(3))
    measured = observe_photometry(scene, rng=np.random.default_rng(3))
    assert dict(measured.mags) == mags and dict(measured.errors) == errors
    assert set(measured.calibration) == set(LSST.catalog_bands)
    assert all(abs(c) < 6 * CALIBRATION_MAG for c in measured.calibration.values())


def test_a_catalog_row_calls_a_star_point_like_and_a_galaxy_extended() -> None:
    star = observe_catalog(draw_scene("star", seed=4, mag_r=20.0), rng=np.random.default_rng(1))
    galaxy = draw_scene("disc_face_on", seed=4, mag_r=20.0)
    entry = observe_catalog(galaxy, rng=np.random.default_rng(1))
    assert star.extendedness == 0.0 and entry.extendedness == 1.0
    assert entry.reference_band == "i"
    for band in LSST.catalog_bands:
        assert abs(star.psf_mags[band] - star.mags[band]) < 0.02
        assert entry.psf_mags[band] - entry.mags[band] > 0.2
        assert entry.sizes[band] > 0.2 > star.sizes[band]
    again = observe_catalog(galaxy, rng=np.random.default_rng(1))
    assert again == entry, "the pixels' noise comes from the scene's seed"


def test_calibration_moves_psf_and_model_magnitudes_together() -> None:
    scene = draw_scene("elliptical", seed=6, mag_r=19.0)
    measured = observe_photometry(scene, rng=np.random.default_rng(2))
    shifted = Photometry(
        measured.mags, measured.errors, {b: c + 0.1 for b, c in measured.calibration.items()}
    )
    one, two = observe_morphology(scene, measured), observe_morphology(scene, shifted)
    for band in LSST.catalog_bands:
        assert two.psf_mags[band] - one.psf_mags[band] == pytest.approx(0.1, abs=1e-9)
