"""The SED families: colours where their published anchors put them, the Lyman forest, bands."""

from __future__ import annotations

import math

import pytest

from lensflow.errors import SimulationError
from lensflow.independent.seds import (
    REF_NM,
    SED,
    apparent_mag_ref,
    band_fluxes,
    colour,
    igm_magnitudes,
)
from lensflow.surveys import njy_to_ab, survey_profile

LAM = survey_profile("lsst").wavelength_nm


def _gr(sed: SED) -> float:
    return colour(sed, LAM["g"]) - colour(sed, LAM["r"])


def test_old_populations_have_the_colours_of_local_early_types() -> None:
    old = SED("old", 0.0, (1.45, 2.0))
    assert _gr(old) == pytest.approx(0.78, abs=0.03)
    assert colour(old, LAM["r"]) - colour(old, LAM["i"]) == pytest.approx(0.40, abs=0.03)


def test_red_galaxies_redden_with_redshift_through_the_break() -> None:
    colours = [_gr(SED("old", z, (1.45, 2.0))) for z in (0.05, 0.2, 0.4)]
    assert colours == sorted(colours)
    assert colours[-1] == pytest.approx(1.8, abs=0.15)  # LRG tracks near z 0.4


def test_star_forming_galaxies_are_blue_and_drop_out_behind_the_forest() -> None:
    sed2, sed4 = (
        SED("star_forming", 2.0, (-2.0, 1.0, 1.0)),
        SED("star_forming", 4.0, (-2.0, 1.0, 1.0)),
    )
    assert abs(_gr(sed2)) < 0.1  # flat f_nu in the UV (beta_uv = -2)
    assert _gr(sed4) > _gr(sed2) + 0.5
    assert igm_magnitudes(400.0, 4.0) == math.inf  # below the Lyman limit at z = 4
    assert igm_magnitudes(700.0, 4.0) == 0.0


def test_a_quasar_is_the_power_law_it_is_given() -> None:
    quasar = SED("quasar", 0.5, (-0.44,))
    expected = -2.5 * 0.44 * math.log10(LAM["g"] / LAM["r"])  # f_nu ~ nu^-0.44 ~ lambda^0.44
    assert _gr(quasar) == pytest.approx(expected)


def test_hot_stars_are_bluer_than_cool_ones() -> None:
    assert _gr(SED("star", 0.0, (9000.0,))) < 0.1 < _gr(SED("star", 0.0, (3500.0,)))


def test_fluxes_are_normalised_at_the_reference_wavelength() -> None:
    sed = SED("old", 0.3, (1.4, 2.0))
    fluxes = band_fluxes(sed, 21.0, {"ref": REF_NM, **LAM})
    assert njy_to_ab(fluxes["ref"]) == pytest.approx(21.0)
    assert fluxes["i"] > fluxes["r"] > fluxes["g"]


def test_apparent_magnitudes_add_the_distance_modulus_and_k_correction() -> None:
    from astropy.cosmology import FlatLambdaCDM

    cosmo = FlatLambdaCDM(H0=70, Om0=0.3, Tcmb0=0)
    flat = SED("quasar", 0.5, (0.0,))  # flat f_nu: K = -2.5 log10(1 + z)
    expected = -21.0 + cosmo.distmod(0.5).value - 2.5 * math.log10(1.5)
    assert apparent_mag_ref(-21.0, flat) == pytest.approx(expected, abs=0.01)


def test_an_unknown_family_is_refused() -> None:
    with pytest.raises(SimulationError, match="unknown SED family 'dusty'"):
        SED("dusty", 0.1, ())
