"""Sersic light: the profile's functions and the galaxy parts built on it (disc, arms, dust lane).

Sersic b_n = 1.9992 n - 0.3271 with R_sersic an intermediate-axis radius (shared/reference/
README.md); surface brightness in flux / arcsec^2, radii in arcsec. Each profile class gives
its surface brightness, analytic total flux, cusps, extent and sampling scale (see
`lensflow.simulate.light.LightProfile`).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy import integrate, special

from lensflow.simulate.geometry import (
    FloatArray,
    circularised,
    elliptical_radius2,
    elliptical_reach,
    ellipticity_to_q_phi,
    rotated,
)

R_FLOOR_ARCSEC = 1e-4
"""Smallest elliptical radius at which a Sersic profile is evaluated (its centre is a cusp)."""


def sersic_b_n(n_sersic: float) -> float:
    """b_n = 1.9992 n - 0.3271 (the linear approximation the conventions prescribe)."""
    return 1.9992 * n_sersic - 0.3271


def sersic_total_flux(amp: float, r_sersic: float, n_sersic: float) -> float:
    """Analytic total flux 2 pi n amp R^2 e^b b^-2n Gamma(2n) (independent of q)."""
    b = sersic_b_n(n_sersic)
    log_total = (
        math.log(2.0 * math.pi * n_sersic * amp * r_sersic**2)
        + b
        - 2.0 * n_sersic * math.log(b)
        + math.lgamma(2.0 * n_sersic)
    )
    return math.exp(log_total)


def sersic_amplitude(flux: float, r_sersic: float, n_sersic: float) -> float:
    """The amp (surface brightness at R_sersic) of a Sersic profile with this total flux."""
    return flux / sersic_total_flux(1.0, r_sersic, n_sersic)


def sersic_surface_brightness(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    amp: float,
    r_sersic: float,
    n_sersic: float,
    e1: float = 0.0,
    e2: float = 0.0,
    center_x: float = 0.0,
    center_y: float = 0.0,
) -> FloatArray:
    """Elliptical Sersic surface brightness amp exp(-b_n ((R/R_sersic)^(1/n) - 1)), flux/arcsec^2."""
    r2 = elliptical_radius2(x, y, e1, e2, center_x, center_y)
    np.maximum(r2, R_FLOOR_ARCSEC**2, out=r2)
    b = sersic_b_n(n_sersic)
    return amp * np.exp(b - b * (r2 * (1.0 / r_sersic**2)) ** (0.5 / n_sersic))


@functools.lru_cache(maxsize=4096)
def _sersic_extent(
    r_sersic: float, n_sersic: float, e1: float, e2: float, fraction: float
) -> float:
    """Major semi-axis (arcsec) of the ellipse holding all but `fraction` of a Sersic's flux."""
    q, _ = ellipticity_to_q_phi(e1, e2)
    x = float(special.gammainccinv(2.0 * n_sersic, fraction))
    return float(r_sersic * (x / sersic_b_n(n_sersic)) ** n_sersic / math.sqrt(q))


def _sersic_sampling(
    r: FloatArray, reach_r: FloatArray, amp: float, r_sersic: float, n_sersic: float, sq: float
) -> tuple[FloatArray, FloatArray]:
    """(scale, bound) of a Sersic profile at elliptical radius r within reach_r (radius units)."""
    b = sersic_b_n(n_sersic)
    near = np.maximum(r - reach_r, R_FLOOR_ARCSEC)
    if n_sersic >= 1.0:
        grad = n_sersic * r_sersic ** (1.0 / n_sersic) * near ** (1.0 - 1.0 / n_sersic) / b
        scale = np.minimum(grad, near)
    else:
        far = r + reach_r
        grad = n_sersic * r_sersic ** (1.0 / n_sersic) * far ** (1.0 - 1.0 / n_sersic) / b
        scale = np.minimum(grad, 0.5 * r_sersic)
    bound = amp * np.exp(-b * ((near / r_sersic) ** (1.0 / n_sersic) - 1.0))
    return sq * scale, bound


@dataclass(frozen=True)
class SersicEllipse:
    """Elliptical Sersic light: amp at R_sersic (flux/arcsec^2), R_sersic (arcsec), n, e1, e2."""

    amp: float
    r_sersic: float
    n_sersic: float
    e1: float = 0.0
    e2: float = 0.0
    center_x: float = 0.0
    center_y: float = 0.0

    @classmethod
    def from_flux(
        cls,
        flux: float,
        r_sersic: float,
        n_sersic: float,
        e1: float = 0.0,
        e2: float = 0.0,
        center_x: float = 0.0,
        center_y: float = 0.0,
    ) -> SersicEllipse:
        """The profile of a given total flux."""
        amp = sersic_amplitude(flux, r_sersic, n_sersic)
        return cls(amp, r_sersic, n_sersic, e1, e2, center_x, center_y)

    def surface_brightness(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Flux per arcsec^2."""
        return sersic_surface_brightness(
            x,
            y,
            amp=self.amp,
            r_sersic=self.r_sersic,
            n_sersic=self.n_sersic,
            e1=self.e1,
            e2=self.e2,
            center_x=self.center_x,
            center_y=self.center_y,
        )

    def total_flux(self) -> float:
        """Analytic total flux."""
        return sersic_total_flux(self.amp, self.r_sersic, self.n_sersic)

    def cusps(self) -> tuple[tuple[float, float], ...]:
        """The centre when n > 1 (the profile's slope diverges there)."""
        return ((self.center_x, self.center_y),) if self.n_sersic > 1.0 else ()

    def extent(self, fraction: float) -> tuple[float, float, float]:
        """Circle about the centre, radius the major semi-axis of the (1 - fraction) isophote."""
        radius = _sersic_extent(self.r_sersic, self.n_sersic, self.e1, self.e2, fraction)
        return self.center_x, self.center_y, radius

    def sampling(
        self, x: FloatArray, y: FloatArray, reach: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """See LightProfile."""
        r, reach_r, sq = elliptical_reach(self, x, y, reach)
        return _sersic_sampling(r, reach_r, self.amp, self.r_sersic, self.n_sersic, sq)


@dataclass(frozen=True)
class SersicArms:
    """A Sersic disc modulated by m logarithmic spiral arms (von Mises across the arms).

    The modulation 1 + taper(rho) (exp(k cos(m psi)) / I0(k) - 1) averages to 1 around every
    ellipse, so the total flux is the Sersic one; the arms fade inside `inner` (arcsec, as
    rho = sqrt(u^2 + v^2) in circularised coordinates). pitch in radians;
    psi = theta - ln(rho/R)/tan(pitch) - phase.
    """

    disc: SersicEllipse
    n_arms: int = 2
    pitch: float = 0.3
    contrast: float = 2.0
    phase: float = 0.0
    inner: float = 0.0

    def surface_brightness(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Flux per arcsec^2."""
        d = self.disc
        u, v, _ = circularised(x, y, d.e1, d.e2, d.center_x, d.center_y)
        rho = np.maximum(np.hypot(u, v), R_FLOOR_ARCSEC)
        psi = np.arctan2(v, u) - np.log(rho / d.r_sersic) / math.tan(self.pitch) - self.phase
        norm = 1.0 / float(special.i0e(self.contrast))
        mod = np.exp(self.contrast * (np.cos(self.n_arms * psi) - 1.0)) * norm - 1.0
        if self.inner > 0.0:
            mod *= -np.expm1(-((rho / self.inner) ** 2))
        out: FloatArray = d.surface_brightness(x, y) * (1.0 + mod)
        return out

    def total_flux(self) -> float:
        """Analytic total flux (that of the disc)."""
        return self.disc.total_flux()

    def cusps(self) -> tuple[tuple[float, float], ...]:
        """The disc's."""
        return self.disc.cusps()

    def extent(self, fraction: float) -> tuple[float, float, float]:
        """The disc's (the arms keep the flux of every ellipse)."""
        return self.disc.extent(fraction)

    def sampling(
        self, x: FloatArray, y: FloatArray, reach: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """See LightProfile: the disc's scale or the arm width, whichever is smaller."""
        d = self.disc
        scale, bound = d.sampling(x, y, reach)
        r, reach_r, sq = elliptical_reach(d, x, y, reach)
        near = np.maximum(r - reach_r, max(self.inner, 0.02 * d.r_sersic))
        # three times the arms' Gaussian width: the arms are far below the PSF, and the
        # integration errors of a pattern of many periods average out in the flux
        width = 3.0 * math.sin(self.pitch) / (self.n_arms * math.sqrt(1.0 + self.contrast))
        peak = 1.0 / float(special.i0e(self.contrast))
        return np.minimum(scale, sq * near * width), bound * peak


@dataclass(frozen=True)
class SersicLane:
    """A Sersic profile times a Gaussian band exp(-y'^2 / 2 width^2) along its major axis.

    Subtracted (scaled per band) from a disc, it makes a dust lane; it never exceeds the disc.
    """

    disc: SersicEllipse
    width: float

    def surface_brightness(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Flux per arcsec^2."""
        d = self.disc
        _, phi = ellipticity_to_q_phi(d.e1, d.e2)
        _, yp = rotated(x, y, phi, d.center_x, d.center_y)
        return d.surface_brightness(x, y) * np.exp(-0.5 * (yp / self.width) ** 2)

    def total_flux(self) -> float:
        """Total flux by a 1D quadrature (exact angular integral via I0)."""
        return _lane_flux(self.disc, self.width)

    def cusps(self) -> tuple[tuple[float, float], ...]:
        """The disc's."""
        return self.disc.cusps()

    def extent(self, fraction: float) -> tuple[float, float, float]:
        """The disc's, for the fraction of the disc's flux that this much of the lane's is."""
        return self.disc.extent(fraction * self.total_flux() / self.disc.total_flux())

    def sampling(
        self, x: FloatArray, y: FloatArray, reach: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """See LightProfile."""
        scale, bound = self.disc.sampling(x, y, reach)
        return np.minimum(scale, self.width), bound


@functools.lru_cache(maxsize=256)
def _lane_flux(disc: SersicEllipse, width: float) -> float:
    """Total flux of a SersicLane: a radial quadrature of the angle-integrated profile."""
    q, _ = ellipticity_to_q_phi(disc.e1, disc.e2)
    b = sersic_b_n(disc.n_sersic)

    def integrand(rho: float) -> float:
        radial = math.exp(
            -b * ((max(rho, R_FLOOR_ARCSEC) / disc.r_sersic) ** (1 / disc.n_sersic) - 1)
        )
        a = q * rho * rho / (4.0 * width * width)
        return rho * radial * float(special.i0e(a))

    upper = disc.r_sersic * (60.0 / b + 1.0) ** disc.n_sersic
    value, _ = integrate.quad(integrand, 0.0, upper, limit=200, points=[disc.r_sersic])
    return 2.0 * math.pi * disc.amp * float(value)
