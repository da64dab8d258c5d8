"""Lensed sources of the check set: star-forming galaxies (plain, clumpy or irregular) and
quasars with their hosts; the multiple images of a quasar from lenstronomy's lens-equation
solver."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from lensflow.independent.cosmology import kpc_to_arcsec
from lensflow.independent.population import Deflector, Light
from lensflow.independent.render import light_model
from lensflow.independent.seds import blue_sed


@dataclass(frozen=True)
class SourcePrior:
    """Lensed sources: a share of quasars (with host), else extended galaxies of three kinds.

    Extended: unlensed magnitude from counts of slope 0.3 (faint galaxy counts, Metcalfe et al.
    2001), placed uniformly in area within beta_max theta_E of the lens; plain Sersic, Sersic
    with star-forming clumps (1 + Poisson(2.5) Gaussian knots of 0.3-0.8 kpc holding 10-40 % of
    the light, bluer; clumpy galaxies at z 1-3, Guo et al. 2015, ApJ 800, 39) or Sersic plus
    random shapelets up to order 6 (irregular structure; Refregier 2003, MNRAS 338, 35).
    Quasars: point-source magnitude from counts of slope 0.3 at the faint end of the quasar
    counts (Richards et al. 2005, MNRAS 360, 839), within quasar_beta_max theta_E, a host
    galaxy 0-2 mag fainter.
    """

    quasar_share: float = 0.2
    mags: tuple[float, float] = (22.0, 26.5)
    slope: float = 0.3
    beta_max: float = 1.2
    kinds: tuple[float, float, float] = (0.2, 0.5, 0.3)  # plain, clumps, shapelets
    clump_kpc: tuple[float, float] = (0.3, 0.8)
    clump_share: tuple[float, float] = (0.1, 0.4)
    shapelet_order: int = 6
    quasar_mags: tuple[float, float] = (20.5, 24.5)
    quasar_beta_max: float = 0.9
    host_fainter: tuple[float, float] = (0.0, 2.0)


SOURCES = SourcePrior()

SOURCE_KINDS = ("plain", "clumps", "shapelets", "quasar")


def clumps(rng: np.random.Generator, base: Light, prior: SourcePrior) -> list[Light]:
    n = 1 + int(rng.poisson(2.5))
    share = float(rng.uniform(*prior.clump_share))
    parts = rng.dirichlet(np.ones(n)) * share
    sed = blue_sed(rng, base.sed.z, bluer=0.3)
    out = []
    for part in parts:
        sigma = kpc_to_arcsec(float(rng.uniform(*prior.clump_kpc)), base.sed.z) / 2.355
        cx = base.center[0] + float(rng.normal(0.0, base.size))
        cy = base.center[1] + float(rng.normal(0.0, base.size))
        kwargs = {"amp": 1.0, "sigma": sigma, "center_x": cx, "center_y": cy}
        mag = base.mag_ref - 2.5 * math.log10(part)
        out.append(Light(("GAUSSIAN",), (kwargs,), sed, mag, (cx, cy), 5 * sigma, sigma, True))
    return out


def shapelets(rng: np.random.Generator, base: Light, prior: SourcePrior) -> Light:
    order = prior.shapelet_order
    n1n2 = [(i - j, j) for i in range(order + 1) for j in range(i + 1)]
    coeffs = np.array([rng.normal() / (1.0 + a + b) for a, b in n1n2])
    scale = 0.6 * base.size
    cx, cy = base.center
    kw = {"amp": coeffs, "n_max": order, "beta": scale, "center_x": cx, "center_y": cy}
    axis = np.linspace(-2.5 * scale, 2.5 * scale, 41)
    xx, yy = np.meshgrid(axis + cx, axis + cy)
    shape = light_model(("SHAPELETS",)).surface_brightness(xx.ravel(), yy.ravel(), [kw])
    smooth = light_model(base.models).surface_brightness(xx.ravel(), yy.ravel(), list(base.kwargs))
    kw["amp"] = coeffs * float(rng.uniform(0.4, 1.2)) * np.max(smooth) / np.max(np.abs(shape))
    return replace(base, models=(*base.models, "SHAPELETS"), kwargs=(*base.kwargs, kw))


def image_positions(deflector: Deflector, x: float, y: float) -> tuple[np.ndarray, np.ndarray]:
    from lenstronomy.LensModel.lens_model import LensModel
    from lenstronomy.LensModel.Solver.lens_equation_solver import LensEquationSolver

    solver = LensEquationSolver(LensModel(list(Deflector.models)))
    xs, ys = solver.image_position_from_source(
        x,
        y,
        deflector.kwargs(),
        search_window=4.0 * deflector.theta_e,
        min_distance=deflector.theta_e / 40.0,
        precision_limit=1e-10,
        num_iter_max=100,
    )
    return np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64)


def magnifications(deflector: Deflector, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    from lenstronomy.LensModel.lens_model import LensModel

    lens_model = LensModel(list(Deflector.models))
    return np.asarray(lens_model.magnification(xs, ys, deflector.kwargs()), dtype=np.float64)
