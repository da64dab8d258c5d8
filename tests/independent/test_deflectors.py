"""The deflector population: the cross-section-weighted VDF, redshifts, Einstein radii."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from lensflow.errors import SimulationError
from lensflow.independent.cosmology import einstein_radius
from lensflow.independent.deflectors import DEFLECTORS, draw_deflector, draw_redshifts, draw_sigma


def test_sigma_follows_the_vdf_times_sigma_to_the_fourth() -> None:
    p = DEFLECTORS
    law = lambda s: s ** (p.vdf_alpha + 3.0) * math.exp(-((s / p.sigma_star) ** p.vdf_beta))
    norm, _ = integrate.quad(law, *p.sigma_range)
    mean, _ = integrate.quad(lambda s: s * law(s), *p.sigma_range)
    rng = np.random.default_rng(0)
    draws = np.array([draw_sigma(rng) for _ in range(4000)])
    assert draws.min() >= p.sigma_range[0] and draws.max() <= p.sigma_range[1]
    assert draws.mean() == pytest.approx(mean / norm, rel=0.01)


def test_redshifts_put_the_source_behind_the_lens() -> None:
    rng = np.random.default_rng(1)
    pairs = np.array([draw_redshifts(rng) for _ in range(2000)])
    assert np.all(pairs[:, 0] >= 0.2) and np.all(pairs[:, 0] <= 0.9)
    assert np.all(pairs[:, 1] >= 1.0) and np.all(pairs[:, 1] <= 4.0)
    assert 0.4 < np.mean(pairs[:, 0]) < 0.7  # volume up, lensing efficiency down


def test_a_deflector_has_the_einstein_radius_of_its_sigma_and_redshifts() -> None:
    rng = np.random.default_rng(2)
    for _ in range(20):
        deflector, lights, params = draw_deflector(
            rng, center=(0.05, 0.0), theta_e_range=(0.6, 2.0)
        )
        assert 0.6 <= deflector.theta_e <= 2.0
        expected = einstein_radius(params["sigma_v"], params["z_lens"], params["z_source"])
        assert deflector.theta_e == pytest.approx(expected)
        assert 1.7 <= deflector.gamma <= 2.3
        phi_mass = 0.5 * math.atan2(deflector.e2, deflector.e1)
        e1, e2 = lights[0].kwargs[0]["e1"], lights[0].kwargs[0]["e2"]
        offset = abs(math.remainder(0.5 * math.atan2(e2, e1) - phi_mass, math.pi))
        assert offset < math.radians(40.0) or math.hypot(e1, e2) < 0.05


def test_an_unreachable_einstein_radius_is_refused() -> None:
    with pytest.raises(SimulationError, match="no deflector with theta_E"):
        draw_deflector(
            np.random.default_rng(3), center=(0, 0), theta_e_range=(9.0, 10.0), max_draws=20
        )
