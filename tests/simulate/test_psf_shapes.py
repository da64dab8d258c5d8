"""Wide-population PSFs: the kernels have the drawn ellipticity, beta and FWHM, unit flux."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import optimize

from lensflow.errors import SimulationError
from lensflow.simulate.psf_shapes import (
    PSF_SHAPES,
    PSFShape,
    ShapedPSF,
    draw_psf_shapes,
    shaped_kernel,
    shaped_point_image,
)
from lensflow.simulate.render import pixel_centres

SCALE = 0.2
BIG = 301
"""Kernel side (60'') on which the unweighted moments of a beta 2.5 wing converge."""


def _moments_ellipticity(kernel: np.ndarray) -> tuple[float, float]:
    c = pixel_centres(kernel.shape[0], SCALE)
    gx, gy = np.meshgrid(c, c)
    qxx, qyy, qxy = (kernel * gx * gx).sum(), (kernel * gy * gy).sum(), (kernel * gx * gy).sum()
    return float((qxx - qyy) / (qxx + qyy)), float(2.0 * qxy / (qxx + qyy))


def _shapes(n: int, seed: int) -> list[PSFShape]:
    rng = np.random.default_rng(seed)
    return [s for _ in range(n) for s in draw_psf_shapes(rng, ("g", "r", "i")).values()]


@pytest.mark.parametrize("shape", _shapes(4, 3), ids=lambda s: f"{s.model}-{s.beta:.2f}")
def test_kernels_have_the_drawn_ellipticity(shape: PSFShape) -> None:
    kernel = shaped_kernel(shape, 0.75, SCALE, BIG)
    assert kernel.sum() == pytest.approx(1.0, abs=1e-12)
    e1, e2 = _moments_ellipticity(kernel)
    assert e1 == pytest.approx(shape.e1, abs=1.5e-3)
    assert e2 == pytest.approx(shape.e2, abs=1.5e-3)


def test_drawn_shapes_span_the_stated_ranges() -> None:
    shapes = _shapes(200, 8)
    e = np.array([math.hypot(s.e1, s.e2) for s in shapes])
    beta = np.array([s.beta for s in shapes])
    lo, hi = PSF_SHAPES.ellipticity
    assert lo <= e.min() < 0.01 and 0.07 < e.max() <= hi
    assert 2.5 <= beta.min() < 2.6 and 4.9 < beta.max() <= 5.0
    share = np.mean([s.model == "core_wing" for s in shapes])
    assert share == pytest.approx(PSF_SHAPES.core_wing_chance, abs=0.08)


@pytest.mark.parametrize("beta", [2.5, 3.3, 4.2, 5.0])
def test_a_moffat_kernel_has_its_beta_and_fwhm(beta: float) -> None:
    """Fit a Moffat (alpha, beta) to the circularised radial profile of an elliptical kernel."""
    shape = PSFShape("moffat", beta=beta, e1=0.03, e2=-0.05)
    kernel = shaped_kernel(shape, 0.8, SCALE, 61)
    c = pixel_centres(61, SCALE)
    gx, gy = np.meshgrid(c, c)
    rho = ShapedPSF(shape, 0.8)._rho(gx, gy)[0]
    ok = kernel > 1e-6 * kernel.max()

    def log_moffat(r: np.ndarray, log_amp: float, alpha: float, b: float) -> np.ndarray:
        return log_amp - b * np.log1p((r / alpha) ** 2)

    (_, alpha, fitted), _ = optimize.curve_fit(
        log_moffat, rho[ok], np.log(kernel[ok]), p0=(0.0, 0.5, 3.5)
    )
    assert fitted == pytest.approx(beta, rel=1e-3)
    fwhm = 2.0 * alpha * math.sqrt(2.0 ** (1.0 / fitted) - 1.0)
    assert fwhm == pytest.approx(0.8, rel=1e-3)


@pytest.mark.parametrize(
    "shape",
    [
        PSFShape("core_wing", 2.8, 0.05, 0.0, 0.6, 2.5),
        PSFShape("core_wing", 4.5, 0.0, 0.0, 0.85, 1.5),
    ],
)
def test_a_core_wing_psf_has_the_fwhm_asked_for_and_a_wider_wing(shape: PSFShape) -> None:
    psf = ShapedPSF(shape, 0.7)
    q = shape.q
    r = np.linspace(0.0, 1.5, 150_001)
    along = psf.surface_brightness(r, np.zeros_like(r))  # e2 = 0: the major axis is x
    across = psf.surface_brightness(np.zeros_like(r), r)
    half_major = r[np.argmin(np.abs(along - 0.5 * along[0]))]
    half_minor = r[np.argmin(np.abs(across - 0.5 * across[0]))]
    assert 2.0 * math.sqrt(half_major * half_minor) == pytest.approx(0.7, abs=1e-4)
    assert half_minor / half_major == pytest.approx(q, abs=1e-4)
    # the wing: more light far out than a Gaussian of the same FWHM has
    sigma = 0.7 / 2.3548
    far = psf.surface_brightness(np.array([2.0]), np.array([0.0]))[0] / along[0]
    assert far > 10.0 * math.exp(-0.5 * (2.0 * math.sqrt(q) / sigma) ** 2)


def test_a_point_source_image_holds_its_flux_at_its_position() -> None:
    shape = PSFShape("core_wing", 3.0, 0.06, 0.02, 0.7, 2.0)
    image = shaped_point_image(shape, 0.75, 0.33, -0.41, n=64, pixel_scale=SCALE)
    assert image.sum() == pytest.approx(1.0, abs=2e-3)
    c = pixel_centres(64, SCALE)
    assert float((image.sum(axis=0) * c).sum() / image.sum()) == pytest.approx(0.33, abs=5e-3)
    assert float((image.sum(axis=1) * c).sum() / image.sum()) == pytest.approx(-0.41, abs=5e-3)


def test_bad_shapes_are_refused() -> None:
    with pytest.raises(SimulationError, match="unknown PSF shape"):
        PSFShape("airy")
    with pytest.raises(SimulationError, match="beta must be > 1"):
        PSFShape("moffat", beta=1.0)
    with pytest.raises(SimulationError, match="core_fraction"):
        PSFShape("core_wing", core_fraction=1.2)
