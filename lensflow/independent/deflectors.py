"""Deflectors of the check set: galaxy-scale lenses as they occur on the sky (EPL + shear mass,
early-type light), drawn until their Einstein radius falls in a wanted range."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lensflow.errors import SimulationError
from lensflow.independent.cosmology import einstein_radius
from lensflow.independent.galaxies import red_galaxy
from lensflow.independent.population import Deflector, Light, ellipticity, rayleigh_q


@dataclass(frozen=True)
class DeflectorPrior:
    """The galaxy-scale deflector population, drawn as lenses occur on the sky.

    sigma_v: the SDSS velocity dispersion function of early types (Choi, Park & Vogeley 2007,
    ApJ 658, 884: sigma* 161 km/s, alpha 2.32, beta 2.67) weighted by the lensing cross-section
    ~ sigma^4 (Turner, Ostriker & Gott 1984, ApJ 284, 1), so (sigma / sigma*)^beta is Gamma
    distributed with shape (alpha + 4) / beta. (z_lens, z_source) on a grid, weighted by the
    comoving volume at z_lens, the cross-section's (D_ls / D_s)^2 and a source redshift law
    n(z) ~ z^2 exp(-(z / 1.0)^1.5) (Smail et al. 1994, MNRAS 270, 245). Mass slope ~ N(2, 0.1)
    (SLACS: Auger et al. 2010, ApJ 724, 511); flattening 1 - q Rayleigh of scale 0.378 -
    5.72e-4 sigma_v (Collett 2015); external shear components N(0, 0.05) (Keeton, Kochanek &
    Seljak 1997, ApJ 482, 604); the light's angle follows the mass within 8 deg (Bolton et al.
    2008, ApJ 682, 964), its axis ratio within 0.07.
    """

    sigma_star: float = 161.0
    vdf_alpha: float = 2.32
    vdf_beta: float = 2.67
    sigma_range: tuple[float, float] = (120.0, 420.0)
    z_lens: tuple[float, float] = (0.2, 0.9)
    z_source: tuple[float, float] = (1.0, 4.0)
    source_z0: float = 1.0
    slope: tuple[float, float] = (2.0, 0.1)
    slope_range: tuple[float, float] = (1.7, 2.3)
    shear_sigma: float = 0.05
    light_phi_deg: float = 8.0
    light_q_scatter: float = 0.07


DEFLECTORS = DeflectorPrior()


def _redshift_grid(prior: DeflectorPrior) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from lensflow.independent.cosmology import comoving_volume_element, lensing_efficiency

    z_l = np.linspace(*prior.z_lens, 71)
    z_s = np.linspace(*prior.z_source, 121)
    zl, zs = np.meshgrid(z_l, z_s, indexing="ij")
    weight = comoving_volume_element(zl) * lensing_efficiency(zl, zs) ** 2
    weight *= zs**2 * np.exp(-((zs / prior.source_z0) ** 1.5))
    return z_l, z_s, (weight / weight.sum()).ravel()


_GRIDS: dict[DeflectorPrior, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}


def draw_redshifts(
    rng: np.random.Generator, prior: DeflectorPrior = DEFLECTORS
) -> tuple[float, float]:
    """(z_lens, z_source) of a lens, from the weighted grid, uniform within a cell."""
    if prior not in _GRIDS:
        _GRIDS[prior] = _redshift_grid(prior)
    z_l, z_s, p = _GRIDS[prior]
    cell = int(rng.choice(p.size, p=p))
    i, j = divmod(cell, z_s.size)
    dl, ds = z_l[1] - z_l[0], z_s[1] - z_s[0]
    zl = float(np.clip(z_l[i] + rng.uniform(-0.5, 0.5) * dl, *prior.z_lens))
    zs = float(np.clip(z_s[j] + rng.uniform(-0.5, 0.5) * ds, *prior.z_source))
    return zl, zs


def draw_sigma(rng: np.random.Generator, prior: DeflectorPrior = DEFLECTORS) -> float:
    """Velocity dispersion (km/s) from the cross-section-weighted VDF, within sigma_range."""
    shape = (prior.vdf_alpha + 4.0) / prior.vdf_beta
    for _ in range(1000):
        sigma = float(prior.sigma_star * float(rng.gamma(shape)) ** (1.0 / prior.vdf_beta))
        if prior.sigma_range[0] <= sigma <= prior.sigma_range[1]:
            return sigma
    return prior.sigma_range[0]


def draw_deflector(
    rng: np.random.Generator,
    *,
    center: tuple[float, float],
    theta_e_range: tuple[float, float],
    prior: DeflectorPrior = DEFLECTORS,
    max_draws: int = 1000,
) -> tuple[Deflector, list[Light], dict[str, float]]:
    """A deflector with theta_E in theta_e_range, its light and parameters (sigma_v, z's, ...)."""
    for _ in range(max_draws):
        z_l, z_s = draw_redshifts(rng, prior)
        sigma_v = draw_sigma(rng, prior)
        theta_e = einstein_radius(sigma_v, z_l, z_s)
        if theta_e_range[0] <= theta_e <= theta_e_range[1]:
            break
    else:
        raise SimulationError(f"no deflector with theta_E in {theta_e_range} in {max_draws} draws")
    gamma = float(np.clip(rng.normal(*prior.slope), *prior.slope_range))
    q = rayleigh_q(rng, 0.378 - 5.72e-4 * sigma_v)
    phi = float(rng.uniform(0.0, math.pi))
    e1, e2 = ellipticity(q, phi)
    g1, g2 = (float(v) for v in rng.normal(0.0, prior.shear_sigma, size=2))
    deflector = Deflector(theta_e, gamma, e1, e2, center[0], center[1], g1, g2)
    q_light = float(np.clip(q + rng.normal(0.0, prior.light_q_scatter), 0.3, 1.0))
    phi_light = phi + math.radians(float(rng.normal(0.0, prior.light_phi_deg)))
    lights, info = red_galaxy(rng, sigma_v=sigma_v, z=z_l, q=q_light, phi=phi_light, center=center)
    params = {
        "theta_e": theta_e,
        "sigma_v": sigma_v,
        "z_lens": z_l,
        "z_source": z_s,
        "gamma_slope": gamma,
        "lens_q": q,
        "lens_phi": phi,
        "lens_e1": e1,
        "lens_e2": e2,
        "gamma_ext1": g1,
        "gamma_ext2": g2,
        "lens_x": center[0],
        "lens_y": center[1],
        "lens_r_e": info["r_e"],
        "lens_mag_ref": info["mag_ref"],
    }
    return deflector, lights, params
