"""Catalog photometry: magnitudes scatter as their errors say, and errors follow the depth."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lensflow.simulate import (
    draw_scene,
    observe_magnitudes,
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
