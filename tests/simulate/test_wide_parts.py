"""Parts of the wide population: variants, red galaxies' two components, irregular sources."""

from __future__ import annotations

import math

import numpy as np
import pytest
from frozendict import frozendict

from lensflow.errors import SimulationError
from lensflow.simulate.draw_base import DrawContext
from lensflow.simulate.light import GaussianClumps
from lensflow.simulate.scene import DEFAULT_CRITERIA
from lensflow.simulate.sersic import SersicEllipse
from lensflow.simulate.wide_parts import (
    IRREGULAR_SOURCE,
    irregular_source,
    pick_variant,
    quasar_colours,
    red_two_components,
)
from lensflow.surveys import survey_profile


def _ctx(seed: int, variant: str | None = None) -> DrawContext:
    survey = survey_profile()
    seeing = frozendict({b: 1.0 for b in survey.catalog_bands})
    rng = np.random.default_rng(seed)
    return DrawContext(
        rng, survey, None, DEFAULT_CRITERIA, seeing, "moffat", 0.03, -0.05, variant=variant
    )


def test_variants_are_drawn_with_their_chances_or_as_asked() -> None:
    ctx = _ctx(1)
    picks = [pick_variant(ctx, {"a": 0.8, "b": 0.2}) for _ in range(4000)]
    assert picks.count("b") / 4000 == pytest.approx(0.2, abs=0.02)
    assert pick_variant(_ctx(1, "b"), {"a": 0.8, "b": 0.2}) == "b"
    with pytest.raises(SimulationError, match="unknown variant 'c'"):
        pick_variant(_ctx(1, "c"), {"a": 0.8, "b": 0.2})


def test_red_galaxy_components_share_the_flux_and_the_inner_one_is_redder() -> None:
    for seed in range(20):
        comps, params = red_two_components(
            _ctx(seed), flux_r=1000.0, r_e=1.0, q=0.8, phi=0.3, z=0.4
        )
        inner, outer = comps
        assert isinstance(inner.profile, SersicEllipse) and isinstance(outer.profile, SersicEllipse)
        assert inner.profile.r_sersic < outer.profile.r_sersic
        assert inner.profile.n_sersic == outer.profile.n_sersic == params["n_sersic"]
        assert inner.flux["r"] + outer.flux["r"] == pytest.approx(1000.0)
        assert outer.flux["r"] / 1000.0 == pytest.approx(params["light_outer_share"])
        colour = [-2.5 * math.log10(c.flux["g"] / c.flux["r"]) for c in comps]
        assert colour[0] - colour[1] == pytest.approx(params["colour_gradient_gr"])
        assert colour[0] > colour[1]


def test_irregular_sources_have_clumps_of_varied_number_size_and_colour() -> None:
    counts, sigmas, groups_of_two_colours = [], [], 0
    for seed in range(200):
        parts = irregular_source(_ctx(seed), 0.2, 0.1, z=1.5)
        assert sum(parts.shares) == pytest.approx(1.0)
        groups = [p for p in parts.profiles if isinstance(p, GaussianClumps)]
        counts.append(sum(len(g.x) for g in groups))
        sigmas += [s for g in groups for s in g.sigma]
        assert parts.params["source_n_clumps"] == counts[-1]
        assert parts.params["source_clump_groups"] == len(groups)
        colours = {parts.colours[k] for k, p in enumerate(parts.profiles) if p in groups}
        groups_of_two_colours += len(colours) >= 2
        flux = sum(c.flux["r"] for c in parts.components(500.0, lensed=True))
        assert flux == pytest.approx(500.0)
    lo, hi = IRREGULAR_SOURCE.n_clumps
    assert min(counts) == lo and max(counts) == hi - 1
    assert min(sigmas) < 0.02 and max(sigmas) > 0.1
    assert groups_of_two_colours > 50


def test_quasar_colours_follow_the_redshift_relation() -> None:
    rng = np.random.default_rng(0)
    gr_low = np.mean([quasar_colours(rng, 1.5)[0] for _ in range(500)])
    gr_high = np.mean([quasar_colours(rng, 3.0)[0] for _ in range(500)])
    assert gr_low == pytest.approx(0.2, abs=0.02) and gr_high == pytest.approx(0.5, abs=0.02)
