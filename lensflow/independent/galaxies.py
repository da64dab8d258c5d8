"""Galaxies of the check set: early-type (bulge + envelope), star-forming discs, the faint field.

Sizes in arcsec (from kpc at the galaxy's redshift), magnitudes AB at REF_NM (observed).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lensflow.independent.cosmology import kpc_to_arcsec
from lensflow.independent.population import Light, count_law, rayleigh_q, sersic_light
from lensflow.independent.seds import (
    FAMILIES,
    REF_NM,
    apparent_mag_ref,
    blue_sed,
    red_sed,
)
from lensflow.surveys import Survey


@dataclass(frozen=True)
class RedGalaxyPrior:
    """Light of an early-type galaxy of velocity dispersion sigma_v (km/s) at redshift z.

    Luminosity: L / L*_B = (sigma_v / 161 km/s)^2.32 (the early-type L-sigma scaling of Choi,
    Park & Vogeley 2007, ApJ 658, 884), M*_B = -19.31 - 1.5 z (the red sequence's evolving
    characteristic magnitude, Bell et al. 2004, ApJ 608, 752), scatter mag_scatter, moved from
    B (445 nm) to REF_NM by the galaxy's own SED. Size: log10(R_e / kpc) = -0.26 M - 5.06
    (early types, Shen et al. 2003, MNRAS 343, 978) with 0.25 in ln R_e, times ((1 + z) /
    1.1)^-1.48 (van der Wel et al. 2014, ApJ 788, 28). Two concentric Sersics: a de Vaucouleurs
    bulge of radius bulge_r R_e and an exponential envelope of radius envelope_r R_e, the
    envelope bluer (a colour gradient, outskirts younger and poorer in metals; La Barbera et
    al. 2010, MNRAS 408, 1313).
    """

    sigma_star: float = 161.0
    l_sigma_slope: float = 2.32
    m_star_b: float = -19.31
    evolution_per_z: float = 1.5
    b_band_nm: float = 445.0
    mag_scatter: float = 0.3
    size_a: float = 0.65
    size_b: float = -5.06
    size_scatter_ln: float = 0.25
    size_evolution: float = -1.48
    bulge_share: tuple[float, float] = (0.5, 0.8)
    bulge_r: float = 0.55
    envelope_r: float = 1.6
    envelope_bluer: float = 0.25
    r_e_range: tuple[float, float] = (0.25, 4.0)


RED = RedGalaxyPrior()


def red_galaxy(
    rng: np.random.Generator,
    *,
    sigma_v: float,
    z: float,
    q: float,
    phi: float,
    center: tuple[float, float],
    prior: RedGalaxyPrior = RED,
    central: bool = True,
) -> tuple[list[Light], dict[str, float]]:
    """Bulge and envelope of an early-type galaxy; also its r-like absolute magnitude, R_e (")."""
    m_star = prior.m_star_b - prior.evolution_per_z * z
    absolute_b = (
        m_star
        - 2.5 * prior.l_sigma_slope * math.log10(sigma_v / prior.sigma_star)
        + rng.normal(0.0, prior.mag_scatter)
    )
    bulge_sed = red_sed(rng, z)
    envelope_sed = red_sed(rng, z, bluer=prior.envelope_bluer)
    rest = FAMILIES[bulge_sed.family]
    absolute = absolute_b - (
        rest(prior.b_band_nm, *bulge_sed.params) - rest(REF_NM, *bulge_sed.params)
    )
    r_kpc = 10.0 ** (-0.4 * prior.size_a * absolute + prior.size_b) * math.exp(
        rng.normal(0.0, prior.size_scatter_ln)
    )
    r_kpc *= ((1.0 + z) / 1.1) ** prior.size_evolution
    r_e = float(np.clip(kpc_to_arcsec(r_kpc, z), *prior.r_e_range))
    share = float(rng.uniform(*prior.bulge_share))
    total = apparent_mag_ref(absolute, bulge_sed)
    q_env = min(1.0, q + 0.1)
    lights = [
        sersic_light(
            prior.bulge_r * r_e,
            4.0,
            q,
            phi,
            center,
            sed=bulge_sed,
            mag_ref=total - 2.5 * math.log10(share),
            central=central,
        ),
        sersic_light(
            prior.envelope_r * r_e,
            1.0,
            q_env,
            phi,
            center,
            sed=envelope_sed,
            mag_ref=total - 2.5 * math.log10(1.0 - share),
            central=central,
        ),
    ]
    return lights, {"absolute_mag": absolute, "r_e": r_e, "mag_ref": total}


def star_forming_galaxy(
    rng: np.random.Generator,
    *,
    z: float,
    mag_ref: float,
    center: tuple[float, float],
    lensed: bool = False,
    central: bool = True,
    n_range: tuple[float, float] = (0.5, 1.5),
) -> Light:
    """A star-forming disc-like galaxy: size from its luminosity and redshift.

    R_e = 6.9 kpc (1 + z)^-1.2 (L / L*)^0.27 with 0.2 dex scatter, L* at M = -21 (Shibuya et
    al. 2015, ApJS 219, 15); Sersic n in n_range; 1 - q Rayleigh of scale 0.3 (Collett 2015).
    """
    sed = blue_sed(rng, z)
    absolute = mag_ref - apparent_mag_ref(0.0, sed)
    r_kpc = 6.9 * (1.0 + z) ** -1.2 * 10.0 ** (-0.4 * 0.27 * (absolute + 21.0))
    r_kpc *= 10.0 ** rng.normal(0.0, 0.2)
    r_e = float(np.clip(kpc_to_arcsec(r_kpc, z), 0.04, 2.0))
    n = float(rng.uniform(*n_range))
    q = rayleigh_q(rng, 0.3)
    phi = float(rng.uniform(0.0, math.pi))
    return sersic_light(
        r_e, n, q, phi, center, sed=sed, mag_ref=mag_ref, lensed=lensed, central=central
    )


# --- faint field galaxies ----------------------------------------------------------------------


@dataclass(frozen=True)
class FieldPrior:
    """Unrelated faint galaxies anywhere in a cutout: dN/dm = 2e5 10^(0.33 (m - 26)) per deg^2
    per mag at 20-27 (faint optical counts, Metcalfe et al. 2001, MNRAS 323, 795), 30 % red
    (z 0.2-1.2) and 70 % star-forming (z 0.2-3)."""

    density_at_26: float = 2.0e5
    slope: float = 0.33
    mags: tuple[float, float] = (20.0, 27.0)
    red_share: float = 0.3


FIELD = FieldPrior()


def field_galaxies(
    rng: np.random.Generator, survey: Survey, prior: FieldPrior = FIELD
) -> list[Light]:
    """The faint galaxies sprinkled in a cutout (not part of its main object)."""
    side_deg = survey.cutout_size * survey.pixel_scale_arcsec / 3600.0
    low, high = prior.mags
    k = prior.slope * math.log(10.0)
    per_deg2 = prior.density_at_26 / k * (math.exp(k * (high - 26.0)) - math.exp(k * (low - 26.0)))
    half = 0.5 * survey.cutout_size * survey.pixel_scale_arcsec
    lights = []
    for _ in range(int(rng.poisson(per_deg2 * side_deg**2))):
        mag = count_law(rng, low, high, prior.slope)
        center = (float(rng.uniform(-half, half)), float(rng.uniform(-half, half)))
        if rng.uniform() < prior.red_share:
            z = float(rng.uniform(0.2, 1.2))
            r_e = float(
                np.clip(
                    0.6 * 10.0 ** (-0.12 * (mag - 21.0)) * 10.0 ** rng.normal(0, 0.15), 0.05, 1.5
                )
            )
            sed = red_sed(rng, z)
            q, phi = rayleigh_q(rng, 0.25), float(rng.uniform(0.0, math.pi))
            lights.append(
                sersic_light(r_e, 3.0, q, phi, center, sed=sed, mag_ref=mag, central=False)
            )
        else:
            z = float(rng.uniform(0.2, 3.0))
            lights.append(star_forming_galaxy(rng, z=z, mag_ref=mag, center=center, central=False))
    return lights
