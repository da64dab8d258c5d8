"""Flat-sky geometry shared by mass and light profiles: ellipticity, frames, elliptical radii.

Conventions (shared/reference/README.md): angles in arcsec on a flat sky; position angles
counter-clockwise from +x in radians; complex ellipticity e1, e2 with q = (1 - c)/(1 + c),
phi = atan2(e2, e1)/2; the elliptical radius sqrt(q x'^2 + y'^2 / q) is an intermediate-axis
radius, shared by the SIE and the Sersic profile. FloatArray and `as_float` are the array
conventions of every profile module (float64, except float32 kept for fast rendering).
"""

from __future__ import annotations

import math
from typing import Protocol

import numpy as np
import numpy.typing as npt

from lensflow.errors import SimulationError

FloatArray = npt.NDArray[np.float64]


def as_float(a: npt.ArrayLike) -> FloatArray:
    """float64 array of a, except that float32 arrays stay float32 (fast image rendering)."""
    arr = np.asarray(a)
    return arr if arr.dtype == np.float32 else arr.astype(np.float64, copy=False)


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


class Elliptical(Protocol):
    """A profile with a complex ellipticity and a centre (arcsec)."""

    @property
    def e1(self) -> float: ...

    @property
    def e2(self) -> float: ...

    @property
    def center_x(self) -> float: ...

    @property
    def center_y(self) -> float: ...


def centred(
    x: npt.ArrayLike, y: npt.ArrayLike, center_x: float, center_y: float
) -> tuple[FloatArray, FloatArray]:
    """Coordinates relative to the centre: (x - center_x, y - center_y)."""
    return as_float(x) - center_x, as_float(y) - center_y


def rotated(
    x: npt.ArrayLike, y: npt.ArrayLike, phi: float, center_x: float, center_y: float
) -> tuple[FloatArray, FloatArray]:
    """Coordinates in the frame whose x' axis lies along phi, about the centre."""
    dx, dy = centred(x, y, center_x, center_y)
    cos, sin = math.cos(phi), math.sin(phi)
    return cos * dx + sin * dy, -sin * dx + cos * dy


def unrotated(
    xp: npt.ArrayLike, yp: npt.ArrayLike, phi: float, center_x: float, center_y: float
) -> tuple[FloatArray, FloatArray]:
    """Sky coordinates of points (x', y') in the frame along phi about the centre (`rotated`
    undone)."""
    xa, ya = as_float(xp), as_float(yp)
    cos, sin = math.cos(phi), math.sin(phi)
    return center_x + cos * xa - sin * ya, center_y + sin * xa + cos * ya


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
    return np.sqrt(elliptical_radius2(x, y, e1, e2, center_x, center_y))


def elliptical_radius2(
    x: npt.ArrayLike, y: npt.ArrayLike, e1: float, e2: float, center_x: float, center_y: float
) -> FloatArray:
    """q x'^2 + y'^2 / q as a quadratic form in (x - cx, y - cy)."""
    q, phi = ellipticity_to_q_phi(e1, e2)
    cos, sin = math.cos(phi), math.sin(phi)
    a = q * cos * cos + sin * sin / q
    b = 2.0 * cos * sin * (q - 1.0 / q)
    c = q * sin * sin + cos * cos / q
    dx, dy = centred(x, y, center_x, center_y)
    return np.maximum((a * dx + b * dy) * dx + c * dy * dy, 0.0)


def elliptical_reach(
    profile: Elliptical, x: FloatArray, y: FloatArray, reach: FloatArray
) -> tuple[FloatArray, FloatArray, float]:
    """The profile's elliptical radius at (x, y), a reach (arcsec) in radius units, and sqrt(q).

    Within `reach` arcsec of a point the elliptical radius changes by at most reach / sqrt(q)
    (along the minor axis), so a scale s in radius units is at least sqrt(q) s arcsec.
    """
    q, _ = ellipticity_to_q_phi(profile.e1, profile.e2)
    r = elliptical_radius(
        x, y, e1=profile.e1, e2=profile.e2, center_x=profile.center_x, center_y=profile.center_y
    )
    sq = math.sqrt(q)
    return r, reach / sq, sq


def circularised(
    x: npt.ArrayLike, y: npt.ArrayLike, e1: float, e2: float, center_x: float, center_y: float
) -> tuple[FloatArray, FloatArray, float]:
    """Area-preserving coordinates u = sqrt(q) x', v = y'/sqrt(q) and q."""
    q, phi = ellipticity_to_q_phi(e1, e2)
    xp, yp = rotated(x, y, phi, center_x, center_y)
    sq = math.sqrt(q)
    return sq * xp, yp / sq, q
