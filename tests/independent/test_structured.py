"""Rings, spirals, edge-on discs and mergers: their structure as drawn."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lensflow.independent.population import draw_seeing
from lensflow.independent.structured import (
    draw_edge_on_disc,
    draw_merger,
    draw_ring_galaxy,
    draw_spiral,
)
from lensflow.surveys import survey_profile

LSST = survey_profile("lsst")


def _q(kwargs: dict[str, float]) -> float:
    c = math.hypot(kwargs["e1"], kwargs["e2"])
    return (1 - c) / (1 + c)


def test_structured_galaxies_carry_their_grid_drawn_light() -> None:
    rng = np.random.default_rng(0)
    for drawer, n_lights in ((draw_ring_galaxy, 2), (draw_spiral, 3), (draw_merger, 3)):
        lights, points, _ = drawer(rng, LSST, draw_seeing(rng, LSST), (0.0, 0.0))
        assert len(lights) == n_lights and not points
        assert lights[-1].models == ("INTERPOL",)
        assert lights[-1].sed.family in ("star_forming", "old")


def test_edge_on_discs_are_thin_with_a_rounder_bulge() -> None:
    rng = np.random.default_rng(1)
    for _ in range(10):
        (disc, bulge), _, _ = draw_edge_on_disc(rng, LSST, draw_seeing(rng, LSST), (0.0, 0.0))
        assert _q(dict(disc.kwargs[0])) <= 0.2 + 1e-9 < _q(dict(bulge.kwargs[0]))


def test_merging_galaxies_are_apart_by_their_separation() -> None:
    rng = np.random.default_rng(2)
    for _ in range(10):
        lights, _, params = draw_merger(rng, LSST, draw_seeing(rng, LSST), (0.1, 0.0))
        a, b = lights[0].center, lights[1].center
        assert math.hypot(b[0] - a[0], b[1] - a[1]) == pytest.approx(params["separation"])
        assert 0.4 <= params["separation"] <= 3.0
