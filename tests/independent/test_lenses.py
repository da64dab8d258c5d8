"""Lenses are kept only when detectable by the check set's criterion, measured on the render."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lensflow.errors import SimulationError
from lensflow.independent.lenses import DETECTABLE, Detectability, contrast, draw_lens
from lensflow.independent.population import draw_seeing
from lensflow.surveys import survey_profile

LSST = survey_profile("lsst")


@pytest.fixture(scope="module")
def drawn() -> list[tuple[dict[str, float], int]]:
    out = []
    for seed in range(8):
        rng = np.random.default_rng(seed)
        seeing = draw_seeing(rng, LSST)
        lights, points, deflector, params = draw_lens(
            rng, survey=LSST, seeing=seeing, center=(0, 0)
        )
        assert any(light.lensed for light in lights) and deflector.theta_e == params["theta_e"]
        out.append((params, sum(len(p.x) for p in points)))
    return out


def test_every_drawn_lens_meets_the_criterion(drawn: list[tuple[dict[str, float], int]]) -> None:
    c = DETECTABLE
    for params, n_points in drawn:
        fwhm = params["psf_fwhm_mean"]
        assert params["theta_e"] >= c.min_theta_e_over_fwhm * fwhm
        assert params["theta_e"] <= c.max_theta_e_over_half_size * 6.4
        assert params["magnification"] >= c.min_magnification
        assert params["arc_snr"] >= c.min_snr and params["arc_contrast"] >= c.min_contrast
        if params["is_quasar"]:
            assert n_points == params["n_images"] >= 2
            assert params["counter_image_snr"] >= c.min_counter_image_snr
        else:
            assert n_points == 0 and math.isnan(params["counter_image_snr"])
            assert c.resolved(
                params["theta_e"], params["source_r_e"], params["magnification"], fwhm
            )


def test_resolution_needs_a_ring_larger_than_source_and_seeing() -> None:
    c = Detectability()
    assert c.resolved(1.0, 0.2, 5.0, 0.7)
    assert not c.resolved(0.3, 0.2, 5.0, 0.7)  # theta_E below the seeing
    assert not c.resolved(1.0, 0.05, 2.0, 0.7)  # arc unresolved along its length


def test_contrast_is_the_lensed_share_where_the_arcs_show() -> None:
    arcs = np.zeros((2, 4, 4))
    arcs[0, 0, 0] = 10.0
    light = np.full((2, 4, 4), 10.0)
    assert contrast(arcs, light, np.ones((2, 4, 4))) == pytest.approx(0.5)
    assert contrast(arcs, light, np.full((2, 4, 4), 1e4)) == 0.0


def test_an_impossible_criterion_stops_after_its_draws() -> None:
    rng = np.random.default_rng(0)
    strict = Detectability(min_snr=1e9, max_draws=3)
    with pytest.raises(SimulationError, match="no detectable lens in 3 draws"):
        draw_lens(rng, survey=LSST, seeing=draw_seeing(rng, LSST), center=(0, 0), criterion=strict)
