"""Grid-drawn light (INTERPOL): unit flux, rings at their radius, spiral arms, tidal features."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lensflow.independent.render import Canvas, light_maps, unit_flux
from lensflow.independent.seds import SED
from lensflow.independent.templates import (
    TEMPLATE_PIXELS,
    ring,
    spiral_arms,
    template_light,
    tidal_features,
)

BLUE = SED("star_forming", 0.3, (-1.8, 1.0, 1.1))


def _radial_peak(image: np.ndarray, scale: float) -> float:
    axis = (np.arange(image.shape[0]) - (image.shape[0] - 1) / 2) * scale
    xx, yy = np.meshgrid(axis, axis)
    r = np.hypot(xx, yy)
    edges = np.arange(0.0, r.max(), scale)
    profile = [image[(r >= a) & (r < a + scale)].mean() for a in edges]
    return float(edges[int(np.argmax(profile))] + scale / 2)


def test_a_template_light_has_unit_flux_through_lenstronomy() -> None:
    rng = np.random.default_rng(0)
    image, scale = ring(rng, radius=1.5, width=0.15, q=0.8, phi=0.4)
    light = template_light(image, scale, (0.3, -0.2), sed=BLUE, mag_ref=21.0, size=1.5)
    assert unit_flux(light) == pytest.approx(1.0)
    rendered = light_maps([light], deflector=None, canvas=Canvas(n=64, scale=0.2, ss=3))[0]
    assert rendered.total == pytest.approx(1.0, rel=0.01)


def test_a_face_on_ring_peaks_at_its_radius() -> None:
    rng = np.random.default_rng(1)
    image, scale = ring(rng, radius=2.0, width=0.2, q=1.0, phi=0.0)
    assert image.shape == (TEMPLATE_PIXELS, TEMPLATE_PIXELS)
    assert _radial_peak(image, scale) == pytest.approx(2.0, abs=0.15)


def test_spiral_arms_have_their_arm_pattern() -> None:
    """Along a circle the arms give the brightness m maxima (m >= 2), not a smooth disc."""
    rng = np.random.default_rng(2)
    image, scale = spiral_arms(rng, disc_r=2.0, q=1.0, phi=0.0)
    centre = (TEMPLATE_PIXELS - 1) / 2
    angles = np.linspace(0.0, 2.0 * math.pi, 720, endpoint=False)
    radius = 1.2 / scale
    values = image[
        np.round(centre + radius * np.sin(angles)).astype(int),
        np.round(centre + radius * np.cos(angles)).astype(int),
    ]
    assert values.max() > 3.0 * np.median(values)
    smooth = np.convolve(np.r_[values, values[:20]], np.ones(20) / 20, mode="valid")[:720]
    peaks = np.sum(
        (smooth > np.roll(smooth, 1)) & (smooth > np.roll(smooth, -1)) & (smooth > smooth.mean())
    )
    assert peaks >= 2


def test_tidal_features_are_tails_or_shells_beyond_the_galaxies() -> None:
    rng = np.random.default_rng(3)
    kinds = set()
    for _ in range(12):
        image, scale, kind = tidal_features(rng, origins=[(0.0, 0.0), (1.0, 0.5)], reach=3.0)
        kinds.add(kind)
        assert _radial_peak(image, scale) > 0.2 and image.min() >= 0.0
    assert kinds == {"tails", "shells"}
