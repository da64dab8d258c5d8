"""Seeing, shapes and number counts of the check set's draws."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lensflow.independent.population import (
    SEEING,
    Deflector,
    count_law,
    draw_seeing,
    ellipticity,
    rayleigh_q,
    sersic_light,
)
from lensflow.independent.seds import SED
from lensflow.surveys import survey_profile

LSST = survey_profile("lsst")


def test_seeing_scatters_about_the_profiles_fwhm_with_both_psf_models() -> None:
    rng = np.random.default_rng(0)
    draws = [draw_seeing(rng, LSST) for _ in range(600)]
    for band in LSST.bands:
        ratio = np.array([d.fwhm[band] for d in draws]) / LSST.psf_fwhm_arcsec[band]
        assert np.median(ratio) == pytest.approx(1.0, abs=0.03)
        assert ratio.min() >= SEEING.clip[0] * 0.85 and ratio.max() <= SEEING.clip[1] * 1.15
        assert np.std(np.log(ratio)) == pytest.approx(SEEING.sigma_ln, rel=0.25)
    moffat = np.mean([d.model == "moffat" for d in draws])
    assert moffat == pytest.approx(SEEING.p_moffat, abs=0.06)


@pytest.mark.parametrize(("q", "phi"), [(0.5, 0.3), (0.9, 2.0), (1.0, 0.0)])
def test_ellipticity_follows_the_reference_convention(q: float, phi: float) -> None:
    e1, e2 = ellipticity(q, phi)
    c = (1 - q) / (1 + q)
    assert (e1, e2) == pytest.approx((c * math.cos(2 * phi), c * math.sin(2 * phi)), abs=1e-12)


def test_a_sersic_light_reaches_further_for_larger_n() -> None:
    sed = SED("old", 0.3, (1.4, 2.0))
    disc = sersic_light(0.5, 1.0, 0.8, 0.0, (0.0, 0.0), sed=sed, mag_ref=20.0)
    bulge = sersic_light(0.5, 4.0, 0.8, 0.0, (0.0, 0.0), sed=sed, mag_ref=20.0)
    assert bulge.extent > disc.extent > 5 * 0.5
    assert disc.models == ("SERSIC_ELLIPSE",) and disc.kwargs[0]["amp"] == 1.0


def test_axis_ratios_and_counts_stay_in_their_ranges() -> None:
    rng = np.random.default_rng(1)
    qs = [rayleigh_q(rng, 0.3) for _ in range(500)]
    assert min(qs) >= 0.2 and max(qs) <= 1.0
    assert np.mean(qs) == pytest.approx(1 - 0.3 * math.sqrt(math.pi / 2), abs=0.05)
    mags = np.array([count_law(rng, 22.0, 26.0, 0.3) for _ in range(4000)])
    assert mags.min() >= 22.0 and mags.max() <= 26.0
    faint, bright = np.sum(mags > 25.0), np.sum(mags < 23.0)
    assert faint / bright == pytest.approx(10**0.9, rel=0.2)  # dN/dm ~ 10^(0.3 m)


def test_a_deflector_gives_lenstronomy_its_kwargs() -> None:
    kwargs = Deflector(1.1, 2.05, 0.1, -0.05, 0.02, 0.03, 0.01, -0.02).kwargs()
    assert kwargs[0] == {
        "theta_E": 1.1, "gamma": 2.05, "e1": 0.1, "e2": -0.05, "center_x": 0.02, "center_y": 0.03,
    }  # fmt: skip
    assert kwargs[1] == {"gamma1": 0.01, "gamma2": -0.02, "ra_0": 0.02, "dec_0": 0.03}
