"""What every class drawer shares: its context, its result, the common random laws, and the
parts that several classes draw (a red central galaxy, Sersic lights, clumps).

A drawer (one per class, in the draw_* modules) takes a `DrawContext` (the scene's random
stream, the survey, the requested r magnitude, the drawn seeing and PSF model, the sub-pixel
centre) and returns a `Drawn`; `lensflow.simulate.draw.draw_scene` turns that into a Scene.
Magnitudes are AB, radii in arcsec, angles in radians.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
from frozendict import frozendict

from lensflow.simulate.colours import band_fluxes, red_colours
from lensflow.simulate.geometry import (
    FloatArray,
    ellipticity_to_q_phi,
    q_phi_to_ellipticity,
    unrotated,
)
from lensflow.simulate.lensing import LensModel
from lensflow.simulate.light import GaussianClumps
from lensflow.simulate.observe import Artefact
from lensflow.simulate.psf_shapes import PSFShape
from lensflow.simulate.scene import Component, LensCriteria, PointSource
from lensflow.simulate.sersic import SersicEllipse
from lensflow.surveys import Survey

Range = tuple[float, float]
"""Bounds (lo, hi) of a uniform draw."""

IntRange = tuple[int, int]
"""Bounds [lo, hi) of an integer draw."""


@dataclass
class DrawContext:
    """The state a drawer draws from: random stream, survey, requested mag, seeing, centre.

    psf: per-band PSF shapes (the wide population's; empty: round psf_model PSFs);
    population: the simulator's population; variant: a sub-kind the drawer must draw (None:
    drawn by chance).
    """

    rng: np.random.Generator
    survey: Survey
    mag_r: float | None
    criteria: LensCriteria
    seeing: frozendict[str, float]
    psf_model: str
    x0: float
    y0: float
    psf: Mapping[str, PSFShape] = field(default_factory=frozendict)
    population: str = "classic"
    variant: str | None = None

    def fwhm(self, band: str) -> float:
        """PSF FWHM (arcsec) of a band: the survey's times the drawn seeing."""
        return self.survey.psf_fwhm_arcsec[band] * self.seeing[band]


@dataclass
class Drawn:
    """What a drawer returns: light, artefacts, lens, truth; size (arcsec) and magnitudes."""

    components: list[Component]
    points: list[PointSource] = field(default_factory=list)
    artefacts: list[Artefact] = field(default_factory=list)
    lens: LensModel | None = None
    params: dict[str, float] = field(default_factory=dict)
    extended: bool = True
    size: float | None = None
    scale_to_mag_r: bool = True
    mag: dict[str, float] | None = None
    variant: str = ""


def uniform(rng: np.random.Generator, bounds: Range) -> float:
    """One uniform draw between bounds (lo, hi)."""
    return float(rng.uniform(bounds[0], bounds[1]))


def count_law(rng: np.random.Generator, lo: float, hi: float, slope: float = 0.3) -> float:
    """A magnitude from N(<m) ~ 10^(slope m) between lo and hi."""
    a, b = 10.0 ** (slope * lo), 10.0 ** (slope * hi)
    return math.log10(a + (b - a) * rng.uniform()) / slope


def mag_r_or_draw(ctx: DrawContext, bounds: Range, slope: float = 0.3) -> float:
    """The requested r magnitude, else one from the number counts (`count_law`) in bounds."""
    return ctx.mag_r if ctx.mag_r is not None else count_law(ctx.rng, *bounds, slope=slope)


def size_law(rng: np.random.Generator, mag: float, at18: float, slope: float = 0.14) -> float:
    """Half-light radius (arcsec) that shrinks with magnitude, log-normal scatter 0.12 dex."""
    return float(at18 * 10.0 ** (-slope * (mag - 18.0) + rng.normal(0.0, 0.12)))


@dataclass(frozen=True)
class RedshiftLaw:
    """z = at_17 + per_mag (m_r - 17), plus Gaussian scatter when given, clipped to `clip`."""

    at_17: float
    per_mag: float
    clip: Range
    scatter: float | None = None

    def draw(self, rng: np.random.Generator, mag: float) -> float:
        """A redshift for an r magnitude (draws from rng only when there is scatter)."""
        z = self.at_17 + self.per_mag * (mag - 17.0)
        if self.scatter is not None:
            z = z + rng.normal(0.0, self.scatter)
        return float(np.clip(z, *self.clip))


@dataclass(frozen=True)
class UniformRedshift:
    """z uniform between bounds, whatever the magnitude."""

    bounds: Range

    def draw(self, rng: np.random.Generator, mag: float) -> float:
        """A redshift (mag is not used)."""
        return uniform(rng, self.bounds)


def clipped_ellipticity(q: float, phi: float) -> tuple[float, float]:
    """Complex ellipticity of an axis ratio clipped to [0.05, 1] and an angle (radians)."""
    return q_phi_to_ellipticity(min(max(q, 0.05), 1.0), phi)


def sersic_light(
    ctx: DrawContext,
    *,
    r_sersic: float,
    n_sersic: float,
    q: float,
    phi: float | None = None,
    dx: float = 0.0,
    dy: float = 0.0,
) -> SersicEllipse:
    """A unit-flux Sersic at (dx, dy) from the centre; a random angle unless phi is given."""
    phi = float(ctx.rng.uniform(0.0, math.pi)) if phi is None else phi
    e1, e2 = clipped_ellipticity(q, phi)
    return SersicEllipse.from_flux(1.0, r_sersic, n_sersic, e1, e2, ctx.x0 + dx, ctx.y0 + dy)


@dataclass(frozen=True)
class RedGalaxyPrior:
    """A red-sequence galaxy at the centre: a Sersic profile, r magnitude from the number counts.

    Half-light radius from the size law (arcsec at r = 18, capped at r_e_max), Sersic index and
    axis ratio uniform in their bounds.
    """

    mag_r: Range
    redshift: RedshiftLaw | UniformRedshift
    r_e_at_18: float
    r_e_max: float
    n_sersic: Range
    q: Range


class RedGalaxy(NamedTuple):
    """A drawn red galaxy: r magnitude, redshift, half-light radius (arcsec), unit-flux profile."""

    mag: float
    z: float
    r_e: float
    profile: SersicEllipse

    def component(self, rng: np.random.Generator, flux_r: float) -> Component:
        """The galaxy's light with r flux flux_r (nJy) and red-sequence colours at its redshift."""
        return Component(self.profile, band_fluxes(flux_r, red_colours(rng, self.z)))


def draw_red_galaxy(ctx: DrawContext, prior: RedGalaxyPrior) -> RedGalaxy:
    """A red galaxy at the centre (its colours come with `RedGalaxy.component`)."""
    rng = ctx.rng
    mag = mag_r_or_draw(ctx, prior.mag_r)
    z = prior.redshift.draw(rng, mag)
    r_e = min(size_law(rng, mag, prior.r_e_at_18), prior.r_e_max)
    profile = sersic_light(
        ctx, r_sersic=r_e, n_sersic=uniform(rng, prior.n_sersic), q=uniform(rng, prior.q)
    )
    return RedGalaxy(mag, z, r_e, profile)


def on_ellipse(
    disc: SersicEllipse, rho: FloatArray, theta: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Sky positions of circularised polar coordinates (rho, theta) of an elliptical profile."""
    q, phi = ellipticity_to_q_phi(disc.e1, disc.e2)
    xp = rho * np.cos(theta) / math.sqrt(q)
    yp = rho * np.sin(theta) * math.sqrt(q)
    return unrotated(xp, yp, phi, disc.center_x, disc.center_y)


def clumps(
    rng: np.random.Generator,
    xs: FloatArray,
    ys: FloatArray,
    sigma: Range,
) -> GaussianClumps:
    """Clumps at (xs, ys) with uniform sigmas in `sigma` and Dirichlet(2) flux shares."""
    k = len(xs)
    weights = rng.dirichlet(np.ones(k) * 2.0)
    return GaussianClumps(
        x=tuple(float(v) for v in xs),
        y=tuple(float(v) for v in ys),
        sigma=tuple(float(v) for v in rng.uniform(*sigma, size=k)),
        flux=tuple(float(w) for w in weights),
    )
