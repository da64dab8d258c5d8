"""Wide single galaxies: ellipticals with stars beside them, spiral patterns, knotted rings."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lensflow.simulate import draw_scene
from lensflow.simulate.geometry import ellipticity_to_q_phi
from lensflow.simulate.light import GaussianClumps, GaussianRing
from lensflow.simulate.sersic import SersicArms, SersicEllipse
from lensflow.simulate.wide_galaxies import WIDE_RING, WIDE_SPIRAL


def _catalogued(kind: str, seed: int, variant: str):
    scene = draw_scene(kind, seed=(31, seed), population="wide", variant=variant)
    return scene, [c for c in scene.components if c.in_catalog]


def test_an_elliptical_with_a_star_has_one_beside_it() -> None:
    for k in range(10):
        scene, _ = _catalogued("elliptical", k, "with_star")
        (star,) = scene.points
        d = math.hypot(
            star.x - scene.components[0].profile.center_x,
            star.y - scene.components[0].profile.center_y,
        )
        assert 0.5 <= d <= 4.0
        assert star.in_catalog == (d < 1.5)
        assert not _catalogued("elliptical", k, "plain")[0].points


@pytest.mark.parametrize("variant", list(WIDE_SPIRAL.variants))
def test_spiral_patterns(variant: str) -> None:
    arms, knots, bars = [], [], []
    for k in range(12):
        _, comps = _catalogued("spiral", k, variant)
        arms += [c.profile for c in comps if isinstance(c.profile, SersicArms)]
        knots.append(sum(len(c.profile.x) for c in comps if isinstance(c.profile, GaussianClumps)))
        bars += [c.profile for c in comps[4:] if isinstance(c.profile, SersicEllipse)]
    n_arms = {a.n_arms for a in arms}
    if variant == "grand_design":
        assert n_arms == {2} and min(a.contrast for a in arms) >= 1.5
    if variant == "many_arms":
        assert n_arms <= {1, 3, 4, 5, 6} and len(n_arms) >= 3
    if variant == "flocculent":
        assert max(a.contrast for a in arms) <= 1.2 and min(knots) >= 15
    if variant == "barred":
        assert len(bars) == 12
        assert all(0.2 <= ellipticity_to_q_phi(b.e1, b.e2)[0] <= 0.4 for b in bars)
    else:
        assert not bars
    pitch = [a.pitch for a in arms]
    assert min(pitch) >= WIDE_SPIRAL.pitch[0] and max(pitch) <= WIDE_SPIRAL.pitch[1]


@pytest.mark.parametrize("variant", list(WIDE_RING.variants))
def test_rings_and_their_knots(variant: str) -> None:
    for k in range(6):
        _, comps = _catalogued("ring", k, variant)
        (ring,) = [c.profile for c in comps if isinstance(c.profile, GaussianRing)]
        knots = [c.profile for c in comps if isinstance(c.profile, GaussianClumps)]
        if variant == "smooth":
            assert not knots
            continue
        assert knots
        for group in knots:
            q, phi = ellipticity_to_q_phi(ring.e1, ring.e2)
            dx, dy = np.array(group.x) - ring.center_x, np.array(group.y) - ring.center_y
            xp = math.cos(phi) * dx + math.sin(phi) * dy
            yp = -math.sin(phi) * dx + math.cos(phi) * dy
            assert np.allclose(np.sqrt(q * xp**2 + yp**2 / q), ring.radius)  # on the ring
        if variant == "partial":
            assert ring.lopsided >= 0.7
