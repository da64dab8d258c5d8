"""Light with structure that no analytic profile has, drawn on a grid and passed to lenstronomy
as an INTERPOL light: spiral arms, rings with knots, tidal tails and shells.

A template is an (m, m) array of surface brightness, row iy at y = (iy - (m - 1) / 2) scale
about its centre (lenstronomy's INTERPOL convention), normalised to unit total flux. Sky
coordinates of a template pixel are de-projected into the galaxy's plane with axis ratio q
(q = cos(inclination)) and major-axis angle phi.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from lensflow.independent.population import Light
from lensflow.independent.render import FloatArray
from lensflow.independent.seds import SED

TEMPLATE_PIXELS = 129
"""Pixels per side of a template (odd: one pixel at the centre)."""


def _grid(radius: float) -> tuple[FloatArray, FloatArray, float]:
    scale = 2.0 * radius / (TEMPLATE_PIXELS - 1)
    axis = (np.arange(TEMPLATE_PIXELS) - (TEMPLATE_PIXELS - 1) / 2) * scale
    xx, yy = np.meshgrid(axis, axis)
    return xx, yy, scale


def _in_plane(
    xx: FloatArray, yy: FloatArray, q: float, phi: float
) -> tuple[FloatArray, FloatArray]:
    """Galaxy-plane coordinates (along the major axis, along the de-projected minor axis)."""
    u = math.cos(phi) * xx + math.sin(phi) * yy
    v = -math.sin(phi) * xx + math.cos(phi) * yy
    return u, v / q


def _knots(
    xx: FloatArray, yy: FloatArray, xs: Sequence[float], ys: Sequence[float], sigma: float
) -> FloatArray:
    out = np.zeros_like(xx)
    for x, y in zip(xs, ys, strict=True):
        out += np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2.0 * sigma**2))
    return out


def _to_sky(u: float, v: float, q: float, phi: float) -> tuple[float, float]:
    """Sky offset of a galaxy-plane point (inverse of _in_plane)."""
    v = v * q
    return math.cos(phi) * u - math.sin(phi) * v, math.sin(phi) * u + math.cos(phi) * v


def template_light(
    image: FloatArray,
    scale: float,
    center: tuple[float, float],
    *,
    sed: SED,
    mag_ref: float,
    size: float,
    central: bool = True,
) -> Light:
    """An INTERPOL light of a template (normalised here to unit flux)."""
    image = np.clip(image, 0.0, None)
    image = image / (image.sum() * scale**2)
    kwargs = {
        "image": image,
        "amp": 1.0,
        "center_x": center[0],
        "center_y": center[1],
        "phi_G": 0.0,
        "scale": scale,
    }
    extent = 0.5 * image.shape[0] * scale * math.sqrt(2.0)
    return Light(("INTERPOL",), (kwargs,), sed, mag_ref, center, extent, size, central=central)


def spiral_arms(
    rng: np.random.Generator, *, disc_r: float, q: float, phi: float
) -> tuple[FloatArray, float]:
    """Logarithmic spiral arms with HII-region knots on an exponential disc (template, scale).

    Arms: I = exp(-r / h) ((1 + cos(m (theta - ln(r / h) / tan(p)))) / 2)^k, m 2 (or 3-4),
    pitch p 10-30 deg (Kennicutt 1981, AJ 86, 1847), k 2-6 (arm sharpness), inside 4.5 h.
    """
    h = disc_r / 1.678  # exponential scale length of a disc of half-light radius disc_r
    xx, yy, scale = _grid(5.0 * h)
    u, v = _in_plane(xx, yy, q, phi)
    r = np.hypot(u, v) + 1e-6
    theta = np.arctan2(v, u)
    arms = int(rng.choice([2, 2, 2, 3, 4]))
    pitch = math.radians(float(rng.uniform(10.0, 30.0)))
    sharp = float(rng.uniform(2.0, 6.0))
    phase = float(rng.uniform(0.0, 2.0 * math.pi))
    wave = np.cos(arms * (theta - np.log(r / h) / math.tan(pitch)) - phase)
    image = np.exp(-r / h) * ((1.0 + wave) / 2.0) ** sharp
    image *= (1.0 - np.exp(-((r / (0.4 * h)) ** 2))) * (r < 4.5 * h)
    n_knots = int(rng.integers(3, 12))
    radii = rng.uniform(0.5 * h, 3.0 * h, n_knots)
    which = rng.integers(0, arms, n_knots)
    angles = np.log(radii / h) / math.tan(pitch) + (2.0 * math.pi * which + phase) / arms
    sky = [
        _to_sky(float(rr * math.cos(a)), float(rr * math.sin(a)), q, phi)
        for rr, a in zip(radii, angles, strict=True)
    ]
    knots = _knots(xx, yy, [s[0] for s in sky], [s[1] for s in sky], float(rng.uniform(0.05, 0.12)))
    peak = float(image.max()) or 1.0
    return image + knots * peak * float(rng.uniform(0.3, 1.0)), scale


def ring(
    rng: np.random.Generator, *, radius: float, width: float, q: float, phi: float
) -> tuple[FloatArray, float]:
    """A (lopsided) ring of star formation with knots on it (template, scale).

    I = exp(-(r - R)^2 / 2 w^2) (1 + a cos(theta - theta0)) in the ring's plane, a up to 0.8:
    collisional rings are lopsided and knotty (Appleton & Struck-Marcell 1996, Fund. Cosmic
    Phys. 16, 111).
    """
    xx, yy, scale = _grid(radius + 4.0 * width + 0.3)
    u, v = _in_plane(xx, yy, q, phi)
    r, theta = np.hypot(u, v), np.arctan2(v, u)
    lopsided = float(rng.uniform(0.0, 0.8))
    theta0 = float(rng.uniform(0.0, 2.0 * math.pi))
    image = np.exp(-((r - radius) ** 2) / (2.0 * width**2)) * (
        1.0 + lopsided * np.cos(theta - theta0)
    )
    n_knots = int(rng.integers(2, 9))
    angles = rng.uniform(0.0, 2.0 * math.pi, n_knots)
    sky = [_to_sky(radius * math.cos(a), radius * math.sin(a), q, phi) for a in angles]
    knots = _knots(xx, yy, [s[0] for s in sky], [s[1] for s in sky], 0.7 * width)
    return image + knots * float(rng.uniform(0.5, 2.0)), scale


def tidal_features(
    rng: np.random.Generator, *, origins: Sequence[tuple[float, float]], reach: float
) -> tuple[FloatArray, float, str]:
    """Tidal tails (curved, widening, fading streams from each galaxy) or shells (concentric
    partial arcs about the first galaxy); template about (0, 0), its scale and the kind.

    Tails and shells of galaxy interactions (Toomre & Toomre 1972, ApJ 178, 623; shells:
    Malin & Carter 1983, ApJ 274, 534), reach in arcsec.
    """
    xx, yy, scale = _grid(reach + 1.0)
    image = np.zeros_like(xx)
    if rng.uniform() < 0.6:
        kind = "tails"
        start = float(rng.uniform(0.0, 2.0 * math.pi))
        for k, (ox, oy) in enumerate(origins):
            start += math.pi * (k > 0)
            sweep = float(rng.choice([-1.0, 1.0]) * rng.uniform(math.pi / 3.0, math.pi))
            length = float(rng.uniform(0.5, 1.0)) * reach
            for t in np.linspace(0.0, 1.0, 60):
                rr, a = 0.3 + (length - 0.3) * t, start + sweep * t
                w = 0.12 * (1.0 + 2.0 * t)
                x, y = ox + rr * math.cos(a), oy + rr * math.sin(a)
                image += math.exp(-2.0 * t) * np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * w * w))
    else:
        kind = "shells"
        ox, oy = origins[0]
        side = float(rng.uniform(0.0, 2.0 * math.pi))
        r, a = np.hypot(xx - ox, yy - oy), np.arctan2(yy - oy, xx - ox)
        for k in range(int(rng.integers(1, 4))):
            radius = float(rng.uniform(0.35, 1.0)) * reach
            centre = side + k * math.pi
            span = float(rng.uniform(math.pi / 3.0, 5.0 * math.pi / 6.0))
            offset = np.angle(np.exp(1j * (a - centre)))
            image += np.exp(-((r - radius) ** 2) / (2 * 0.1**2)) * np.exp(
                -((offset / span) ** 2) * 2.0
            )
    return image, scale, kind
