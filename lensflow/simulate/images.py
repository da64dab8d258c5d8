"""Point-source images of a lens: every solution of the lens equation for a source position.

Polar triangle mapping about the lens centre seeds Newton solves of beta = theta - alpha(theta);
cells straddling a critical curve near the source are searched again, finer.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from lensflow.simulate.geometry import FloatArray

if TYPE_CHECKING:
    from lensflow.simulate.lensing import LensModel


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
