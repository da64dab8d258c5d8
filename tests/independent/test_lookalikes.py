"""Every non-lens class draws what its docstring says, from a red galaxy drawn as a deflector."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lensflow.independent.lookalikes import DRAWERS, draw_blue_companions, draw_star_beside_galaxy
from lensflow.independent.population import draw_seeing
from lensflow.surveys import survey_profile

LSST = survey_profile("lsst")


@pytest.mark.parametrize("kind", sorted(DRAWERS))
def test_each_class_draws_a_central_object(kind: str) -> None:
    rng = np.random.default_rng(7)
    for _ in range(3):
        lights, _, params = DRAWERS[kind](rng, LSST, draw_seeing(rng, LSST), (0.05, -0.05))
        assert lights and all(light.central and not light.lensed for light in lights)
        assert all(np.isfinite(light.mag_ref) for light in lights)
        assert 15.0 < params["mag_ref"] < 27.0


def test_tangential_companions_lie_across_the_line_to_the_host() -> None:
    rng = np.random.default_rng(8)
    found = 0
    for _ in range(10):
        lights, _, params = draw_blue_companions(rng, LSST, draw_seeing(rng, LSST), (0.0, 0.0))
        for light in lights[2:]:
            kw = light.kwargs[0]
            q = (1 - math.hypot(kw["e1"], kw["e2"])) / (1 + math.hypot(kw["e1"], kw["e2"]))
            if q < 0.5 + 1e-9 and light.sed.family == "star_forming":
                radial = math.atan2(light.center[1], light.center[0])
                major = 0.5 * math.atan2(kw["e2"], kw["e1"])
                found += abs(math.remainder(major - radial, math.pi)) > math.radians(80)
        assert 1 <= params["n_companions"] <= 5
    assert found >= 3


def test_stars_beside_a_galaxy_are_black_bodies_outside_the_main_object() -> None:
    rng = np.random.default_rng(9)
    for _ in range(10):
        _, points, params = draw_star_beside_galaxy(rng, LSST, draw_seeing(rng, LSST), (0.0, 0.0))
        assert len(points) == params["n_stars"]
        for star in points:
            assert star.sed.family == "star" and not star.central
            assert 0.8 <= math.hypot(star.x[0], star.y[0]) <= 4.0
