"""Critical curves of a candidate's predicted lens model (SIE + external shear), for the zoom view.

det A = (1 - f_xx)(1 - f_yy) - f_xy^2 of the model (`lensflow.simulate.lensing`, the simulator's
own SIE and shear, e1/e2 and theta_E conventions included) is evaluated on a grid `oversample`
times finer than the cutout's pixels, and its zero contour traced by contourpy. Points are in
the displayed image's pixel coordinates: x to the right and y down from the top-left corner,
pixel (row i, column j) covering [j, j + 1] x [i, i + 1]; the cutout's +y (arcsec) is up, as the
PNGs show it, and the model's (0, 0) arcsec is the cutout's centre.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeGuard

import numpy as np

from lensflow.errors import LensflowError

LENS_PARAMETERS = ("theta_E", "e1", "e2", "center_x", "center_y")
"""The SIE's parameters a curve needs (candidate column names)."""

SHEAR_PARAMETERS = ("gamma_ext1", "gamma_ext2")
"""External shear, taken as 0 where a candidate has none."""

OVERSAMPLE = 8
"""Grid points per cutout pixel and axis."""


@dataclass(frozen=True)
class CriticalCurve:
    """The critical curves of one lens model: polylines of (x, y) display pixels, each (M, 2)."""

    lines: tuple[np.ndarray, ...]

    def as_lists(self) -> list[list[list[float]]]:
        """The polylines as JSON-ready lists of [x, y], rounded to 1/100 px."""
        return [np.round(line, 2).tolist() for line in self.lines]


def lens_parameters(row: Mapping[str, object]) -> dict[str, float] | None:
    """The SIE + shear parameters of a candidate row (arcsec, dimensionless), or None when one
    of the SIE's is missing or not finite, or theta_E is not positive."""
    found: dict[str, float] = {}
    for name in LENS_PARAMETERS:
        value = row.get(name)
        if not _finite(value):
            return None
        found[name] = float(value)
    for name in SHEAR_PARAMETERS:
        value = row.get(name)
        found[name] = float(value) if _finite(value) else 0.0
    return found if found["theta_E"] > 0.0 else None


def _finite(value: object) -> TypeGuard[float]:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def critical_curve(
    row: Mapping[str, object],
    *,
    size: int,
    pixel_scale_arcsec: float,
    oversample: int = OVERSAMPLE,
) -> CriticalCurve | None:
    """The zero contour of det A over a size x size px cutout at pixel_scale_arcsec ("/px).

    None when the row has no usable lens model (see `lens_parameters`, or |e| >= 1); an empty
    curve when the model's critical curves lie outside the cutout.
    """
    from contourpy import contour_generator

    from lensflow.simulate.lensing import lens_model

    params = lens_parameters(row)
    if params is None or math.hypot(params["e1"], params["e2"]) >= 1.0:
        return None
    try:
        model = lens_model("SIE+SHEAR", **params)
    except LensflowError:
        return None
    n = size * oversample
    step = pixel_scale_arcsec / oversample
    axis = (np.arange(n, dtype=np.float64) - 0.5 * (n - 1)) * step  # arcsec, centres
    gx, gy = np.meshgrid(axis, axis)
    with np.errstate(divide="ignore", invalid="ignore"):
        det = model.det_a(gx, gy)
    det = np.ma.masked_invalid(det)
    pixels = axis / pixel_scale_arcsec + 0.5 * size  # arcsec -> display px (x right)
    lines = contour_generator(x=pixels, y=size - pixels, z=det).lines(0.0)
    return CriticalCurve(tuple(np.asarray(line, np.float64) for line in lines if len(line) > 1))
