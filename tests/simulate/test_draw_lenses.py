"""Lenses show lensing: their acceptance criteria hold when measured again, and they add up."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest

from lensflow.errors import SimulationError
from lensflow.simulate import (
    LensCriteria,
    draw_scene,
    noiseless_image,
)
from lensflow.simulate.cosmology import einstein_radius
from lensflow.simulate.observe import noise_sigma
from lensflow.simulate.render import render_midpoint
from lensflow.surveys import ab_to_njy, survey_profile

LSST = survey_profile("lsst")


def _arc_snr(arcs: np.ndarray, light: np.ndarray) -> float:
    best = 0.0
    for k, band in enumerate(LSST.bands):
        sigma = noise_sigma(
            arcs[k] + light[k], sky_sigma=LSST.sky_sigma_njy[band], gain=LSST.gain(band)
        )
        mask = arcs[k] > sigma
        if mask.any():
            best = max(best, arcs[k][mask].sum() / math.sqrt((sigma[mask] ** 2).sum()))
    return best


@pytest.mark.parametrize(
    "criteria",
    [
        LensCriteria(),
        LensCriteria(min_magnification=6.0, min_arc_snr=60.0, min_theta_e_over_fwhm=1.5),
    ],
)
def test_lenses_meet_their_acceptance_criteria(criteria: LensCriteria) -> None:
    for k in range(5):
        scene = draw_scene("lens", seed=(77, k), criteria=criteria)
        p = scene.params
        assert p["min_magnification"] == criteria.min_magnification
        assert p["min_arc_snr"] == criteria.min_arc_snr
        assert p["min_theta_e_over_fwhm"] == criteria.min_theta_e_over_fwhm
        assert 0.6 <= p["theta_e"] <= 3.0
        assert 1.0 <= p["z_source"] <= 3.0
        assert p["theta_e"] == pytest.approx(
            einstein_radius(p["sigma_v"], p["z_lens"], p["z_source"])
        )
        fwhm_min = min(scene.psf_fwhm(b) for b in LSST.bands)
        assert p["theta_e"] >= criteria.min_theta_e_over_fwhm * fwhm_min
        assert p["psf_fwhm_min"] == pytest.approx(fwhm_min)
        # magnification again, by a dense midpoint rule
        lensed = [c for c in scene.components if c.lensed]
        intrinsic = sum(c.flux["r"] for c in lensed)
        magnified = sum(
            c.flux["r"]
            * render_midpoint(
                c.profile, n=64, pixel_scale=0.2, supersample=16, lens=scene.lens
            ).sum()
            / c.profile.total_flux()
            for c in lensed
        )
        assert magnified / intrinsic == pytest.approx(p["magnification"], rel=0.01)
        assert p["magnification"] >= criteria.min_magnification
        # arc signal-to-noise again, from the noiseless images of the arcs and the lens light
        arcs = noiseless_image(replace(scene, components=tuple(lensed), points=()))
        light = noiseless_image(replace(scene, components=scene.components[:1], points=()))
        assert _arc_snr(arcs, light) == pytest.approx(p["arc_snr"], rel=1e-4)
        assert p["arc_snr"] >= criteria.min_arc_snr


def test_impossible_criteria_fail_with_a_clear_error() -> None:
    with pytest.raises(SimulationError, match="no lens met"):
        draw_scene("lens", seed=1, criteria=LensCriteria(min_magnification=1e4, max_draws=3))


def test_lens_magnitudes_include_the_magnified_source() -> None:
    scene = draw_scene("lens", seed=(8, 1))
    p = scene.params
    lens_flux = ab_to_njy(p["lens_mag_r"])
    source_flux = ab_to_njy(p["source_mag_r"]) * p["magnification"]
    assert ab_to_njy(scene.mag["r"]) == pytest.approx(lens_flux + source_flux, rel=1e-9)
    assert scene.mag["r"] < p["lens_mag_r"]
