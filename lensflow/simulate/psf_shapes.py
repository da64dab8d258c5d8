"""PSF shapes of the wide population: elliptical Moffat profiles of any beta, and a Gaussian
core with a Moffat wing, drawn per band.

Ground-based PSFs are not round Moffats of one beta. Their wings vary: a Moffat beta of 4.765
matches Kolmogorov turbulence alone, while measured stellar profiles need lower beta, down to
about 2.5 (the IRAF default), for their broader wings (Trujillo et al. 2001, MNRAS 328, 977);
telescope PSFs are a seeing core plus a scattered-light aureole (Racine 1996, PASP 108, 699),
which survey pipelines fit as a core plus a wider wing (SDSS's double Gaussian plus a
power-law wing, Stoughton et al. 2002, AJ 123, 485). And they are elliptical: the LSST Science
Requirements (Ivezic et al., LPM-17, 2018) allow a median PSF ellipticity of 0.04 and 10 % of
images beyond 0.07, hence |e| drawn up to 0.08.

Conventions: `PSFShape.e1, e2` are the moments ellipticity (Qxx - Qyy, 2 Qxy) / (Qxx + Qyy) of
PSF diagnostics, so |e| = (1 - q^2) / (1 + q^2) for axis ratio q; the profile is a round one
in the area-preserving circularised radius (`geometry.circularised`), and the FWHM is the
intermediate-axis one (the geometric mean of the major and minor FWHM), scaled so that the
whole mix (core plus wing) has the FWHM asked for.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from frozendict import frozendict
from scipy import optimize

from lensflow.errors import SimulationError
from lensflow.simulate.geometry import FloatArray, as_float, circularised
from lensflow.simulate.render import pixel_centres, render_adaptive

PSF_SHAPE_MODELS: tuple[str, ...] = ("moffat", "core_wing")
"""An elliptical Moffat; a Gaussian core plus an elliptical Moffat wing."""

GAUSSIAN_FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))


@dataclass(frozen=True)
class PSFShape:
    """One band's PSF shape (its FWHM is the scene's seeing): model, Moffat beta (of the wing
    for core_wing), moments ellipticity, the core's share of the flux, wing FWHM / core FWHM."""

    model: str = "moffat"
    beta: float = 3.5
    e1: float = 0.0
    e2: float = 0.0
    core_fraction: float = 0.0
    wing_ratio: float = 2.0

    def __post_init__(self) -> None:
        if self.model not in PSF_SHAPE_MODELS:
            raise SimulationError(f"unknown PSF shape {self.model!r}; known {PSF_SHAPE_MODELS}")
        if not self.beta > 1.0 or not math.hypot(self.e1, self.e2) < 1.0:
            raise SimulationError(f"PSF beta must be > 1 and |e| < 1: {self}")
        if not 0.0 <= self.core_fraction < 1.0 or not self.wing_ratio > 0.0:
            raise SimulationError(f"PSF core_fraction must be in [0, 1), wing_ratio > 0: {self}")

    @property
    def q(self) -> float:
        """Axis ratio b/a: q^2 = (1 - |e|) / (1 + |e|)."""
        e = math.hypot(self.e1, self.e2)
        return math.sqrt((1.0 - e) / (1.0 + e))

    @property
    def complex_ellipticity(self) -> tuple[float, float]:
        """(e1, e2) in the light profiles' convention, (1 - q)/(1 + q) along 2 phi."""
        e = math.hypot(self.e1, self.e2)
        if e == 0.0:
            return 0.0, 0.0
        c = (1.0 - self.q) / (1.0 + self.q) / e
        return c * self.e1, c * self.e2

    @property
    def core_share(self) -> float:
        """The Gaussian core's share of the flux (0 for a plain Moffat)."""
        return self.core_fraction if self.model == "core_wing" else 0.0


def _round_profile(shape: PSFShape, s: float, rho: FloatArray) -> FloatArray:
    """Unit-flux round profile at radius rho for core FWHM s (wing FWHM s * wing_ratio; for a
    plain Moffat, its FWHM is s), flux per arcsec^2."""
    fc = shape.core_share
    wing_fwhm = s * shape.wing_ratio if fc > 0.0 else s
    alpha = wing_fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / shape.beta) - 1.0))
    r2 = rho * rho
    norm = (1.0 - fc) * (shape.beta - 1.0) / (math.pi * alpha * alpha)
    out: FloatArray = norm * (1.0 + r2 / (alpha * alpha)) ** (-shape.beta)
    if fc > 0.0:
        sigma = s / GAUSSIAN_FWHM_PER_SIGMA
        out = out + fc / (2.0 * math.pi * sigma * sigma) * np.exp(-0.5 * r2 / (sigma * sigma))
    return out


@functools.lru_cache(maxsize=4096)
def core_fwhm(shape: PSFShape, fwhm: float) -> float:
    """The core FWHM s (arcsec) that gives the whole round profile this FWHM."""
    if shape.core_share == 0.0:
        return fwhm
    peak = float(_round_profile(shape, 1.0, np.zeros(1))[0])

    def half(r: float) -> float:
        return float(_round_profile(shape, 1.0, np.array([r]))[0]) - 0.5 * peak

    r_half = optimize.brentq(half, 1e-6, 10.0 * max(1.0, shape.wing_ratio), xtol=1e-13)
    return fwhm / (2.0 * float(r_half))


@dataclass(frozen=True)
class ShapedPSF:
    """A point source seen through a PSFShape of this FWHM (arcsec): a LightProfile."""

    shape: PSFShape
    fwhm: float
    center_x: float = 0.0
    center_y: float = 0.0
    flux: float = 1.0

    def _rho(self, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, float]:
        e1, e2 = self.shape.complex_ellipticity
        u, v, q = circularised(x, y, e1, e2, self.center_x, self.center_y)
        return np.hypot(u, v), q

    def _wing_alpha(self) -> float:
        s = core_fwhm(self.shape, self.fwhm)
        wing = s * self.shape.wing_ratio if self.shape.core_share > 0.0 else s
        return wing / (2.0 * math.sqrt(2.0 ** (1.0 / self.shape.beta) - 1.0))

    def surface_brightness(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Flux per arcsec^2."""
        rho, _ = self._rho(as_float(x), as_float(y))
        s = core_fwhm(self.shape, self.fwhm)
        return self.flux * _round_profile(self.shape, s, rho)

    def total_flux(self) -> float:
        """flux."""
        return self.flux

    def cusps(self) -> tuple[tuple[float, float], ...]:
        """None: smooth everywhere."""
        return ()

    def extent(self, fraction: float) -> tuple[float, float, float]:
        """Circle beyond which each part (core, wing) holds less than fraction of its flux."""
        beta = self.shape.beta
        radius = self._wing_alpha() * math.sqrt(fraction ** (1.0 / (1.0 - beta)) - 1.0)
        if self.shape.core_share > 0.0:
            sigma = core_fwhm(self.shape, self.fwhm) / GAUSSIAN_FWHM_PER_SIGMA
            radius = max(radius, sigma * math.sqrt(-2.0 * math.log(fraction)))
        return self.center_x, self.center_y, radius / math.sqrt(self.shape.q)

    def sampling(
        self, x: FloatArray, y: FloatArray, reach: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """See LightProfile: the steepest log-slope of core and wing near each point."""
        rho, q = self._rho(x, y)
        sq = math.sqrt(q)
        reach_r = reach / sq
        near = np.maximum(rho - reach_r, 0.0)
        s = core_fwhm(self.shape, self.fwhm)
        bound = self.flux * _round_profile(self.shape, s, near)
        a, beta = self._wing_alpha(), self.shape.beta
        steepest = np.clip(a, near, rho + reach_r)
        scale = np.minimum(
            (a * a + steepest**2) / (2.0 * beta * steepest), 0.5 * a / math.sqrt(beta)
        )
        if self.shape.core_share > 0.0:
            sigma = s / GAUSSIAN_FWHM_PER_SIGMA
            core = np.minimum(sigma * sigma / np.maximum(rho + reach_r, 1e-12), 0.5 * sigma)
            scale = np.minimum(scale, core)
        out: FloatArray = sq * scale
        return out, bound


@functools.lru_cache(maxsize=512)
def shaped_kernel(shape: PSFShape, fwhm: float, pixel_scale: float, size: int = 31) -> FloatArray:
    """The PSF sampled at pixel centres on a (size, size) grid (size odd), normalised to sum 1;
    read-only (cached). For convolving pixel-integrated images."""
    if size % 2 != 1:
        raise SimulationError(f"PSF kernel size must be odd, got {size}")
    c = pixel_centres(size, pixel_scale)
    gx, gy = np.meshgrid(c, c)
    kernel = ShapedPSF(shape, fwhm).surface_brightness(gx, gy)
    kernel /= kernel.sum()
    kernel.setflags(write=False)
    return kernel


def shaped_point_image(
    shape: PSFShape, fwhm: float, x: float, y: float, *, n: int, pixel_scale: float
) -> FloatArray:
    """A unit-flux point source at (x, y) arcsec: the shaped PSF integrated over pixels, (n, n)."""
    image: FloatArray = render_adaptive(
        [ShapedPSF(shape, fwhm, center_x=x, center_y=y)], n=n, pixel_scale=pixel_scale
    )[0]
    return image


# --- the prior --------------------------------------------------------------------------------


@dataclass(frozen=True)
class PSFShapePrior:
    """Per band: the model (core_wing with this chance), beta, |e| and its angle (a common angle
    per cutout with a per-band scatter), the core's share and the wing's width (see module)."""

    core_wing_chance: float = 0.5
    beta: tuple[float, float] = (2.5, 5.0)
    ellipticity: tuple[float, float] = (0.0, 0.08)
    angle_scatter_deg: float = 20.0
    core_fraction: tuple[float, float] = (0.5, 0.9)
    wing_ratio: tuple[float, float] = (1.5, 3.0)


PSF_SHAPES = PSFShapePrior()


def draw_psf_shapes(
    rng: np.random.Generator, bands: Sequence[str], prior: PSFShapePrior = PSF_SHAPES
) -> frozendict[str, PSFShape]:
    """One PSFShape per band (see PSFShapePrior)."""
    common = float(rng.uniform(0.0, math.pi))
    out = {}
    for band in bands:
        core_wing = rng.uniform() < prior.core_wing_chance
        beta = float(rng.uniform(*prior.beta))
        e = float(rng.uniform(*prior.ellipticity))
        phi = common + math.radians(prior.angle_scatter_deg) * float(rng.normal())
        fraction = float(rng.uniform(*prior.core_fraction))
        ratio = float(rng.uniform(*prior.wing_ratio))
        out[band] = PSFShape(
            model="core_wing" if core_wing else "moffat",
            beta=beta,
            e1=e * math.cos(2.0 * phi),
            e2=e * math.sin(2.0 * phi),
            core_fraction=fraction if core_wing else 0.0,
            wing_ratio=ratio if core_wing else 2.0,
        )
    return frozendict(out)
