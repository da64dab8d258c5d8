"""Wide lookalikes: tangential and arc-like companions, tidal features, chance alignments."""

from __future__ import annotations

import math

import numpy as np
import pytest
from frozendict import frozendict

from lensflow.simulate import draw_scene
from lensflow.simulate.draw_base import DrawContext
from lensflow.simulate.geometry import ellipticity_to_q_phi
from lensflow.simulate.light import GaussianRing, TidalArc
from lensflow.simulate.scene import DEFAULT_CRITERIA
from lensflow.simulate.sersic import SersicEllipse
from lensflow.simulate.wide_lookalikes import draw_wide_group, draw_wide_neighbours
from lensflow.surveys import survey_profile


def _ctx(seed: int, variant: str) -> DrawContext:
    survey = survey_profile()
    seeing = frozendict({b: 1.0 for b in survey.catalog_bands})
    rng = np.random.default_rng(seed)
    return DrawContext(
        rng, survey, None, DEFAULT_CRITERIA, seeing, "moffat", 0.0, 0.0, variant=variant
    )


def test_tangential_companions_are_elongated_across_the_radius_vector() -> None:
    tangential = arclets = 0
    separations = []
    for k in range(30):
        drawn = draw_wide_neighbours(_ctx(k, "tangential"))
        for c in drawn.components[2:]:  # after the red galaxy's two components
            p = c.profile
            if isinstance(p, TidalArc):
                assert (p.center_x, p.center_y) == (0.0, 0.0)  # about the red galaxy
                arclets += 1
                separations.append(p.radius)
                continue
            assert isinstance(p, SersicEllipse)
            r = math.hypot(p.center_x, p.center_y)
            q, phi = ellipticity_to_q_phi(p.e1, p.e2)
            assert q <= 0.45
            tangential += 1
            separations.append(r)
            off = abs(math.remainder(phi - math.atan2(p.center_y, p.center_x), math.pi))
            assert off == pytest.approx(0.5 * math.pi, abs=1e-9)
            assert c.in_catalog == (r < 1.5)
    assert tangential > 10 and arclets > 10
    assert min(separations) < 0.8 and max(separations) > 4.0


def test_a_star_stands_beside_the_red_galaxy() -> None:
    for k in range(10):
        scene = draw_scene(
            "blue_neighbours", seed=(42, k), population="wide", variant="star_beside"
        )
        assert len(scene.points) == 1 and scene.variant == "star_beside"


@pytest.mark.parametrize(
    ("variant", "feature"),
    [("tidal_tails", TidalArc), ("shells", GaussianRing), ("bridge", TidalArc)],
)
def test_mergers_carry_their_tidal_features(variant: str, feature: type) -> None:
    for k in range(6):
        scene = draw_scene("merger", seed=(43, k), population="wide", variant=variant)
        assert any(isinstance(c.profile, feature) for c in scene.components)


def test_chance_alignments_pair_a_foreground_and_a_background_galaxy() -> None:
    distances = []
    for k in range(30):
        drawn = draw_wide_group(_ctx(k, "chance_alignment"))
        d = 2.0 * (drawn.size - 0.5)  # size = d / 2 + 0.5 arcsec
        distances.append(d)
        centres = [
            math.hypot(c.profile.center_x, c.profile.center_y)
            for c in drawn.components
            if isinstance(c.profile, SersicEllipse)
        ]
        assert min(centres) == 0.0  # the foreground galaxy is the target
        assert any(abs(r - d) < 1e-9 for r in centres)  # the background galaxy's body
        back = [
            c
            for c in drawn.components
            if isinstance(c.profile, SersicEllipse)
            and abs(math.hypot(c.profile.center_x, c.profile.center_y) - d) < 1e-9
        ]
        assert all(c.in_catalog == (d < 1.5) for c in back)
    assert 0.2 <= min(distances) < 0.6 and 2.0 < max(distances) <= 2.5
