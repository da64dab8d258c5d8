"""Early-type and star-forming galaxies, and the faint field, of the check set."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from lensflow.independent.galaxies import (
    FIELD,
    RED,
    field_galaxies,
    red_galaxy,
    star_forming_galaxy,
)
from lensflow.independent.seds import colour
from lensflow.surveys import survey_profile

LSST = survey_profile("lsst")


def _mean_mag(sigma: float) -> float:
    rng = np.random.default_rng(2)
    return float(
        np.mean(
            [
                red_galaxy(rng, sigma_v=sigma, z=0.4, q=0.8, phi=0.0, center=(0, 0))[1]["mag_ref"]
                for _ in range(300)
            ]
        )
    )


def test_red_galaxies_follow_the_l_sigma_relation() -> None:
    expected = 2.5 * RED.l_sigma_slope * math.log10(300.0 / 180.0)
    assert _mean_mag(180.0) - _mean_mag(300.0) == pytest.approx(expected, abs=0.15)


def test_a_red_galaxy_is_a_bulge_in_a_bluer_envelope() -> None:
    rng = np.random.default_rng(3)
    bulge_gr, envelope_gr = [], []
    for _ in range(100):
        (bulge, envelope), info = red_galaxy(rng, sigma_v=250, z=0.3, q=0.7, phi=1.0, center=(0, 0))
        assert bulge.kwargs[0]["n_sersic"] == 4.0 and envelope.kwargs[0]["n_sersic"] == 1.0
        assert envelope.size > bulge.size
        assert RED.r_e_range[0] <= info["r_e"] <= RED.r_e_range[1]
        for light, out in ((bulge, bulge_gr), (envelope, envelope_gr)):
            out.append(colour(light.sed, 482.0) - colour(light.sed, 622.0))
    assert np.mean(envelope_gr) < np.mean(bulge_gr)


def test_star_forming_galaxies_shrink_with_redshift() -> None:
    rng = np.random.default_rng(4)
    low = [star_forming_galaxy(rng, z=1.0, mag_ref=23.0, center=(0, 0)).size for _ in range(200)]
    high = [star_forming_galaxy(rng, z=3.0, mag_ref=23.0, center=(0, 0)).size for _ in range(200)]
    assert np.median(high) < np.median(low)


def test_the_field_has_the_galaxy_counts_it_states() -> None:
    rng = np.random.default_rng(5)
    counts = [len(field_galaxies(rng, LSST)) for _ in range(150)]
    per_mag = lambda m: FIELD.density_at_26 * 10 ** (FIELD.slope * (m - 26.0))
    per_deg2, _ = integrate.quad(per_mag, *FIELD.mags)
    side = LSST.cutout_size * LSST.pixel_scale_arcsec / 3600.0
    assert np.mean(counts) == pytest.approx(per_deg2 * side**2, rel=0.1)
    assert not any(light.central for light in field_galaxies(rng, LSST))
