"""Distances and Einstein radii in a flat LambdaCDM cosmology (H0 70, Om0 0.3, no radiation)."""

from __future__ import annotations

import functools
import math

import numpy as np
from scipy import interpolate

from lensflow.errors import SimulationError

ARCSEC_PER_RAD = 180.0 / math.pi * 3600.0
SPEED_OF_LIGHT_KMS = 299_792.458
H0_KMS_MPC = 70.0
OMEGA_M = 0.3
_Z_TABLE_MAX = 10.0
"""Highest redshift of the comoving-distance table (astropy is called beyond it)."""


@functools.lru_cache(maxsize=1)
def _cosmology() -> object:
    """The astropy cosmology (imported on first use)."""
    from astropy.cosmology import FlatLambdaCDM

    return FlatLambdaCDM(H0=H0_KMS_MPC, Om0=OMEGA_M, Tcmb0=0.0)


@functools.lru_cache(maxsize=1)
def _comoving_spline() -> interpolate.CubicSpline:
    """Comoving distance (Mpc) for 0 <= z <= 10 from astropy, as a cubic spline (error < 1e-9)."""
    z = np.linspace(0.0, _Z_TABLE_MAX, 8001)
    cosmo = _cosmology()
    d = np.asarray(cosmo.comoving_distance(z).value)  # type: ignore[attr-defined]
    return interpolate.CubicSpline(z, d)


def comoving_distance(z: float) -> float:
    """Line-of-sight comoving distance in Mpc (flat LambdaCDM, H0 70, Om0 0.3, no radiation)."""
    if 0.0 <= z <= _Z_TABLE_MAX:
        return float(_comoving_spline()(z))
    cosmo = _cosmology()
    return float(cosmo.comoving_distance(z).value)  # type: ignore[attr-defined]


def angular_diameter_distances(z_lens: float, z_source: float) -> tuple[float, float, float]:
    """(D_l, D_s, D_ls) in Mpc, flat LambdaCDM H0 = 70, Om0 = 0.3, no radiation."""
    if not 0.0 <= z_lens < z_source:
        raise SimulationError(f"need 0 <= z_lens < z_source, got {z_lens}, {z_source}")
    dc_l = comoving_distance(z_lens)
    dc_s = comoving_distance(z_source)
    return dc_l / (1.0 + z_lens), dc_s / (1.0 + z_source), (dc_s - dc_l) / (1.0 + z_source)


def einstein_radius(sigma_v_kms: float, z_lens: float, z_source: float) -> float:
    """SIS Einstein radius in arcsec: 4 pi (sigma_v / c)^2 D_ls / D_s."""
    _, d_s, d_ls = angular_diameter_distances(z_lens, z_source)
    return 4.0 * math.pi * (sigma_v_kms / SPEED_OF_LIGHT_KMS) ** 2 * d_ls / d_s * ARCSEC_PER_RAD


def luminosity_distance(z: float) -> float:
    """Luminosity distance in Mpc (same cosmology)."""
    return comoving_distance(z) * (1.0 + z)
