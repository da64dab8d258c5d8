"""Lens mass profiles: the singular isothermal ellipsoid, external shear and their sums.

Pure, vectorised numpy functions per profile (potential in arcsec^2, deflection in arcsec,
Hessian and convergence dimensionless), one frozen dataclass per profile, and `LensModel`, a
sum of profiles that ray-shoots (beta = theta - alpha(theta)) and finds point-source images.
SIE theta_E is in the intermediate-axis convention (shared/reference/README.md).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from lensflow.errors import SimulationError
from lensflow.simulate.geometry import (
    FloatArray,
    as_float,
    centred,
    elliptical_radius,
    ellipticity_to_q_phi,
    rotated,
)
from lensflow.simulate.images import find_images

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
    xp, yp = rotated(x, y, phi, center_x, center_y)
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
    dx, dy = centred(x, y, center_x, center_y)
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
    dx, dy = centred(x, y, center_x, center_y)
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
    u, v = centred(x, y, ra_0, dec_0)
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
    u, v = centred(x, y, ra_0, dec_0)
    return 0.5 * gamma1 * (u * u - v * v) + gamma2 * u * v


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
        zero = np.zeros_like(as_float(x))
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
        return as_float(x) - ax, as_float(y) - ay

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


MASS_PROFILES: dict[str, type] = {"SIE": SIE, "SHEAR": ExternalShear}
"""Mass profiles by the names `lens_model` reads."""
