"""Light profiles integrated over pixels: the midpoint rule and adaptive supersampling.

A pixel value is the pixel area times the mean surface brightness over the pixel (flux per
pixel); images are (n, n) arrays indexed [iy, ix] with pixel centres at
(i - (n - 1)/2) * pixel_scale arcsec. With a lens, rays are shot to the source plane (surface
brightness is conserved).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from lensflow.simulate.geometry import FloatArray
from lensflow.simulate.light import LightProfile

if TYPE_CHECKING:
    from lensflow.simulate.lensing import LensModel


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


def _flat_grid(c: FloatArray) -> tuple[FloatArray, FloatArray]:
    """Flattened coordinates (m*m,) of the square grid c x c, row-major (x fastest); read-only."""
    gx, gy = np.meshgrid(c, c)
    xs, ys = gx.ravel(), gy.ravel()
    xs.setflags(write=False)
    ys.setflags(write=False)
    return xs, ys


@functools.lru_cache(maxsize=16)
def _centre_grid(n: int, pixel_scale: float, dtype: str) -> tuple[FloatArray, FloatArray]:
    """Flattened pixel-centre coordinates (n*n,), row-major [iy, ix]; read-only."""
    return _flat_grid(pixel_centres(n, pixel_scale).astype(dtype))


@functools.lru_cache(maxsize=4)
def _gauss_legendre(n: int) -> tuple[FloatArray, FloatArray]:
    """Gauss-Legendre nodes and weights on [-1, 1]."""
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
    return _flat_grid(subpixel_offsets(supersample, pixel_scale).astype(dtype))


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
