"""Field galaxies of the wide population follow the stated deep counts and size relation."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from frozendict import frozendict

from lensflow.simulate.draw_base import DrawContext
from lensflow.simulate.field_counts import (
    FIELD_COUNTS,
    counted_field_galaxies,
    cumulative_count,
    expected_count,
    half_light_radius,
    magnitude_range,
)
from lensflow.simulate.scene import DEFAULT_CRITERIA
from lensflow.surveys import njy_to_ab, survey_profile

N_CUTOUTS = 1500


def _draws(name: str, seed: int) -> tuple[list[int], list[tuple[float, float, float]]]:
    """Per cutout the number of field galaxies; per galaxy (i mag, half-light radius, n)."""
    survey = survey_profile(name)
    rng = np.random.default_rng(seed)
    seeing = frozendict({b: 1.0 for b in survey.catalog_bands})
    counts, galaxies = [], []
    for _ in range(N_CUTOUTS):
        ctx = DrawContext(rng, survey, None, DEFAULT_CRITERIA, seeing, "moffat", 0.0, 0.0)
        comps = counted_field_galaxies(ctx)
        counts.append(len(comps))
        for c in comps:
            assert not c.in_catalog
            galaxies.append((njy_to_ab(c.flux["i"]), c.profile.r_sersic, c.profile.n_sersic))
    return counts, galaxies


def test_the_counts_law_is_the_stated_one() -> None:
    # N(< 25) = 46 per arcmin^2, dN/dm = 0.31 ln(10) N: 1.18e5 per deg^2 per mag at i = 25
    assert cumulative_count(25.0) == pytest.approx(46.0)
    assert cumulative_count(26.0) / cumulative_count(25.0) == pytest.approx(10**0.31)
    slope = 0.31 * math.log(10.0) * cumulative_count(25.0) * 3600.0
    assert slope == pytest.approx(1.18e5, rel=0.01)
    lsst = survey_profile("lsst")
    lo, hi = magnitude_range(lsst)
    assert lo == FIELD_COUNTS.bright and hi == pytest.approx(lsst.point_depth("i") + 2.0)


@pytest.mark.parametrize("name", ["lsst", "legacy"])
def test_counts_per_cutout_match_dn_dm_within_poisson_errors(name: str) -> None:
    survey = survey_profile(name)
    counts, galaxies = _draws(name, seed=11)
    lo, hi = magnitude_range(survey)
    mags = np.array([g[0] for g in galaxies])
    assert mags.min() >= lo - 1e-9 and mags.max() <= hi + 1e-9
    edges = [*np.arange(lo, hi, 1.0).tolist(), hi]
    observed, _ = np.histogram(mags, bins=edges)
    expected = np.array(
        [N_CUTOUTS * expected_count(survey, a, b) for a, b in itertools.pairwise(edges)]
    )
    pulls = (observed - expected) / np.sqrt(expected)
    assert np.all(np.abs(pulls) < 4.0), (observed, expected)
    chi2 = float((pulls**2).sum())
    assert chi2 < len(edges) - 1 + 4.0 * math.sqrt(2.0 * (len(edges) - 1))
    # Poisson per cutout: variance equals the mean
    mean = expected.sum() / N_CUTOUTS
    assert np.mean(counts) == pytest.approx(mean, abs=4.0 * math.sqrt(mean / N_CUTOUTS))
    assert np.var(counts) == pytest.approx(mean, rel=0.15)


def test_sizes_follow_the_size_magnitude_relation() -> None:
    _, galaxies = _draws("lsst", seed=12)
    arr = np.array(galaxies)
    blue = arr[arr[:, 2] <= FIELD_COUNTS.blue_n_sersic[1]]
    for lo in (22.0, 24.0, 26.0):
        sel = blue[(blue[:, 0] >= lo) & (blue[:, 0] < lo + 1.0)]
        mid = np.median(sel[:, 0])
        ratio = np.log10(sel[:, 1] / np.array([half_light_radius(m) for m in sel[:, 0]]))
        assert len(sel) > 100
        assert np.median(ratio) == pytest.approx(0.0, abs=0.03), mid
        assert np.std(ratio) == pytest.approx(FIELD_COUNTS.size_scatter_dex, abs=0.03)
    assert half_light_radius(23.0) == pytest.approx(1.678 * math.exp(-1.145))
