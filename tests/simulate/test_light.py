"""Light profiles: total fluxes are their integrals, extents hold their flux, the registries."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from lensflow.simulate.light import (
    LIGHT_PROFILES,
    PROFILES,
    GaussianClumps,
    GaussianPSF,
    GaussianRing,
    MoffatPSF,
    TidalArc,
)
from lensflow.simulate.render import render_adaptive
from lensflow.simulate.sersic import SersicArms, SersicEllipse, SersicLane

LIGHTS = [
    SersicEllipse.from_flux(3.0, 0.1, 4.0, 0.1, 0.2),
    SersicArms(SersicEllipse.from_flux(2.0, 0.8, 1.0, 0.2, 0.0), 2, 0.3, 2.5, 0.4),
    SersicLane(SersicEllipse(1.0, 1.0, 1.0, 0.5, 0.3), 0.1),
    GaussianRing(1.3, 1.5, 0.2, 0.1, -0.2, 0.1, 0.0, lopsided=0.5, angle=1.0),
    TidalArc(2.0, 2.0, 0.2, 0.5, 0.8, -0.3, 0.2),
    GaussianClumps((0.1, -0.5), (0.2, 0.3), (0.05, 0.1), (0.4, 0.6)),
    MoffatPSF(0.7, 3.5, 0.05, -0.02),
    GaussianPSF(0.8, -0.1, 0.1),
]


@pytest.mark.parametrize("light", LIGHTS, ids=lambda light: type(light).__name__)
def test_light_profiles_total_flux_is_their_integral(light: Any) -> None:
    image = render_adaptive([light], n=160, pixel_scale=0.1, accuracy=4.0)[0]
    assert image.sum() == pytest.approx(light.total_flux(), rel=3e-3)


def test_registry_names_every_profile() -> None:
    assert {"SIE", "SHEAR", "SERSIC_ELLIPSE"} <= set(PROFILES)
    assert {type(light) for light in LIGHTS} == set(LIGHT_PROFILES.values())


@pytest.mark.parametrize("light", LIGHTS, ids=lambda light: type(light).__name__)
def test_light_extent_holds_all_but_the_fraction(light: Any) -> None:
    cx, cy, radius = light.extent(1e-3)
    image = render_adaptive([light], n=200, pixel_scale=0.1, accuracy=4.0)[0]
    c = (np.arange(200) - 99.5) * 0.1
    outside = (c[None, :] - cx) ** 2 + (c[:, None] - cy) ** 2 > radius**2
    assert image[outside].sum() <= 1.5e-3 * light.total_flux()
    assert light.extent(1e-6)[2] > radius
