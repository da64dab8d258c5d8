"""Light profiles other than the Sersic family (rings, arcs, clumps, PSF-seen point sources),
the `LightProfile` protocol that every light satisfies, and the profile registries.

A light gives a surface brightness (flux / arcsec^2), its analytic total flux, and a resolution
scale that drives the adaptive supersampling of `lensflow.simulate.render.render_adaptive`.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from scipy import special

from lensflow.simulate.geometry import (
    FloatArray,
    as_float,
    centred,
    circularised,
    elliptical_reach,
    ellipticity_to_q_phi,
)
from lensflow.simulate.lensing import MASS_PROFILES
from lensflow.simulate.sersic import SersicArms, SersicEllipse, SersicLane


@runtime_checkable
class LightProfile(Protocol):
    """Surface brightness (flux / arcsec^2), its total flux, and how finely it must be sampled.

    sampling(x, y, reach) -> (scale, bound): within `reach` (arcsec) of each point, the smallest
    length over which the brightness changes by order unity (inf where it is flat or absent) and
    an upper bound of the brightness. cusps(): points where the brightness is singular (integrated
    in polar coordinates about the point). extent(fraction): a circle (x, y, radius) outside which
    lies less than that fraction of the total flux.
    """

    def surface_brightness(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray: ...

    def total_flux(self) -> float: ...

    def cusps(self) -> tuple[tuple[float, float], ...]: ...

    def extent(self, fraction: float) -> tuple[float, float, float]: ...

    def sampling(
        self, x: FloatArray, y: FloatArray, reach: FloatArray
    ) -> tuple[FloatArray, FloatArray]: ...


class _Smooth:
    """A light without cusps: its brightness is smooth everywhere."""

    def cusps(self) -> tuple[tuple[float, float], ...]:
        """None: smooth everywhere."""
        return ()


class _PointSpread(_Smooth, ABC):
    """A point source seen through a round PSF: total flux `flux`, bounded within a reach by its
    brightness at the nearest radius; each PSF gives its brightness and its resolution scale."""

    center_x: float
    center_y: float
    flux: float

    @abstractmethod
    def surface_brightness(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Flux per arcsec^2."""

    @abstractmethod
    def _scale(self, r: FloatArray, near: FloatArray, reach: FloatArray) -> FloatArray:
        """Resolution scale (arcsec) between radii near and r + reach about the centre."""

    def total_flux(self) -> float:
        """flux."""
        return self.flux

    def sampling(
        self, x: FloatArray, y: FloatArray, reach: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """See LightProfile."""
        r = np.hypot(x - self.center_x, y - self.center_y)
        near = np.maximum(r - reach, 0.0)
        bound = self.surface_brightness(self.center_x + near, self.center_y)
        return self._scale(r, near, reach), bound


def _gaussian_reach(fraction: float) -> float:
    """t such that a 1D Gaussian holds all but `fraction` of its mass within t sigma (>= 3)."""
    return max(3.0, math.sqrt(2.0) * float(special.erfcinv(fraction)))


def _ring_radial_integral(radius: float, width: float) -> float:
    """Integral of exp(-(rho - R)^2 / 2 w^2) rho d rho from 0 to infinity."""
    a = radius / (math.sqrt(2.0) * width)
    return width**2 * math.exp(-(a**2)) + radius * width * math.sqrt(0.5 * math.pi) * (
        1.0 + math.erf(a)
    )


@dataclass(frozen=True)
class GaussianRing(_Smooth):
    """An elliptical ring: amp exp(-(R - radius)^2 / 2 width^2) (1 + lopsided cos(theta - angle)).

    R is the intermediate-axis elliptical radius, theta the angle in circularised coordinates.
    """

    amp: float
    radius: float
    width: float
    e1: float = 0.0
    e2: float = 0.0
    center_x: float = 0.0
    center_y: float = 0.0
    lopsided: float = 0.0
    angle: float = 0.0

    def surface_brightness(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Flux per arcsec^2."""
        u, v, _ = circularised(x, y, self.e1, self.e2, self.center_x, self.center_y)
        rho = np.hypot(u, v)
        out = self.amp * np.exp(-0.5 * ((rho - self.radius) / self.width) ** 2)
        if self.lopsided:
            out = out * (1.0 + self.lopsided * np.cos(np.arctan2(v, u) - self.angle))
        return out

    def total_flux(self) -> float:
        """Analytic total flux."""
        return 2.0 * math.pi * self.amp * _ring_radial_integral(self.radius, self.width)

    def extent(self, fraction: float) -> tuple[float, float, float]:
        """Circle beyond the ring's Gaussian edge (major semi-axis)."""
        q, _ = ellipticity_to_q_phi(self.e1, self.e2)
        reach = self.radius + _gaussian_reach(fraction) * self.width
        return self.center_x, self.center_y, reach / math.sqrt(q)

    def sampling(
        self, x: FloatArray, y: FloatArray, reach: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """See LightProfile."""
        r, reach_r, sq = elliptical_reach(self, x, y, reach)
        gap = np.maximum(np.abs(r - self.radius) - reach_r, 0.0)
        bound = self.amp * (1.0 + abs(self.lopsided)) * np.exp(-0.5 * (gap / self.width) ** 2)
        return np.full(r.shape, sq * min(self.width, 0.5 * self.radius)), bound


@dataclass(frozen=True)
class TidalArc(_Smooth):
    """A curved strip of light (tidal tail, arc-like feature) on a circle about (center_x, y).

    amp exp(-(rho - radius)^2 / 2 width^2) exp(-dtheta^2 / 2 spread^2), dtheta the angle from
    `angle` wrapped to (-pi, pi]; spread in radians.
    """

    amp: float
    radius: float
    width: float
    angle: float
    spread: float
    center_x: float = 0.0
    center_y: float = 0.0

    def surface_brightness(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Flux per arcsec^2."""
        dx, dy = centred(x, y, self.center_x, self.center_y)
        rho = np.hypot(dx, dy)
        dt = np.remainder(np.arctan2(dy, dx) - self.angle + math.pi, 2.0 * math.pi) - math.pi
        return self.amp * np.exp(
            -0.5 * ((rho - self.radius) / self.width) ** 2 - 0.5 * (dt / self.spread) ** 2
        )

    def total_flux(self) -> float:
        """Analytic total flux."""
        angular = (
            math.sqrt(2.0 * math.pi)
            * self.spread
            * math.erf(math.pi / (math.sqrt(2.0) * self.spread))
        )
        return self.amp * angular * _ring_radial_integral(self.radius, self.width)

    def extent(self, fraction: float) -> tuple[float, float, float]:
        """Circle about the arc's centre beyond its Gaussian edge."""
        reach = self.radius + _gaussian_reach(fraction) * self.width
        return self.center_x, self.center_y, reach

    def sampling(
        self, x: FloatArray, y: FloatArray, reach: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """See LightProfile."""
        rho = np.hypot(x - self.center_x, y - self.center_y)
        gap = np.maximum(np.abs(rho - self.radius) - reach, 0.0)
        bound = self.amp * np.exp(-0.5 * (gap / self.width) ** 2)
        return np.full(rho.shape, self.width), bound


@dataclass(frozen=True)
class GaussianClumps(_Smooth):
    """Round Gaussian clumps (star-forming knots): positions, sigmas (arcsec) and fluxes."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    sigma: tuple[float, ...]
    flux: tuple[float, ...]

    def surface_brightness(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Flux per arcsec^2."""
        xa, ya = as_float(x), as_float(y)
        out = np.zeros(np.broadcast_shapes(xa.shape, ya.shape))
        for cx, cy, s, f in zip(self.x, self.y, self.sigma, self.flux, strict=True):
            r2 = (xa - cx) ** 2 + (ya - cy) ** 2
            out += f / (2.0 * math.pi * s * s) * np.exp(-0.5 * r2 / (s * s))
        return out

    def total_flux(self) -> float:
        """Analytic total flux."""
        return float(sum(self.flux))

    def extent(self, fraction: float) -> tuple[float, float, float]:
        """Circle about the clumps' mean position holding every clump to the Gaussian edge."""
        if not self.x:
            return 0.0, 0.0, 0.0
        cx, cy = float(np.mean(self.x)), float(np.mean(self.y))
        t = _gaussian_reach(fraction)
        radius = max(
            math.hypot(x - cx, y - cy) + t * s
            for x, y, s in zip(self.x, self.y, self.sigma, strict=True)
        )
        return cx, cy, radius

    def sampling(
        self, x: FloatArray, y: FloatArray, reach: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """See LightProfile."""
        scale = np.full(np.shape(x), np.inf)
        bound = np.zeros(np.shape(x))
        for cx, cy, s, f in zip(self.x, self.y, self.sigma, self.flux, strict=True):
            gap = np.maximum(np.hypot(x - cx, y - cy) - reach, 0.0)
            peak = abs(f) / (2.0 * math.pi * s * s) * np.exp(-0.5 * (gap / s) ** 2)
            bound += peak
            scale = np.where(gap < 5.0 * s, np.minimum(scale, s), scale)
        return scale, bound


@dataclass(frozen=True)
class MoffatPSF(_PointSpread):
    """A point source seen through a Moffat PSF (beta), unit flux by default."""

    fwhm: float
    beta: float = 3.5
    center_x: float = 0.0
    center_y: float = 0.0
    flux: float = 1.0

    @property
    def alpha(self) -> float:
        """Core width alpha = FWHM / (2 sqrt(2^(1/beta) - 1)), arcsec."""
        return self.fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / self.beta) - 1.0))

    def surface_brightness(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Flux per arcsec^2: flux (beta - 1)/(pi alpha^2) (1 + r^2/alpha^2)^-beta."""
        a = self.alpha
        r2 = (as_float(x) - self.center_x) ** 2 + (as_float(y) - self.center_y) ** 2
        norm = self.flux * (self.beta - 1.0) / (math.pi * a * a)
        return norm * (1.0 + r2 / (a * a)) ** (-self.beta)

    def extent(self, fraction: float) -> tuple[float, float, float]:
        """Radius where the flux outside, (1 + r^2/alpha^2)^(1 - beta), falls to fraction."""
        radius = self.alpha * math.sqrt(fraction ** (1.0 / (1.0 - self.beta)) - 1.0)
        return self.center_x, self.center_y, radius

    def _scale(self, r: FloatArray, near: FloatArray, reach: FloatArray) -> FloatArray:
        """1 / the largest log-slope 2 beta r / (a^2 + r^2) in the range (it peaks at r = a)."""
        a, beta = self.alpha, self.beta
        steepest = np.clip(a, near, r + reach)
        scale: FloatArray = np.minimum(
            (a * a + steepest**2) / (2.0 * beta * steepest), 0.5 * a / math.sqrt(beta)
        )
        return scale


@dataclass(frozen=True)
class GaussianPSF(_PointSpread):
    """A point source seen through a Gaussian PSF, unit flux by default."""

    fwhm: float
    center_x: float = 0.0
    center_y: float = 0.0
    flux: float = 1.0

    @property
    def sigma(self) -> float:
        """FWHM / 2.3548, arcsec."""
        return self.fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))

    def surface_brightness(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Flux per arcsec^2."""
        s = self.sigma
        r2 = (as_float(x) - self.center_x) ** 2 + (as_float(y) - self.center_y) ** 2
        return self.flux / (2.0 * math.pi * s * s) * np.exp(-0.5 * r2 / (s * s))

    def extent(self, fraction: float) -> tuple[float, float, float]:
        """Radius where the flux outside, exp(-r^2 / 2 sigma^2), falls to fraction."""
        return self.center_x, self.center_y, self.sigma * math.sqrt(-2.0 * math.log(fraction))

    def _scale(self, r: FloatArray, near: FloatArray, reach: FloatArray) -> FloatArray:
        """1 / the largest log-slope r / sigma^2 in the range (at its far end)."""
        s2 = self.sigma**2
        scale: FloatArray = np.minimum(s2 / np.maximum(r + reach, 1e-12), 0.5 * self.sigma)
        return scale


LIGHT_PROFILES: dict[str, type] = {
    "SERSIC_ELLIPSE": SersicEllipse,
    "SERSIC_ARMS": SersicArms,
    "SERSIC_LANE": SersicLane,
    "GAUSSIAN_RING": GaussianRing,
    "TIDAL_ARC": TidalArc,
    "GAUSSIAN_CLUMPS": GaussianClumps,
    "MOFFAT_PSF": MoffatPSF,
    "GAUSSIAN_PSF": GaussianPSF,
}
"""Light profiles by name."""
PROFILES: dict[str, type] = {**MASS_PROFILES, **LIGHT_PROFILES}
"""Every profile by name (mass profiles and light profiles)."""
