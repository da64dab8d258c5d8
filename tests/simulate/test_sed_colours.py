"""SED colours: kcorrect's templates through speclite's filter curves, shipped in their wheels."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from lensflow.errors import SimulationError
from lensflow.simulate.sed_colours import (
    YOUNG,
    Z_GRID,
    band_flux_grid,
    filter_set,
    mix_colours,
    sed_blue_colours,
    sed_red_colours,
    speclite_band_fluxes,
    templates,
)
from lensflow.surveys import survey_profile

LSST = survey_profile("lsst")


def _colours(fluxes: np.ndarray) -> np.ndarray:
    return -2.5 * np.log10(fluxes[..., :-1] / fluxes[..., 1:])


@pytest.mark.parametrize("group", ["lsst2023", "hsc2017", "decam2014"])
@pytest.mark.parametrize("z", [0.0, 0.36, 1.1, 2.54])
def test_the_grid_matches_speclites_own_integration(group: str, z: float) -> None:
    k = round(z / 0.02)
    ours = _colours(band_flux_grid(group)[k])
    theirs = _colours(speclite_band_fluxes(group, float(Z_GRID[k])))
    assert np.abs(ours - theirs).max() < 1e-3


def test_templates_are_the_shipped_six_at_unit_flux_at_550_nm() -> None:
    wave, flux = templates()
    assert flux.shape == (6, wave.size) and wave.min() < 1000.0 and wave.max() > 2e4
    f_nu = np.array([np.interp(5500.0, wave, f) for f in flux]) * 5500.0**2
    assert np.allclose(f_nu, 1.0)
    assert [filter_set(survey_profile(n)) for n in ("lsst", "hsc", "legacy")] == [
        "lsst2023",
        "hsc2017",
        "decam2014",
    ]


def test_red_galaxies_have_early_type_colours_and_redden_with_redshift() -> None:
    rng = np.random.default_rng(0)
    zs = (0.0, 0.2, 0.4, 0.6, 0.8)
    at = {z: np.mean([sed_red_colours(rng, z, LSST) for _ in range(50)], axis=0) for z in zs}
    # SDSS early types at z ~ 0: g - r 0.78, r - i 0.40 (Blanton et al. 2003, AJ 125, 2348)
    assert at[0.0][0] == pytest.approx(0.78, abs=0.1) and at[0.0][1] == pytest.approx(0.4, abs=0.1)
    # the 4000 A break crosses g-r up to z ~ 0.4, then r-i
    gr = [at[z][0] for z in zs[:3]]
    ri = [at[z][1] for z in zs[2:]]
    assert all(b > a for a, b in itertools.pairwise(gr))
    assert all(b > a for a, b in itertools.pairwise(ri))


def test_star_forming_galaxies_are_bluer_than_red_ones_at_every_redshift() -> None:
    rng = np.random.default_rng(1)
    for z in np.arange(0.0, 1.3, 0.1):
        red = np.mean([sed_red_colours(rng, float(z), LSST)[0] for _ in range(30)])
        blue = np.mean([sed_blue_colours(rng, float(z), LSST)[0] for _ in range(30)])
        assert blue < red - 0.4
    spread = np.std([sed_blue_colours(rng, 1.0, LSST)[0] for _ in range(200)])
    assert spread > 0.1


def test_mixes_are_light_weighted_and_young_is_the_youngest_template() -> None:
    weights = np.zeros(6)
    weights[YOUNG] = 1.0
    rng = np.random.default_rng(2)
    assert sed_blue_colours(rng, 0.7, LSST, young=1.0) == mix_colours(weights, 0.7, LSST)
    # halfway between grid redshifts the fluxes are interpolated linearly
    grid = band_flux_grid("lsst2023")
    mid = 0.5 * (grid[10, YOUNG] + grid[11, YOUNG])
    expected = tuple(_colours(mid).tolist())
    assert mix_colours(weights, 0.21, LSST) == pytest.approx(expected, abs=1e-9)
    with pytest.raises(SimulationError, match="0 <= z <= 4"):
        mix_colours(weights, 4.5, LSST)
