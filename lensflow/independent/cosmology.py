"""Distances and Einstein radii of the check set: astropy's flat LambdaCDM and lenstronomy's SIS.

The cosmology is the reference's (shared/reference/README.md): H0 70 km/s/Mpc, Om0 0.3, no
radiation, no massive neutrinos. Einstein radii come from lenstronomy's `LensCosmo`
(theta_E = 4 pi (sigma_v / c)^2 D_ls / D_s); redshift weights of the population use tables of
astropy distances on a grid, interpolated.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np
import numpy.typing as npt

from lensflow.errors import SimulationError

FloatArray = npt.NDArray[np.float64]

H0_KMS_MPC = 70.0
OMEGA_M = 0.3
Z_GRID_MAX = 6.0
"""Highest redshift of the distance table (the set's objects lie below 4.5)."""


@functools.lru_cache(maxsize=1)
def cosmology() -> Any:
    """The astropy FlatLambdaCDM of the reference (H0 70, Om0 0.3, Tcmb0 0)."""
    from astropy.cosmology import FlatLambdaCDM

    return FlatLambdaCDM(H0=H0_KMS_MPC, Om0=OMEGA_M, Tcmb0=0.0)


@functools.lru_cache(maxsize=1)
def _table() -> tuple[FloatArray, FloatArray]:
    z = np.linspace(0.0, Z_GRID_MAX, 1201)
    d_c = np.asarray(cosmology().comoving_distance(z).to_value("Mpc"), dtype=np.float64)
    return z, d_c


def comoving_distance(z: float | FloatArray) -> FloatArray:
    """Line-of-sight comoving distance in Mpc (table of astropy values, linear interpolation)."""
    grid, d_c = _table()
    z_arr = np.asarray(z, dtype=np.float64)
    if np.any(z_arr < 0.0) or np.any(z_arr > Z_GRID_MAX):
        raise SimulationError(f"redshift outside 0..{Z_GRID_MAX}: {z}")
    return np.asarray(np.interp(z_arr, grid, d_c), dtype=np.float64)


def angular_diameter_distance(z: float | FloatArray) -> FloatArray:
    """Angular-diameter distance in Mpc."""
    return comoving_distance(z) / (1.0 + np.asarray(z, dtype=np.float64))


def luminosity_distance(z: float | FloatArray) -> FloatArray:
    """Luminosity distance in Mpc."""
    return comoving_distance(z) * (1.0 + np.asarray(z, dtype=np.float64))


def distance_modulus(z: float) -> float:
    """5 log10(D_L / 10 pc)."""
    return 5.0 * math.log10(float(luminosity_distance(z)) * 1e5)


def kpc_to_arcsec(size_kpc: float, z: float) -> float:
    """The angle in arcsec of a physical size in kpc at redshift z."""
    return size_kpc / (float(angular_diameter_distance(z)) * 1e3) * 180.0 / math.pi * 3600.0


def lensing_efficiency(z_lens: FloatArray, z_source: FloatArray) -> FloatArray:
    """D_ls / D_s for each pair (0 where the source is not behind the lens)."""
    d_l, d_s = comoving_distance(z_lens), comoving_distance(z_source)
    return np.asarray(np.clip((d_s - d_l) / d_s, 0.0, None), dtype=np.float64)


def comoving_volume_element(z: FloatArray) -> FloatArray:
    """dV_c / dz / dOmega in Mpc^3 per steradian (flat: D_C^2 c / H(z))."""
    z = np.asarray(z, dtype=np.float64)
    hubble = H0_KMS_MPC * np.sqrt(OMEGA_M * (1.0 + z) ** 3 + 1.0 - OMEGA_M)
    return np.asarray(comoving_distance(z) ** 2 * 299_792.458 / hubble, dtype=np.float64)


def einstein_radius(sigma_v: float, z_lens: float, z_source: float) -> float:
    """Einstein radius (arcsec) of an SIS of velocity dispersion sigma_v (km/s), by lenstronomy.

    lenstronomy.Cosmo.lens_cosmo.LensCosmo.sis_sigma_v2theta_E in the astropy cosmology above.
    """
    from lenstronomy.Cosmo.lens_cosmo import LensCosmo

    if not 0.0 < z_lens < z_source:
        raise SimulationError(f"need 0 < z_lens < z_source, got {z_lens}, {z_source}")
    lens_cosmo = LensCosmo(z_lens=z_lens, z_source=z_source, cosmo=cosmology())
    return float(lens_cosmo.sis_sigma_v2theta_E(sigma_v))
