"""Colours of the check set: simple spectral energy distributions evaluated at each band.

An SED is f_nu against rest-frame wavelength, written in AB magnitudes up to a constant:
m(lambda) = -2.5 log10 f_nu. A band's flux is the SED at the band's effective wavelength (the
survey profile's `wavelength_nm`) shifted to the rest frame, so any profile whose bands lie in
WAVELENGTH_RANGE_NM can be rendered. Magnitudes of components are given at REF_NM (observed).

The four families (x = ln(lambda_rest / 400 nm)):
- "old" (early-type galaxies): m = -1.0857 (4.10 x - 2.04 x^2), plus for x < 0 a break step
  2.5 log10(D) and a steeper UV fall -1.0857 a_uv x. The quadratic reproduces the z = 0
  colours of SDSS early-types (g-r 0.78, r-i 0.40; Blanton et al. 2003, AJ 125, 2348) and
  flattens near 1 micron; a_uv ~ 2; the broadband 4000 A break D ~ 1.45 is smaller than the narrow
  Dn4000 ~ 1.8-2.0 of old populations (Balogh et al. 1999, ApJ 527, 54; Kauffmann et al.
  2003, MNRAS 341, 33). With it, g-r of a red galaxy rises to ~1.7-1.8 at z ~ 0.4, as the LRG
  colour tracks (Eisenstein et al. 2001, AJ 122, 2267).
- "star_forming": f_lambda ~ lambda^beta_uv below 400 nm (f_nu slope beta_uv + 2), beta_uv ~
  -1.8 (Bouwens et al. 2014, ApJ 793, 115), a weak break D, and f_nu ~ lambda^s_opt above.
- "quasar": f_nu ~ nu^-0.44 (the SDSS composite, Vanden Berk et al. 2001, AJ 122, 549).
- "star": a black body of temperature T (Planck's law); stars sit at z = 0.
Hydrogen in the intergalactic medium absorbs blueward of each Lyman line j (alpha to delta),
tau_j = A_j (lambda_obs / lambda_j)^3.46 (Madau 1995, ApJ 441, 18), and everything below the
Lyman limit (91.2 nm rest). A band is taken at its effective wavelength only, which
understates the dropout of a band that straddles a break (g at z ~ 4).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np

from lensflow.errors import SimulationError
from lensflow.independent.cosmology import distance_modulus
from lensflow.surveys import Survey, ab_to_njy

REF_NM = 620.0
"""Observed wavelength (nm) at which the magnitudes of components are given."""

WAVELENGTH_RANGE_NM: tuple[float, float] = (300.0, 1100.0)
"""Observed wavelengths the SED families are written for; bands outside cannot be rendered."""

LOG10_E = 2.5 / math.log(10.0)  # 1.0857: magnitudes per e-fold of flux
OLD_A, OLD_B = 4.10, 2.04
"""The log-quadratic continuum of the "old" family (fitted to the z = 0 colours above)."""
LYMAN_LIMIT_NM = 91.2
LYMAN_SERIES: tuple[tuple[float, float], ...] = (
    (121.6, 0.0036),
    (102.6, 0.0017),
    (97.3, 0.0011846),
    (95.0, 0.0009410),
)
"""Lyman alpha to delta (rest nm) and their forest optical-depth coefficients (Madau 1995)."""
H_C_OVER_K_NM_K = 1.438777e7  # h c / k_B in nm K


@dataclass(frozen=True)
class SED:
    """A spectral energy distribution: its family (see the module docstring), its redshift and
    its family's parameters (old: d_break, a_uv; star_forming: beta_uv, s_opt, d_break; quasar:
    alpha_nu; star: temperature_k)."""

    family: str
    z: float
    params: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise SimulationError(f"unknown SED family {self.family!r}; known {sorted(FAMILIES)}")


def _old(lam: float, d_break: float, a_uv: float) -> float:
    x = math.log(lam / 400.0)
    mag = -LOG10_E * (OLD_A * x - OLD_B * x * x)
    if x < 0.0:
        mag += 2.5 * math.log10(d_break) - LOG10_E * a_uv * x
    return mag


def _star_forming(lam: float, beta_uv: float, s_opt: float, d_break: float) -> float:
    x = math.log(lam / 400.0)
    if x >= 0.0:
        return -LOG10_E * s_opt * x
    return -LOG10_E * (beta_uv + 2.0) * x + 2.5 * math.log10(d_break)


def _quasar(lam: float, alpha_nu: float) -> float:
    return LOG10_E * alpha_nu * math.log(lam / 400.0)


def _star(lam: float, temperature_k: float) -> float:
    ratio = H_C_OVER_K_NM_K / (lam * temperature_k)
    return -2.5 * (-3.0 * math.log10(lam) - math.log10(math.expm1(ratio)))


FAMILIES: dict[str, Callable[..., float]] = {
    "old": _old,
    "star_forming": _star_forming,
    "quasar": _quasar,
    "star": _star,
}
"""Each family's rest-frame magnitude law m(lambda_nm, *params), up to a constant."""


def igm_magnitudes(lam_obs: float, z: float) -> float:
    """Extinction (mag) by intergalactic hydrogen at observed wavelength lam_obs (nm)."""
    lam_rest = lam_obs / (1.0 + z)
    if lam_rest < LYMAN_LIMIT_NM:
        return math.inf
    tau = sum(a * (lam_obs / line) ** 3.46 for line, a in LYMAN_SERIES if lam_rest < line)
    return float(LOG10_E * tau)


def observed_magnitude(sed: SED, lam_obs: float) -> float:
    """The SED's AB magnitude (up to its constant) at observed wavelength lam_obs (nm)."""
    rest = FAMILIES[sed.family](lam_obs / (1.0 + sed.z), *sed.params)
    return rest + igm_magnitudes(lam_obs, sed.z)


def colour(sed: SED, lam_obs: float) -> float:
    """m(lam_obs) - m(REF_NM) of the SED (observed frame), mag."""
    return observed_magnitude(sed, lam_obs) - observed_magnitude(sed, REF_NM)


def band_fluxes(sed: SED, mag_ref: float, wavelengths: Mapping[str, float]) -> dict[str, float]:
    """Flux (nJy) in each band (name -> effective wavelength, nm) of an SED of AB magnitude
    mag_ref at REF_NM."""
    out = {}
    for band, lam in wavelengths.items():
        mag = mag_ref + colour(sed, lam)
        out[band] = 0.0 if math.isinf(mag) else ab_to_njy(mag)
    return out


def apparent_mag_ref(absolute_mag: float, sed: SED) -> float:
    """AB magnitude at REF_NM (observed) of a galaxy of rest-frame absolute magnitude
    absolute_mag at REF_NM: distance modulus plus the K-correction of its own SED."""
    z = sed.z
    k_correction = -2.5 * math.log10(1.0 + z) + (
        observed_magnitude(sed, REF_NM) - FAMILIES[sed.family](REF_NM, *sed.params)
    )
    return absolute_mag + distance_modulus(z) + k_correction


def check_bands(survey: Survey) -> None:
    """Refuse a profile with an image or catalog band the SED families do not cover."""
    low, high = WAVELENGTH_RANGE_NM
    outside = {
        b: survey.wavelength_nm[b]
        for b in (*survey.bands, *survey.catalog_bands)
        if not low <= survey.wavelength_nm[b] <= high
    }
    if outside:
        raise SimulationError(
            f"survey {survey.name!r}: the check set renders bands at {low:g}-{high:g} nm only; "
            f"{', '.join(f'{b} ({v:g} nm)' for b, v in outside.items())} lie outside: use a "
            "profile of optical bands"
        )


def red_sed(rng: np.random.Generator, z: float, *, bluer: float = 0.0) -> SED:
    """An old population at z; bluer > 0 weakens the break and the UV fall (outer envelope)."""
    d_break = float(np.clip(rng.normal(1.45, 0.07) - 0.3 * bluer, 1.1, 2.0))
    a_uv = float(np.clip(rng.normal(2.0, 0.25) - 2.0 * bluer, 0.0, 3.0))
    return SED("old", z, (d_break, a_uv))


def blue_sed(rng: np.random.Generator, z: float, *, bluer: float = 0.0) -> SED:
    """A star-forming population at z; bluer > 0 steepens the UV slope (star-forming knots)."""
    beta_uv = float(np.clip(rng.normal(-1.8, 0.35) - bluer, -2.8, -0.5))
    s_opt = float(np.clip(rng.normal(1.1, 0.3) - bluer, 0.0, 2.5))
    d_break = float(rng.uniform(1.0, 1.3))
    return SED("star_forming", z, (beta_uv, s_opt, d_break))
