"""Rendering a check-set scene with lenstronomy: supersampled light, PSF, pixels, noise.

Each light is evaluated by lenstronomy's LightModel on a supersampled grid (SUPERSAMPLING x
SUPERSAMPLING points per pixel, at their centres), lensed lights at the positions that
lenstronomy's LensModel ("EPL", "SHEAR") ray-shoots back to the source plane; it is normalised
to unit unlensed flux (lenstronomy's analytic total flux, or a fine source-plane sum), so a
lensed light's sum is its magnification. Per image band the lights are summed with their SED
fluxes, point sources are added (split bilinearly between sub-pixels), the sum is convolved
with the band's PSF on the supersampled grid (lenstronomy's PixelKernelConvolution) and
binned to pixels: the same arithmetic as lenstronomy's ImageModel with
supersampling_convolution, but ray-shooting once for all bands. Noise: the profile's Gaussian
sky sigma per pixel plus source Poisson noise (Gaussian, variance signal / gain).

Pixel (iy, ix) has its centre at x = (ix - (n - 1) / 2) p, y = (iy - (n - 1) / 2) p: row 0 is
the most negative y. Images are (bands, n, n) in nJy per pixel.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from lensflow.independent.population import Deflector, Light, Points, Scene, Seeing
from lensflow.independent.seds import band_fluxes
from lensflow.surveys import Survey

FloatArray = npt.NDArray[np.float64]

SUPERSAMPLING = 3
"""Sub-pixels per pixel and axis."""

KERNEL_RADIUS_FWHM = 3.0
"""The PSF kernel reaches this many FWHM from its centre (and is normalised within)."""

ANALYTIC_FLUX = {"SERSIC", "SERSIC_ELLIPSE", "GAUSSIAN", "GAUSSIAN_ELLIPSE", "INTERPOL"}
"""lenstronomy light models whose total flux lenstronomy computes analytically."""


@dataclass(frozen=True)
class Canvas:
    """The supersampled grid of a cutout: n pixels of `scale` arcsec, ss sub-pixels each."""

    n: int
    scale: float
    ss: int

    @functools.cached_property
    def axis(self) -> FloatArray:
        """Sub-pixel centres along x (= along y), arcsec, (n * ss,)."""
        sub = (np.arange(self.n * self.ss) + 0.5) / self.ss - 0.5
        return np.asarray((sub - (self.n - 1) / 2.0) * self.scale, dtype=np.float64)

    @property
    def step(self) -> float:
        return self.scale / self.ss

    def window(self, center: tuple[float, float], radius: float) -> tuple[slice, slice]:
        """(rows, columns) of the sub-pixels within `radius` of center along each axis."""
        first = self.axis[0]
        out = []
        for c in (center[1], center[0]):
            lo = max(0, math.floor((c - radius - first) / self.step))
            hi = min(self.axis.size, math.ceil((c + radius - first) / self.step) + 1)
            out.append(slice(lo, max(lo, hi)))
        return out[0], out[1]


def canvas_of(survey: Survey, ss: int = SUPERSAMPLING) -> Canvas:
    """The canvas of a survey profile's cutouts."""
    return Canvas(n=survey.cutout_size, scale=survey.pixel_scale_arcsec, ss=ss)


@functools.lru_cache(maxsize=64)
def _light_model(models: tuple[str, ...]) -> Any:
    from lenstronomy.LightModel.light_model import LightModel

    return LightModel(list(models))


def light_model(models: tuple[str, ...]) -> Any:
    """A lenstronomy LightModel (shared, except INTERPOL, which caches its image)."""
    if "INTERPOL" in models:
        from lenstronomy.LightModel.light_model import LightModel

        return LightModel(list(models))
    return _light_model(models)


def surface_brightness(light: Light, x: FloatArray, y: FloatArray) -> FloatArray:
    """The light's surface brightness at source-plane (x, y), clipped at 0 (shapelets dip)."""
    model = light_model(light.models)
    values = model.surface_brightness(x, y, [dict(k) for k in light.kwargs])
    return np.clip(np.asarray(values, dtype=np.float64), 0.0, None)


def unit_flux(light: Light) -> float:
    """Total unlensed flux of the light as its kwargs stand (flux per arcsec^2 x arcsec^2)."""
    if len(light.models) == 1 and light.models[0] in ANALYTIC_FLUX:
        model = light_model(light.models)
        return float(model.total_flux([dict(k) for k in light.kwargs])[0])
    h = min(light.size / 12.0, light.extent / 100.0)
    side = np.arange(-light.extent, light.extent + h / 2, h)
    xx, yy = np.meshgrid(side + light.center[0], side + light.center[1])
    return float(surface_brightness(light, xx.ravel(), yy.ravel()).sum() * h * h)


@dataclass(frozen=True, eq=False)
class Map:
    """A light's supersampled image: flux per sub-pixel for unit unlensed flux, in a window."""

    rows: slice
    cols: slice
    image: FloatArray

    @property
    def total(self) -> float:
        """The map's sum: its magnification when lensed (1 when unlensed and in the frame)."""
        return float(self.image.sum())


def lens_window(deflector: Deflector, lights: Sequence[Light]) -> float:
    """Radius (arcsec) about the deflector within which lensed light can appear."""
    reach = max(
        (
            math.hypot(li.center[0] - deflector.center_x, li.center[1] - deflector.center_y)
            + li.extent
            for li in lights
            if li.lensed
        ),
        default=0.0,
    )
    return 1.6 * deflector.theta_e + reach + 0.5


def light_maps(
    lights: Sequence[Light], *, deflector: Deflector | None, canvas: Canvas
) -> list[Map]:
    """Each light's Map (lensed lights ray-shot through the deflector once, together)."""
    beta: tuple[slice, slice, FloatArray, FloatArray] | None = None
    maps = []
    area = canvas.step**2
    for light in lights:
        if light.lensed:
            if deflector is None:
                raise ValueError("a lensed light needs a deflector")
            if beta is None:
                from lenstronomy.LensModel.lens_model import LensModel

                center = (deflector.center_x, deflector.center_y)
                rows, cols = canvas.window(center, lens_window(deflector, lights))
                xx, yy = np.meshgrid(canvas.axis[cols], canvas.axis[rows])
                bx, by = LensModel(list(Deflector.models)).ray_shooting(
                    xx.ravel(), yy.ravel(), deflector.kwargs()
                )
                beta = (rows, cols, np.asarray(bx), np.asarray(by))
            rows, cols, x, y = beta
        else:
            rows, cols = canvas.window(light.center, light.extent)
            xx, yy = np.meshgrid(canvas.axis[cols], canvas.axis[rows])
            x, y = xx.ravel(), yy.ravel()
        shape = (rows.stop - rows.start, cols.stop - cols.start)
        values = surface_brightness(light, x, y) if x.size else np.zeros(0)
        maps.append(Map(rows, cols, values.reshape(shape) * (area / unit_flux(light))))
    return maps


def psf_kernel(seeing: Seeing, band: str, step: float) -> FloatArray:
    """The band's PSF sampled at sub-pixel centres (odd side), normalised to sum 1."""
    fwhm = seeing.fwhm[band]
    half = max(2, math.ceil(KERNEL_RADIUS_FWHM * fwhm / step))
    axis = np.arange(-half, half + 1) * step
    xx, yy = np.meshgrid(axis, axis)
    if seeing.model == "moffat":
        from lenstronomy.LightModel.Profiles.moffat import Moffat

        alpha = fwhm / (2.0 * math.sqrt(2.0 ** (1.0 / seeing.beta) - 1.0))
        values = Moffat().function(xx, yy, amp=1.0, alpha=alpha, beta=seeing.beta)
    else:
        from lenstronomy.LightModel.Profiles.gaussian import Gaussian

        sigma = fwhm / (2.0 * math.sqrt(2.0 * math.log(2.0)))
        values = Gaussian().function(xx, yy, amp=1.0, sigma=sigma)
    kernel = np.asarray(values, dtype=np.float64).reshape(xx.shape)
    return np.asarray(kernel / kernel.sum(), dtype=np.float64)


def _deposit(image: FloatArray, canvas: Canvas, x: float, y: float, flux: float) -> None:
    """Add a point's flux to the supersampled image, split bilinearly."""
    u = (x - canvas.axis[0]) / canvas.step
    v = (y - canvas.axis[0]) / canvas.step
    i0, j0 = math.floor(v), math.floor(u)
    fv, fu = v - i0, u - j0
    for di, wv in ((0, 1.0 - fv), (1, fv)):
        for dj, wu in ((0, 1.0 - fu), (1, fu)):
            i, j = i0 + di, j0 + dj
            if 0 <= i < image.shape[0] and 0 <= j < image.shape[1]:
                image[i, j] += flux * wv * wu


def band_images(
    lights: Sequence[Light],
    points: Sequence[Points],
    *,
    deflector: Deflector | None,
    seeing: Seeing,
    survey: Survey,
    canvas: Canvas | None = None,
    maps: Sequence[Map] | None = None,
) -> FloatArray:
    """Noiseless images (bands, n, n) in nJy of the lights and point sources (maps: the
    lights' Maps when already made)."""
    from lenstronomy.ImSim.Numerics.convolution import PixelKernelConvolution
    from lenstronomy.Util.image_util import re_size

    canvas = canvas or canvas_of(survey)
    maps = (
        list(maps) if maps is not None else light_maps(lights, deflector=deflector, canvas=canvas)
    )
    wavelengths = {b: survey.wavelength_nm[b] for b in survey.bands}
    light_fluxes = [band_fluxes(li.sed, li.mag_ref, wavelengths) for li in lights]
    point_fluxes = [band_fluxes(p.sed, p.mag_ref, wavelengths) for p in points]
    side = canvas.n * canvas.ss
    out = np.empty((len(survey.bands), canvas.n, canvas.n))
    for k, band in enumerate(survey.bands):
        sub = np.zeros((side, side))
        for m, fluxes in zip(maps, light_fluxes, strict=True):
            sub[m.rows, m.cols] += fluxes[band] * m.image
        for p, fluxes in zip(points, point_fluxes, strict=True):
            for x, y, w in zip(p.x, p.y, p.weights, strict=True):
                _deposit(sub, canvas, x, y, fluxes[band] * w)
        kernel = psf_kernel(seeing, band, canvas.step)
        sub = PixelKernelConvolution(kernel, convolution_type="fft").convolution2d(sub)
        out[k] = re_size(sub, canvas.ss) * canvas.ss**2
    return out


def noise_variance(signal: FloatArray, survey: Survey) -> FloatArray:
    """Per-pixel variance (nJy^2) of images (bands, n, n): sky sigma^2 + signal / gain."""
    sky = np.array([survey.sky_sigma_njy[b] ** 2 for b in survey.bands])[:, None, None]
    gain = np.array([survey.gain(b) for b in survey.bands])[:, None, None]
    return np.asarray(sky + np.clip(signal, 0.0, None) / gain, dtype=np.float64)


def add_noise(signal: FloatArray, *, survey: Survey, rng: np.random.Generator) -> FloatArray:
    """Observed images: the signal plus Gaussian noise of noise_variance."""
    return signal + rng.standard_normal(signal.shape) * np.sqrt(noise_variance(signal, survey))


def render_scene(
    scene: Scene, *, survey: Survey, rng: np.random.Generator, canvas: Canvas | None = None
) -> npt.NDArray[np.float32]:
    """The observed cutout (bands, n, n) float32 in nJy of a scene; rng draws the noise."""
    signal = band_images(
        scene.lights,
        scene.points,
        deflector=scene.deflector,
        seeing=scene.seeing,
        survey=survey,
        canvas=canvas,
    )
    return add_noise(signal, survey=survey, rng=rng).astype(np.float32)
