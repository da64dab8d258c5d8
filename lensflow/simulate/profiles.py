"""Lens physics and light profiles: pure, vectorised numpy functions (float64, angles in arcsec).

Conventions (shared/reference/README.md): flat-sky x, y; angles counter-clockwise from +x in
radians; complex ellipticity e1, e2 with q = (1 - c)/(1 + c), phi = atan2(e2, e1)/2; SIE theta_E
in the intermediate-axis convention; Sersic b_n = 1.9992 n - 0.3271 with R_sersic an
intermediate-axis radius; lens equation beta = theta - alpha(theta); a pixel value is the pixel
area times the mean surface brightness over the pixel.

Mass profiles (SIE, ExternalShear) add up in a LensModel; light profiles (SersicEllipse and the
others in PROFILES) give a surface brightness (flux / arcsec^2), their analytic total flux, and a
resolution scale that drives the adaptive supersampling of `render_adaptive`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt
from scipy import integrate, interpolate, special

from lensflow.errors import SimulationError

FloatArray = npt.NDArray[np.float64]

ARCSEC_PER_RAD = 180.0 / math.pi * 3600.0
SPEED_OF_LIGHT_KMS = 299_792.458
R_FLOOR_ARCSEC = 1e-4
"""Smallest elliptical radius at which a Sersic profile is evaluated (its centre is a cusp)."""


def _as_float(a: npt.ArrayLike) -> FloatArray:
    """float64 array of a, except that float32 arrays stay float32 (fast image rendering)."""
    arr = np.asarray(a)
    return arr if arr.dtype == np.float32 else arr.astype(np.float64, copy=False)


# --- ellipticity ------------------------------------------------------------------------------


def ellipticity_to_q_phi(e1: float, e2: float) -> tuple[float, float]:
    """Axis ratio q = b/a and major-axis angle phi (radians) of a complex ellipticity."""
    c = math.hypot(e1, e2)
    if c >= 1.0:
        raise SimulationError(f"ellipticity |e| = {c:.4g} must be < 1 (e1={e1}, e2={e2})")
    return (1.0 - c) / (1.0 + c), 0.5 * math.atan2(e2, e1)


def q_phi_to_ellipticity(q: float, phi: float) -> tuple[float, float]:
    """Complex ellipticity (e1, e2) of an axis ratio 0 < q <= 1 and major-axis angle phi."""
    if not 0.0 < q <= 1.0:
        raise SimulationError(f"axis ratio q must be in (0, 1], got {q}")
    c = (1.0 - q) / (1.0 + q)
    return c * math.cos(2.0 * phi), c * math.sin(2.0 * phi)


def _rotated(
    x: npt.ArrayLike, y: npt.ArrayLike, phi: float, center_x: float, center_y: float
) -> tuple[FloatArray, FloatArray]:
    """Coordinates in the frame whose x' axis lies along phi, about the centre."""
    dx = _as_float(x) - center_x
    dy = _as_float(y) - center_y
    cos, sin = math.cos(phi), math.sin(phi)
    return cos * dx + sin * dy, -sin * dx + cos * dy


def elliptical_radius(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    e1: float,
    e2: float,
    center_x: float = 0.0,
    center_y: float = 0.0,
) -> FloatArray:
    """sqrt(q x'^2 + y'^2 / q) in arcsec: the intermediate-axis radius shared by SIE and Sersic."""
    return np.sqrt(_elliptical_radius2(x, y, e1, e2, center_x, center_y))


def _elliptical_radius2(
    x: npt.ArrayLike, y: npt.ArrayLike, e1: float, e2: float, center_x: float, center_y: float
) -> FloatArray:
    """q x'^2 + y'^2 / q as a quadratic form in (x - cx, y - cy)."""
    q, phi = ellipticity_to_q_phi(e1, e2)
    cos, sin = math.cos(phi), math.sin(phi)
    a = q * cos * cos + sin * sin / q
    b = 2.0 * cos * sin * (q - 1.0 / q)
    c = q * sin * sin + cos * cos / q
    dx = _as_float(x) - center_x
    dy = _as_float(y) - center_y
    return np.maximum((a * dx + b * dy) * dx + c * dy * dy, 0.0)


def _circularised(
    x: npt.ArrayLike, y: npt.ArrayLike, e1: float, e2: float, center_x: float, center_y: float
) -> tuple[FloatArray, FloatArray, float]:
    """Area-preserving coordinates u = sqrt(q) x', v = y'/sqrt(q) and q."""
    q, phi = ellipticity_to_q_phi(e1, e2)
    xp, yp = _rotated(x, y, phi, center_x, center_y)
    sq = math.sqrt(q)
    return sq * xp, yp / sq, q


# --- SIE --------------------------------------------------------------------------------------


def sie_deflection(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    theta_e: float,
    e1: float,
    e2: float,
    center_x: float = 0.0,
    center_y: float = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """Deflection of a singular isothermal ellipsoid (exact for 0 < q <= 1).

    x, y, theta_e, centre in arcsec; e1, e2 the complex ellipticity. Returns arcsec, shape of x.
    """
    c = math.hypot(e1, e2)
    q, phi = ellipticity_to_q_phi(e1, e2)
    xp, yp = _rotated(x, y, phi, center_x, center_y)
    psi = np.sqrt(q * q * xp * xp + yp * yp)
    f = 2.0 * math.sqrt(c) / (1.0 + c)  # sqrt(1 - q^2) without cancellation
    with np.errstate(divide="ignore", invalid="ignore"):
        u, v = xp / psi, yp / psi
        if f == 0.0:
            axp, ayp = theta_e * u, theta_e * v
        else:
            scale = theta_e * math.sqrt(q) / f
            axp = scale * np.arctan(f * u)
            ayp = scale * np.arctanh(f * v)
    cos, sin = math.cos(phi), math.sin(phi)
    return cos * axp - sin * ayp, sin * axp + cos * ayp


def sie_potential(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    theta_e: float,
    e1: float,
    e2: float,
    center_x: float = 0.0,
    center_y: float = 0.0,
) -> FloatArray:
    """Lensing potential of an SIE in arcsec^2 (psi = r . alpha for an isothermal profile)."""
    ax, ay = sie_deflection(
        x, y, theta_e=theta_e, e1=e1, e2=e2, center_x=center_x, center_y=center_y
    )
    dx = _as_float(x) - center_x
    dy = _as_float(y) - center_y
    return np.asarray(dx * ax + dy * ay, dtype=np.float64)


def sie_convergence(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    theta_e: float,
    e1: float,
    e2: float,
    center_x: float = 0.0,
    center_y: float = 0.0,
) -> FloatArray:
    """Convergence kappa = theta_E / (2 sqrt(q x'^2 + y'^2/q)) (dimensionless)."""
    r = elliptical_radius(x, y, e1=e1, e2=e2, center_x=center_x, center_y=center_y)
    with np.errstate(divide="ignore"):
        return theta_e / (2.0 * r)


def sie_hessian(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    theta_e: float,
    e1: float,
    e2: float,
    center_x: float = 0.0,
    center_y: float = 0.0,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Second derivatives (f_xx, f_xy, f_yy) of the SIE potential (dimensionless).

    Isothermal: gamma1 = -kappa cos 2t, gamma2 = -kappa sin 2t, t the polar angle about the centre.
    """
    kappa = sie_convergence(
        x, y, theta_e=theta_e, e1=e1, e2=e2, center_x=center_x, center_y=center_y
    )
    dx = _as_float(x) - center_x
    dy = _as_float(y) - center_y
    r2 = dx * dx + dy * dy
    with np.errstate(divide="ignore", invalid="ignore"):
        cos2t = (dx * dx - dy * dy) / r2
        sin2t = 2.0 * dx * dy / r2
    gamma1 = -kappa * cos2t
    gamma2 = -kappa * sin2t
    return kappa + gamma1, gamma2, kappa - gamma1


# --- external shear ---------------------------------------------------------------------------


def shear_deflection(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    gamma1: float,
    gamma2: float,
    ra_0: float = 0.0,
    dec_0: float = 0.0,
) -> tuple[FloatArray, FloatArray]:
    """Deflection of an external shear whose deflection vanishes at (ra_0, dec_0); arcsec."""
    u = _as_float(x) - ra_0
    v = _as_float(y) - dec_0
    return gamma1 * u + gamma2 * v, gamma2 * u - gamma1 * v


def shear_potential(
    x: npt.ArrayLike,
    y: npt.ArrayLike,
    *,
    gamma1: float,
    gamma2: float,
    ra_0: float = 0.0,
    dec_0: float = 0.0,
) -> FloatArray:
    """psi = gamma1 (u^2 - v^2)/2 + gamma2 u v in arcsec^2."""
    u = _as_float(x) - ra_0
    v = _as_float(y) - dec_0
    return 0.5 * gamma1 * (u * u - v * v) + gamma2 * u * v


# --- Sersic -----------------------------------------------------------------------------------


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
    r2 = _elliptical_radius2(x, y, e1, e2, center_x, center_y)
    np.maximum(r2, R_FLOOR_ARCSEC**2, out=r2)
    b = sersic_b_n(n_sersic)
    return amp * np.exp(b - b * (r2 * (1.0 / r_sersic**2)) ** (0.5 / n_sersic))


# --- mass profiles ----------------------------------------------------------------------------


@runtime_checkable
class MassProfile(Protocol):
    """A deflector: potential (arcsec^2), deflection (arcsec), Hessian (f_xx, f_xy, f_yy)."""

    def potential(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray: ...

    def deflection(self, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]: ...

    def hessian(
        self, x: npt.ArrayLike, y: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray]: ...


@dataclass(frozen=True)
class SIE:
    """Singular isothermal ellipsoid: theta_e (arcsec, intermediate axis), e1, e2, centre."""

    theta_e: float
    e1: float = 0.0
    e2: float = 0.0
    center_x: float = 0.0
    center_y: float = 0.0

    def _kw(self) -> dict[str, float]:
        return {
            "theta_e": self.theta_e,
            "e1": self.e1,
            "e2": self.e2,
            "center_x": self.center_x,
            "center_y": self.center_y,
        }

    def potential(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Lensing potential, arcsec^2."""
        return sie_potential(x, y, **self._kw())

    def deflection(self, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Deflection (alpha_x, alpha_y), arcsec."""
        return sie_deflection(x, y, **self._kw())

    def hessian(
        self, x: npt.ArrayLike, y: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(f_xx, f_xy, f_yy)."""
        return sie_hessian(x, y, **self._kw())

    def convergence(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """kappa."""
        return sie_convergence(x, y, **self._kw())

    @property
    def q(self) -> float:
        """Axis ratio b/a."""
        return ellipticity_to_q_phi(self.e1, self.e2)[0]

    @property
    def phi(self) -> float:
        """Major-axis angle, radians."""
        return ellipticity_to_q_phi(self.e1, self.e2)[1]


@dataclass(frozen=True)
class ExternalShear:
    """External shear (gamma1, gamma2) whose deflection vanishes at (ra_0, dec_0)."""

    gamma1: float
    gamma2: float
    ra_0: float = 0.0
    dec_0: float = 0.0

    def potential(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Lensing potential, arcsec^2."""
        return shear_potential(
            x, y, gamma1=self.gamma1, gamma2=self.gamma2, ra_0=self.ra_0, dec_0=self.dec_0
        )

    def deflection(self, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Deflection (alpha_x, alpha_y), arcsec."""
        return shear_deflection(
            x, y, gamma1=self.gamma1, gamma2=self.gamma2, ra_0=self.ra_0, dec_0=self.dec_0
        )

    def hessian(
        self, x: npt.ArrayLike, y: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """(f_xx, f_xy, f_yy): constant (gamma1, gamma2, -gamma1)."""
        zero = np.zeros_like(_as_float(x))
        return zero + self.gamma1, zero + self.gamma2, zero - self.gamma1

    @property
    def strength(self) -> float:
        """|gamma|."""
        return math.hypot(self.gamma1, self.gamma2)

    @property
    def angle(self) -> float:
        """Shear angle atan2(gamma2, gamma1)/2, radians."""
        return 0.5 * math.atan2(self.gamma2, self.gamma1)


@dataclass(frozen=True)
class LensModel:
    """A sum of mass profiles: deflections and Hessians add."""

    profiles: tuple[MassProfile, ...]

    def __post_init__(self) -> None:
        if not self.profiles:
            raise SimulationError("a LensModel needs at least one mass profile")

    def potential(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Total potential, arcsec^2."""
        parts = [p.potential(x, y) for p in self.profiles]
        return functools.reduce(np.add, parts)

    def deflection(self, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Total deflection, arcsec."""
        ax, ay = self.profiles[0].deflection(x, y)
        for p in self.profiles[1:]:
            dx, dy = p.deflection(x, y)
            ax = ax + dx
            ay = ay + dy
        return ax, ay

    def hessian(
        self, x: npt.ArrayLike, y: npt.ArrayLike
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Total (f_xx, f_xy, f_yy)."""
        fxx, fxy, fyy = self.profiles[0].hessian(x, y)
        for p in self.profiles[1:]:
            a, b, c = p.hessian(x, y)
            fxx, fxy, fyy = fxx + a, fxy + b, fyy + c
        return fxx, fxy, fyy

    def convergence(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """kappa = (f_xx + f_yy)/2."""
        fxx, _, fyy = self.hessian(x, y)
        return 0.5 * (fxx + fyy)

    def shear(self, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """(gamma1, gamma2) = ((f_xx - f_yy)/2, f_xy)."""
        fxx, fxy, fyy = self.hessian(x, y)
        return 0.5 * (fxx - fyy), fxy

    def det_a(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """det of the lens-equation Jacobian, (1 - kappa)^2 - gamma1^2 - gamma2^2."""
        fxx, fxy, fyy = self.hessian(x, y)
        return (1.0 - fxx) * (1.0 - fyy) - fxy * fxy

    def magnification(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Signed point magnification 1/det_A (negative: saddle-point image)."""
        with np.errstate(divide="ignore"):
            return 1.0 / self.det_a(x, y)

    def ray_shoot(self, x: npt.ArrayLike, y: npt.ArrayLike) -> tuple[FloatArray, FloatArray]:
        """Source-plane position beta = theta - alpha(theta), arcsec."""
        ax, ay = self.deflection(x, y)
        return _as_float(x) - ax, _as_float(y) - ay

    def center(self) -> tuple[float, float]:
        """Centre of the first profile that has one (else the origin)."""
        for p in self.profiles:
            if isinstance(p, SIE):
                return p.center_x, p.center_y
        return 0.0, 0.0

    def einstein_scale(self) -> float:
        """A generous Einstein-radius scale (arcsec) used to size the image search."""
        scale = sum(p.theta_e / math.sqrt(p.q) for p in self.profiles if isinstance(p, SIE))
        shear = sum(p.strength for p in self.profiles if isinstance(p, ExternalShear))
        return max(scale, 1e-3) / max(1.0 - shear, 0.1)

    def image_positions(
        self, source_x: float, source_y: float
    ) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Every image (x, y, signed mu) of a point source; see `find_images`."""
        return find_images(self, source_x, source_y)


def lens_model(model: str, **params: float) -> LensModel:
    """A LensModel from a name such as "SIE" or "SIE+SHEAR" and the reference's parameter names.

    SIE: theta_E (or theta_e), e1, e2, center_x, center_y; SHEAR: gamma_ext1, gamma_ext2, ra_0,
    dec_0.
    """
    profiles: list[MassProfile] = []
    for name in model.split("+"):
        if name not in MASS_PROFILES:
            raise SimulationError(f"unknown mass profile {name!r}; known {sorted(MASS_PROFILES)}")
        if name == "SIE":
            profiles.append(
                SIE(
                    theta_e=params.get("theta_E", params.get("theta_e", 1.0)),
                    e1=params.get("e1", 0.0),
                    e2=params.get("e2", 0.0),
                    center_x=params.get("center_x", 0.0),
                    center_y=params.get("center_y", 0.0),
                )
            )
        else:
            profiles.append(
                ExternalShear(
                    gamma1=params.get("gamma_ext1", 0.0),
                    gamma2=params.get("gamma_ext2", 0.0),
                    ra_0=params.get("ra_0", 0.0),
                    dec_0=params.get("dec_0", 0.0),
                )
            )
    return LensModel(tuple(profiles))


# --- point-source images ----------------------------------------------------------------------


def _newton_images(
    lens: LensModel, x: FloatArray, y: FloatArray, sx: float, sy: float, scale: float
) -> tuple[FloatArray, FloatArray]:
    """Newton iterations of the lens equation from starting points; keeps those that converge."""
    ok = np.ones(x.shape, dtype=bool)
    for _ in range(60):
        bx, by = lens.ray_shoot(x, y)
        rx, ry = bx - sx, by - sy
        fxx, fxy, fyy = lens.hessian(x, y)
        a11, a22, a12 = 1.0 - fxx, 1.0 - fyy, -fxy
        det = a11 * a22 - a12 * a12
        with np.errstate(divide="ignore", invalid="ignore"):
            dx = (a22 * rx - a12 * ry) / det
            dy = (-a12 * rx + a11 * ry) / det
        step = np.hypot(dx, dy)
        limit = 0.2 * scale
        shrink = np.where(step > limit, limit / np.maximum(step, 1e-300), 1.0)
        x = x - dx * shrink
        y = y - dy * shrink
        ok &= np.isfinite(x) & np.isfinite(y)
        x = np.where(ok, x, 0.0)
        y = np.where(ok, y, 0.0)
        if np.all(step[ok] < 1e-15 * max(scale, 1.0)):
            break
    bx, by = lens.ray_shoot(x, y)
    resid = np.hypot(bx - sx, by - sy)
    good = ok & (resid < 1e-10 * max(scale, 1.0))
    return x[good], y[good]


def _cells_search(
    lens: LensModel,
    sx: float,
    sy: float,
    cells: FloatArray,
    n_r: int,
    n_t: int,
    centre: tuple[float, float],
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Triangle test of polar cells (C, 4: r_lo, r_hi, t_lo, t_hi) split into n_r x n_t sub-cells.

    Returns start points of the triangles holding the source (image plane) and the sub-cells
    that straddle a critical curve near the source (to search again, finer).
    """
    c = cells.shape[0]
    fr = np.linspace(0.0, 1.0, n_r + 1)
    ft = np.linspace(0.0, 1.0, n_t + 1)
    log_lo, log_hi = np.log(cells[:, 0]), np.log(cells[:, 1])
    r = np.exp(log_lo[:, None] + (log_hi - log_lo)[:, None] * fr[None, :])  # (C, n_r+1)
    t = cells[:, 2:3] + (cells[:, 3] - cells[:, 2])[:, None] * ft[None, :]  # (C, n_t+1)
    xv = centre[0] + r[:, :, None] * np.cos(t[:, None, :])
    yv = centre[1] + r[:, :, None] * np.sin(t[:, None, :])
    bx, by = lens.ray_shoot(xv, yv)
    det = lens.det_a(xv, yv)
    px, py = bx - sx, by - sy  # source at the origin of this frame

    def corners(a: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray, FloatArray]:
        return a[:, :-1, :-1], a[:, 1:, :-1], a[:, 1:, 1:], a[:, :-1, 1:]

    starts_x: list[FloatArray] = []
    starts_y: list[FloatArray] = []
    q = [corners(a) for a in (px, py, xv, yv)]
    for tri in ((0, 1, 2), (0, 2, 3)):
        ax, bx_, cx = (q[0][i] for i in tri)
        ay, by_, cy = (q[1][i] for i in tri)
        d1 = ax * by_ - ay * bx_
        d2 = bx_ * cy - by_ * cx
        d3 = cx * ay - cy * ax
        inside = ((d1 >= 0) & (d2 >= 0) & (d3 >= 0)) | ((d1 <= 0) & (d2 <= 0) & (d3 <= 0))
        total = d1 + d2 + d3
        with np.errstate(divide="ignore", invalid="ignore"):
            # barycentric weights of the source in the mapped triangle -> image-plane guess
            wa, wb, wc = d2 / total, d3 / total, d1 / total
        wa, wb, wc = (np.where(np.isfinite(w), w, 1.0 / 3.0) for w in (wa, wb, wc))
        ix, iy = (q[2][i] for i in tri), (q[3][i] for i in tri)
        gx = wa * next(ix) + wb * next(ix) + wc * next(ix)
        gy = wa * next(iy) + wb * next(iy) + wc * next(iy)
        starts_x.append(gx[inside])
        starts_y.append(gy[inside])
    # sub-cells straddling a critical curve whose mapped bounding box (padded) holds the source
    dc = corners(det)
    sign_change = (np.sign(dc[0]) != np.sign(dc[1])) | (np.sign(dc[0]) != np.sign(dc[2]))
    sign_change |= np.sign(dc[0]) != np.sign(dc[3])
    xs, ys = corners(px), corners(py)
    lo_x = np.minimum.reduce(xs)
    hi_x = np.maximum.reduce(xs)
    lo_y = np.minimum.reduce(ys)
    hi_y = np.maximum.reduce(ys)
    pad_x, pad_y = 0.5 * (hi_x - lo_x), 0.5 * (hi_y - lo_y)
    near = (lo_x - pad_x <= 0) & (hi_x + pad_x >= 0) & (lo_y - pad_y <= 0) & (hi_y + pad_y >= 0)
    sel = np.nonzero(sign_change & near)
    sub = (
        np.stack(
            [
                r[sel[0], sel[1]],
                r[sel[0], sel[1] + 1],
                t[sel[0], sel[2]],
                t[sel[0], sel[2] + 1],
            ],
            axis=1,
        )
        if c
        else np.empty((0, 4))
    )
    return np.concatenate(starts_x), np.concatenate(starts_y), sub


def find_images(
    lens: LensModel,
    source_x: float,
    source_y: float,
    *,
    n_radial: int = 160,
    n_angle: int = 360,
    refine_levels: int = 4,
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """All images of a point source: (x, y, signed magnification), sorted by x then y.

    Polar triangle mapping about the lens centre (every triangle whose source-plane image holds
    the source seeds a Newton solve of the lens equation), refined where a cell straddles a
    critical curve near the source so that close pairs of images are not merged.
    """
    centre = lens.center()
    scale = lens.einstein_scale()
    r_max = 2.5 * scale + 2.0 * math.hypot(source_x - centre[0], source_y - centre[1])
    cells = np.array([[1e-4 * scale, r_max, 0.0, 2.0 * math.pi]])
    xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    sub_r, sub_t = n_radial, n_angle
    for _ in range(refine_levels + 1):
        if cells.shape[0] == 0:
            break
        gx, gy, cells = _cells_search(lens, source_x, source_y, cells, sub_r, sub_t, centre)
        xs.append(gx)
        ys.append(gy)
        sub_r = sub_t = 6
        cells = cells[:2000]
    x0, y0 = np.concatenate(xs), np.concatenate(ys)
    x, y = _newton_images(lens, x0, y0, source_x, source_y, scale)
    order = np.lexsort((y, x))
    x, y = x[order], y[order]
    keep_x: list[float] = []
    keep_y: list[float] = []
    for xi, yi in zip(x.tolist(), y.tolist(), strict=True):
        if all(
            math.hypot(xi - a, yi - b) > 1e-7 * scale for a, b in zip(keep_x, keep_y, strict=True)
        ):
            keep_x.append(xi)
            keep_y.append(yi)
    ix, iy = np.array(keep_x), np.array(keep_y)
    order = np.lexsort((iy, ix))
    ix, iy = ix[order], iy[order]
    return ix, iy, lens.magnification(ix, iy)


# --- light profiles ---------------------------------------------------------------------------


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
        q, _ = ellipticity_to_q_phi(self.e1, self.e2)
        r = elliptical_radius(
            x, y, e1=self.e1, e2=self.e2, center_x=self.center_x, center_y=self.center_y
        )
        sq = math.sqrt(q)
        return _sersic_sampling(r, reach / sq, self.amp, self.r_sersic, self.n_sersic, sq)


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
        u, v, _ = _circularised(x, y, d.e1, d.e2, d.center_x, d.center_y)
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
        q, _ = ellipticity_to_q_phi(d.e1, d.e2)
        r = elliptical_radius(x, y, e1=d.e1, e2=d.e2, center_x=d.center_x, center_y=d.center_y)
        near = np.maximum(r - reach / math.sqrt(q), max(self.inner, 0.02 * d.r_sersic))
        # three times the arms' Gaussian width: the arms are far below the PSF, and the
        # integration errors of a pattern of many periods average out in the flux
        width = 3.0 * math.sin(self.pitch) / (self.n_arms * math.sqrt(1.0 + self.contrast))
        peak = 1.0 / float(special.i0e(self.contrast))
        return np.minimum(scale, math.sqrt(q) * near * width), bound * peak


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
class GaussianRing:
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
        u, v, _ = _circularised(x, y, self.e1, self.e2, self.center_x, self.center_y)
        rho = np.hypot(u, v)
        out = self.amp * np.exp(-0.5 * ((rho - self.radius) / self.width) ** 2)
        if self.lopsided:
            out = out * (1.0 + self.lopsided * np.cos(np.arctan2(v, u) - self.angle))
        return out

    def total_flux(self) -> float:
        """Analytic total flux."""
        return 2.0 * math.pi * self.amp * _ring_radial_integral(self.radius, self.width)

    def cusps(self) -> tuple[tuple[float, float], ...]:
        """None: smooth everywhere."""
        return ()

    def extent(self, fraction: float) -> tuple[float, float, float]:
        """Circle beyond the ring's Gaussian edge (major semi-axis)."""
        q, _ = ellipticity_to_q_phi(self.e1, self.e2)
        reach = self.radius + _gaussian_reach(fraction) * self.width
        return self.center_x, self.center_y, reach / math.sqrt(q)

    def sampling(
        self, x: FloatArray, y: FloatArray, reach: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """See LightProfile."""
        q, _ = ellipticity_to_q_phi(self.e1, self.e2)
        sq = math.sqrt(q)
        r = elliptical_radius(
            x, y, e1=self.e1, e2=self.e2, center_x=self.center_x, center_y=self.center_y
        )
        gap = np.maximum(np.abs(r - self.radius) - reach / sq, 0.0)
        bound = self.amp * (1.0 + abs(self.lopsided)) * np.exp(-0.5 * (gap / self.width) ** 2)
        return np.full(r.shape, sq * min(self.width, 0.5 * self.radius)), bound


@dataclass(frozen=True)
class TidalArc:
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
        dx = _as_float(x) - self.center_x
        dy = _as_float(y) - self.center_y
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

    def cusps(self) -> tuple[tuple[float, float], ...]:
        """None: smooth everywhere."""
        return ()

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
class GaussianClumps:
    """Round Gaussian clumps (star-forming knots): positions, sigmas (arcsec) and fluxes."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    sigma: tuple[float, ...]
    flux: tuple[float, ...]

    def surface_brightness(self, x: npt.ArrayLike, y: npt.ArrayLike) -> FloatArray:
        """Flux per arcsec^2."""
        xa, ya = _as_float(x), _as_float(y)
        out = np.zeros(np.broadcast_shapes(xa.shape, ya.shape))
        for cx, cy, s, f in zip(self.x, self.y, self.sigma, self.flux, strict=True):
            r2 = (xa - cx) ** 2 + (ya - cy) ** 2
            out += f / (2.0 * math.pi * s * s) * np.exp(-0.5 * r2 / (s * s))
        return out

    def total_flux(self) -> float:
        """Analytic total flux."""
        return float(sum(self.flux))

    def cusps(self) -> tuple[tuple[float, float], ...]:
        """None: smooth everywhere."""
        return ()

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
        _, yp = _rotated(x, y, phi, d.center_x, d.center_y)
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


@dataclass(frozen=True)
class MoffatPSF:
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
        r2 = (_as_float(x) - self.center_x) ** 2 + (_as_float(y) - self.center_y) ** 2
        norm = self.flux * (self.beta - 1.0) / (math.pi * a * a)
        return norm * (1.0 + r2 / (a * a)) ** (-self.beta)

    def total_flux(self) -> float:
        """flux."""
        return self.flux

    def cusps(self) -> tuple[tuple[float, float], ...]:
        """None: smooth everywhere."""
        return ()

    def extent(self, fraction: float) -> tuple[float, float, float]:
        """Radius where the flux outside, (1 + r^2/alpha^2)^(1 - beta), falls to fraction."""
        radius = self.alpha * math.sqrt(fraction ** (1.0 / (1.0 - self.beta)) - 1.0)
        return self.center_x, self.center_y, radius

    def sampling(
        self, x: FloatArray, y: FloatArray, reach: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """See LightProfile."""
        r = np.hypot(x - self.center_x, y - self.center_y)
        near = np.maximum(r - reach, 0.0)
        a, beta = self.alpha, self.beta
        steepest = np.clip(a, near, r + reach)  # log-slope 2 beta r / (a^2 + r^2) peaks at a
        scale = np.minimum(
            (a * a + steepest**2) / (2.0 * beta * steepest), 0.5 * a / math.sqrt(beta)
        )
        bound = self.surface_brightness(self.center_x + near, self.center_y)
        return scale, bound


@dataclass(frozen=True)
class GaussianPSF:
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
        r2 = (_as_float(x) - self.center_x) ** 2 + (_as_float(y) - self.center_y) ** 2
        return self.flux / (2.0 * math.pi * s * s) * np.exp(-0.5 * r2 / (s * s))

    def total_flux(self) -> float:
        """flux."""
        return self.flux

    def cusps(self) -> tuple[tuple[float, float], ...]:
        """None: smooth everywhere."""
        return ()

    def extent(self, fraction: float) -> tuple[float, float, float]:
        """Radius where the flux outside, exp(-r^2 / 2 sigma^2), falls to fraction."""
        return self.center_x, self.center_y, self.sigma * math.sqrt(-2.0 * math.log(fraction))

    def sampling(
        self, x: FloatArray, y: FloatArray, reach: FloatArray
    ) -> tuple[FloatArray, FloatArray]:
        """See LightProfile."""
        r = np.hypot(x - self.center_x, y - self.center_y)
        near = np.maximum(r - reach, 0.0)
        s2 = self.sigma**2
        scale = np.minimum(s2 / np.maximum(r + reach, 1e-12), 0.5 * self.sigma)
        bound = self.surface_brightness(self.center_x + near, self.center_y)
        return scale, bound


MASS_PROFILES: dict[str, type] = {"SIE": SIE, "SHEAR": ExternalShear}
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
PROFILES: dict[str, type] = {**MASS_PROFILES, **LIGHT_PROFILES}
"""Every profile by name (mass profiles and light profiles)."""


# --- pixel integration and ray shooting -------------------------------------------------------


def pixel_centres(n: int, pixel_scale: float) -> FloatArray:
    """Pixel-centre coordinates (n,) of a grid centred on (0, 0): (i - (n - 1)/2) * scale."""
    return (np.arange(n, dtype=np.float64) - 0.5 * (n - 1)) * pixel_scale


def subpixel_offsets(supersample: int, pixel_scale: float) -> FloatArray:
    """Midpoint-rule offsets ((m + 0.5)/ss - 0.5) * scale, m = 0..ss-1 (arcsec)."""
    m = np.arange(supersample, dtype=np.float64)
    return ((m + 0.5) / supersample - 0.5) * pixel_scale


Brightness = Callable[[FloatArray, FloatArray], FloatArray]


def render_midpoint(
    light: LightProfile | Brightness,
    *,
    n: int,
    pixel_scale: float,
    supersample: int,
    lens: LensModel | None = None,
) -> FloatArray:
    """Flux per pixel (n, n), images[iy, ix], by the midpoint rule on an ss x ss sub-grid.

    With a lens, each sub-pixel ray is shot to the source plane (surface brightness conserved).
    """
    brightness = light.surface_brightness if isinstance(light, LightProfile) else light
    centres = pixel_centres(n, pixel_scale)
    offsets = subpixel_offsets(supersample, pixel_scale)
    xs = (centres[:, None] + offsets[None, :]).ravel()  # (n*ss,) sub-pixel x, pixel-major
    out = np.empty((n, n))
    rows_per_block = max(1, 2_000_000 // (n * supersample * supersample))
    for start in range(0, n, rows_per_block):
        stop = min(n, start + rows_per_block)
        ys = xs[start * supersample : stop * supersample]
        gx, gy = np.meshgrid(xs, ys)
        if lens is not None:
            gx, gy = lens.ray_shoot(gx, gy)
        values = brightness(gx, gy).reshape(stop - start, supersample, n, supersample)
        out[start:stop] = values.mean(axis=(1, 3)) * pixel_scale**2
    return out


SUPERSAMPLE_LEVELS = (1, 2, 3, 4, 6, 8, 12, 16, 24, 32)


@functools.lru_cache(maxsize=16)
def _centre_grid(n: int, pixel_scale: float, dtype: str) -> tuple[FloatArray, FloatArray]:
    """Flattened pixel-centre coordinates (n*n,), row-major [iy, ix]; read-only."""
    c = pixel_centres(n, pixel_scale).astype(dtype)
    gx, gy = np.meshgrid(c, c)
    xc, yc = gx.ravel(), gy.ravel()
    xc.setflags(write=False)
    yc.setflags(write=False)
    return xc, yc


@functools.lru_cache(maxsize=4)
def _gauss_legendre(n: int) -> tuple[FloatArray, FloatArray]:
    nodes, weights = np.polynomial.legendre.leggauss(n)
    return nodes, weights


def cusp_pixel_flux(
    light: LightProfile,
    cusp: tuple[float, float],
    pixel: tuple[float, float],
    pixel_scale: float,
    *,
    power: int = 6,
    n_angle: int = 16,
    n_radius: int = 32,
) -> float:
    """Flux of a light in the square pixel (centre, side) that holds a cusp point.

    Polar coordinates about the cusp, one angular sector per pixel edge, r = r_edge u^power in
    the radius (smooths cusps such as a Sersic profile's r^(1/n)), Gauss-Legendre in angle and u.
    """
    cx, cy = cusp
    half = 0.5 * pixel_scale
    right = pixel[0] + half - cx
    left = cx - (pixel[0] - half)
    top = pixel[1] + half - cy
    bottom = cy - (pixel[1] - half)
    a_tr, a_tl = math.atan2(top, right), math.atan2(top, left)
    a_bl, a_br = math.atan2(bottom, left), math.atan2(bottom, right)
    sectors = np.array(
        [
            (0.0, right, -a_br, a_tr),
            (0.5 * math.pi, top, a_tr, math.pi - a_tl),
            (math.pi, left, math.pi - a_tl, math.pi + a_bl),
            (1.5 * math.pi, bottom, math.pi + a_bl, 2.0 * math.pi - a_br),
        ]
    )
    sectors = sectors[sectors[:, 1] > 0.0]
    t, wt = _gauss_legendre(n_angle)
    v, wv = _gauss_legendre(n_radius)
    u, wu = 0.5 * (v + 1.0), 0.5 * wv
    span = 0.5 * (sectors[:, 3] - sectors[:, 2])
    theta = span[:, None] * t[None, :] + 0.5 * (sectors[:, 3] + sectors[:, 2])[:, None]
    w_theta = span[:, None] * wt[None, :]
    r_edge = sectors[:, 1:2] / np.cos(theta - sectors[:, 0:1])  # (S, n_angle)
    r = r_edge[:, :, None] * u[None, None, :] ** power
    x = cx + r * np.cos(theta)[:, :, None]
    y = cy + r * np.sin(theta)[:, :, None]
    jacobian = r_edge[:, :, None] ** 2 * power * u[None, None, :] ** (2 * power - 1)
    integrand = light.surface_brightness(x, y) * jacobian
    return float(np.sum(w_theta[:, :, None] * wu[None, None, :] * integrand))


@functools.lru_cache(maxsize=64)
def _offsets(supersample: int, pixel_scale: float, dtype: str) -> tuple[FloatArray, FloatArray]:
    """Flattened midpoint sub-pixel offsets (ss*ss,), x fastest; read-only."""
    off = subpixel_offsets(supersample, pixel_scale).astype(dtype)
    ox, oy = np.meshgrid(off, off)
    ox, oy = ox.ravel(), oy.ravel()
    ox.setflags(write=False)
    oy.setflags(write=False)
    return ox, oy


def _refined_rays(
    wanted: FloatArray,
    levels: npt.NDArray[np.int_],
    xc: FloatArray,
    yc: FloatArray,
    pixel_scale: float,
) -> (
    tuple[npt.NDArray[np.intp], npt.NDArray[np.int_], npt.NDArray[np.int_], FloatArray, FloatArray]
    | None
):
    """Midpoint sub-pixel rays of the pixels that want ss > 1 (ss rounded up to a level):
    (pixels, rays per pixel, first ray of each pixel, x, y), or None."""
    level_of = np.searchsorted(levels, np.minimum(wanted, levels[-1]), side="left")
    counts = np.bincount(level_of, minlength=len(levels))
    pixels: list[npt.NDArray[np.intp]] = []
    sizes: list[npt.NDArray[np.int_]] = []
    xs: list[FloatArray] = []
    ys: list[FloatArray] = []
    for li in np.nonzero(counts)[0]:
        ss = int(levels[li])
        if ss <= 1:
            continue
        pix = np.nonzero(level_of == li)[0]
        ox, oy = _offsets(ss, pixel_scale, xc.dtype.name)
        pixels.append(pix)
        sizes.append(np.full(pix.size, ss * ss))
        xs.append((xc[pix, None] + ox[None, :]).ravel())
        ys.append((yc[pix, None] + oy[None, :]).ravel())
    if not pixels:
        return None
    size = np.concatenate(sizes)
    starts = np.cumsum(size) - size
    return np.concatenate(pixels), size, starts, np.concatenate(xs), np.concatenate(ys)


def render_adaptive(
    lights: Sequence[LightProfile],
    *,
    n: int,
    pixel_scale: float,
    lens: LensModel | None = None,
    accuracy: float = 3.0,
    significance: float = 0.02,
    max_supersample: int = 32,
    dtype: npt.DTypeLike = np.float64,
) -> FloatArray:
    """Flux per pixel (len(lights), n, n) with per-pixel adaptive supersampling.

    One ray per pixel first; each pixel's source-plane footprint (pixel size times the largest
    singular value of the lens Jacobian) is compared with the lights' local resolution scale
    there, and the pixel is integrated again with ss = accuracy x footprint / scale (rounded up
    to SUPERSAMPLE_LEVELS, at most max_supersample), lowered by sqrt(bound / (significance x
    brightest first ray)) where the light is faint. With a lens, all lights share the rays.
    Without one, each light is rendered only within its extent (all but 1e-6 of its flux) and
    the pixel holding a cusp is integrated in polar coordinates (cusp_pixel_flux). dtype float32
    renders faster, to about 1e-6 relative.
    """
    kind = np.dtype(dtype).name
    xc, yc = _centre_grid(n, pixel_scale, kind)
    levels = np.array(
        sorted({s for s in SUPERSAMPLE_LEVELS if s < max_supersample} | {max_supersample})
    )

    def wanted(
        light: LightProfile, v: FloatArray, bx: FloatArray, by: FloatArray, foot: FloatArray
    ) -> FloatArray:
        scale, bound = light.sampling(bx, by, 0.7072 * foot)
        ref = max(float(np.max(np.abs(v), initial=0.0)), 1e-300)
        weight = np.sqrt(np.minimum(np.abs(bound) / (significance * ref), 1.0))
        with np.errstate(divide="ignore", invalid="ignore"):
            need: FloatArray = accuracy * weight * foot / scale
        need[~(weight > 0)] = 0.0
        need[np.isnan(need)] = max_supersample
        return need

    values = np.zeros((len(lights), xc.size), dtype=xc.dtype)
    if lens is None:
        # each light on its own pixels: those within the circle holding all but 1e-6 of its flux
        margin = 0.7072 * pixel_scale
        half = 0.5 * n * pixel_scale
        for k, light in enumerate(lights):
            cx, cy, radius = light.extent(1e-6)
            r = radius + margin
            if abs(cx) + r < half and abs(cy) + r < half:
                own = np.nonzero((xc - cx) ** 2 + (yc - cy) ** 2 < r * r)[0]
            else:
                own = np.arange(xc.size)
            px, py = xc[own], yc[own]
            v = light.surface_brightness(px, py)
            need = wanted(light, v, px, py, np.full(px.shape, pixel_scale))
            cusps: list[tuple[int, tuple[float, float]]] = []
            for cusp in light.cusps():
                ix = round(cusp[0] / pixel_scale + 0.5 * (n - 1))
                iy = round(cusp[1] / pixel_scale + 0.5 * (n - 1))
                local = int(np.searchsorted(own, iy * n + ix))
                if 0 <= ix < n and 0 <= iy < n and local < own.size and own[local] == iy * n + ix:
                    cusps.append((local, cusp))
                    need[local] = 0.0  # integrated in polar coordinates below
            rays = _refined_rays(need, levels, px, py, pixel_scale)
            if rays is not None:
                pix, size, starts, sx, sy = rays
                v[pix] = np.add.reduceat(light.surface_brightness(sx, sy), starts) / size
            for local, cusp in cusps:
                centre = (float(px[local]), float(py[local]))
                v[local] = cusp_pixel_flux(light, cusp, centre, pixel_scale) / pixel_scale**2
            values[k, own] = v
    else:
        # the rays are shared: refine wherever any light needs it
        bx, by = lens.ray_shoot(xc, yc)
        fxx, fxy, fyy = lens.hessian(xc, yc)
        stretch = np.abs(1.0 - 0.5 * (fxx + fyy)) + np.hypot(0.5 * (fxx - fyy), fxy)
        stretch = np.where(np.isfinite(stretch), stretch, 1e3)
        footprint = pixel_scale * stretch
        need = np.zeros(xc.shape)
        for k, light in enumerate(lights):
            values[k] = light.surface_brightness(bx, by)
            np.maximum(need, wanted(light, values[k], bx, by, footprint), out=need)
        rays = _refined_rays(need, levels, xc, yc, pixel_scale)
        if rays is not None:
            pix, size, starts, sx, sy = rays
            sx, sy = lens.ray_shoot(sx, sy)
            for k, light in enumerate(lights):
                values[k, pix] = np.add.reduceat(light.surface_brightness(sx, sy), starts) / size
    return values.reshape(len(lights), n, n) * pixel_scale**2


# --- cosmology --------------------------------------------------------------------------------


H0_KMS_MPC = 70.0
OMEGA_M = 0.3
_Z_TABLE_MAX = 10.0


@functools.lru_cache(maxsize=1)
def _cosmology() -> object:
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
