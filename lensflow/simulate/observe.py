"""Observation of a noiseless scene in one band: PSF, pixels, noise, saturation and artefacts.

Images are (n, n) arrays indexed [iy, ix] in nJy per pixel (pixel centres at
(i - (n - 1)/2) * pixel_scale arcsec). The PSF kernel for extended light is the PSF sampled at
pixel centres (the light is already integrated over pixels); point sources are drawn as the
pixel-integrated PSF. Artefacts are frozen dataclasses in ARTEFACTS; each draws itself in one band
(or several) and says whether it happens before the noise (light, charge) or after (dead pixels).
"""

from __future__ import annotations

import functools
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from scipy.signal import fftconvolve

from lensflow.errors import SimulationError
from lensflow.simulate.coadd_noise import CoaddNoise, correlated_noise
from lensflow.simulate.geometry import FloatArray
from lensflow.simulate.light import GaussianPSF, LightProfile, MoffatPSF
from lensflow.simulate.render import pixel_centres, render_adaptive

MOFFAT_BETA = 3.5
KERNEL_SIZE = 31
"""PSF kernel side in pixels (6.2 arcsec at 0.2 arcsec/pixel; the kernel is renormalised)."""


def _moffat(fwhm: float, center_x: float = 0.0, center_y: float = 0.0) -> LightProfile:
    return MoffatPSF(fwhm=fwhm, beta=MOFFAT_BETA, center_x=center_x, center_y=center_y)


def _gaussian(fwhm: float, center_x: float = 0.0, center_y: float = 0.0) -> LightProfile:
    return GaussianPSF(fwhm=fwhm, center_x=center_x, center_y=center_y)


PSF_MODELS: dict[str, Callable[..., LightProfile]] = {"moffat": _moffat, "gaussian": _gaussian}
"""PSF shapes by name: fwhm (arcsec) and centre -> a unit-flux light profile."""


def psf_profile(
    model: str, fwhm: float, *, center_x: float = 0.0, center_y: float = 0.0
) -> LightProfile:
    """The unit-flux PSF `model` ("moffat" beta 3.5 or "gaussian") of this FWHM (arcsec)."""
    try:
        make = PSF_MODELS[model]
    except KeyError:
        raise SimulationError(f"unknown PSF model {model!r}; known {sorted(PSF_MODELS)}") from None
    if not fwhm > 0.0:
        raise SimulationError(f"PSF FWHM must be > 0 arcsec, got {fwhm}")
    return make(fwhm, center_x, center_y)


@functools.lru_cache(maxsize=256)
def psf_kernel(model: str, fwhm: float, pixel_scale: float, size: int = KERNEL_SIZE) -> FloatArray:
    """PSF sampled at pixel centres on a (size, size) grid (size odd), normalised to sum 1.

    Read-only (cached); for convolving pixel-integrated images.
    """
    if size % 2 != 1:
        raise SimulationError(f"PSF kernel size must be odd, got {size}")
    c = pixel_centres(size, pixel_scale)
    gx, gy = np.meshgrid(c, c)
    kernel = psf_profile(model, fwhm).surface_brightness(gx, gy)
    kernel /= kernel.sum()
    kernel.setflags(write=False)
    return kernel


def point_source_image(
    model: str, fwhm: float, x: float, y: float, *, n: int, pixel_scale: float
) -> FloatArray:
    """A unit-flux point source at (x, y) arcsec: the PSF integrated over pixels, (n, n)."""
    profile = psf_profile(model, fwhm, center_x=x, center_y=y)
    image: FloatArray = render_adaptive([profile], n=n, pixel_scale=pixel_scale)[0]
    return image


def convolve(images: FloatArray, kernels: FloatArray) -> FloatArray:
    """Convolve images (B, n, n) with kernels (B, k, k) (k odd), same size, by real FFTs.

    Zero padding beyond the image edges; output centred on the input (mode "same").
    """
    same = fftconvolve(images, kernels, mode="same", axes=(-2, -1))
    return np.ascontiguousarray(same)


def noise_sigma(image: FloatArray, *, sky_sigma: float, gain: float) -> FloatArray:
    """Per-pixel noise sigma (nJy): sky sigma and the source's Poisson noise at this gain."""
    return np.sqrt(sky_sigma**2 + np.maximum(image, 0.0) / gain)


def add_noise(
    image: FloatArray, *, sky_sigma: float, gain: float, rng: np.random.Generator
) -> FloatArray:
    """image + Gaussian noise of sky sigma (nJy) and source Poisson variance image/gain."""
    return image + rng.standard_normal(image.shape) * noise_sigma(
        image, sky_sigma=sky_sigma, gain=gain
    )


def add_coadd_noise(
    image: FloatArray,
    *,
    sky_sigma: float,
    gain: float,
    rng: np.random.Generator,
    noise: CoaddNoise,
) -> FloatArray:
    """image + noise of the same per-pixel sigma as `add_noise`, correlated as a resampled
    coadd's (`lensflow.simulate.coadd_noise`)."""
    field = correlated_noise(rng, image.shape, noise)
    return image + field * noise_sigma(image, sky_sigma=sky_sigma, gain=gain)


def saturate(image: FloatArray, level: float) -> FloatArray:
    """Clip at the saturation level; the excess charge bleeds up and down its column."""
    out = np.array(image, dtype=np.float64)
    over = out > level
    if not over.any():
        return out
    n_rows = out.shape[0]
    for col in np.unique(np.nonzero(over)[1]):
        column = out[:, col]
        excess = float(np.sum(column[column > level] - level))
        column[column > level] = level
        rows = np.nonzero(column >= level)[0]
        lo, hi = int(rows.min()), int(rows.max())
        while excess > 0.0 and (lo > 0 or hi < n_rows - 1):
            sides = [row for row in (lo - 1, hi + 1) if 0 <= row < n_rows]
            share = excess / len(sides)
            for row in sides:
                take = min(max(level - column[row], 0.0), share)
                column[row] += take
                excess -= take
            lo, hi = max(lo - 1, 0), min(hi + 1, n_rows - 1)
        out[:, col] = column
    return out


# --- artefacts --------------------------------------------------------------------------------


class Artefact(Protocol):
    """Something that is not the sky: drawn into a band's image (nJy), before or after noise."""

    @property
    def after_noise(self) -> bool: ...

    def draw(
        self, image: FloatArray, *, band: str, pixel_scale: float, fwhm: float, psf_model: str
    ) -> FloatArray: ...


def _grid(n: int, pixel_scale: float) -> tuple[FloatArray, FloatArray]:
    c = pixel_centres(n, pixel_scale)
    gx, gy = np.meshgrid(c, c)
    return gx, gy


@dataclass(frozen=True)
class _OneBand(ABC):
    """An artefact of one band's exposures: it changes that band's image and no other."""

    band: str

    def draw(
        self, image: FloatArray, *, band: str, pixel_scale: float, fwhm: float, psf_model: str
    ) -> FloatArray:
        """The image with the artefact drawn where band matches (else the image itself)."""
        if band != self.band:
            return image
        return self._draw_in_band(image, pixel_scale=pixel_scale, fwhm=fwhm)

    @abstractmethod
    def _draw_in_band(self, image: FloatArray, *, pixel_scale: float, fwhm: float) -> FloatArray:
        """The image of the artefact's band (nJy) with the artefact drawn."""


@dataclass(frozen=True)
class CosmicRay(_OneBand):
    """A sharp track of charge (not seen through the PSF) in one band; flux in nJy."""

    x: float
    y: float
    length: float
    angle: float
    flux: float
    after_noise: bool = False

    def _draw_in_band(self, image: FloatArray, *, pixel_scale: float, fwhm: float) -> FloatArray:
        """The image with the track added."""
        n = image.shape[0]
        steps = max(2, int(4 * self.length / pixel_scale) + 1)
        t = np.linspace(-0.5, 0.5, steps) * self.length
        px = (self.x + t * math.cos(self.angle)) / pixel_scale + 0.5 * (n - 1)
        py = (self.y + t * math.sin(self.angle)) / pixel_scale + 0.5 * (n - 1)
        ix, iy = np.rint(px).astype(int), np.rint(py).astype(int)
        ok = (ix >= 0) & (ix < n) & (iy >= 0) & (iy < n)
        out = image.copy()
        np.add.at(out, (iy[ok], ix[ok]), self.flux / steps)
        return out


@dataclass(frozen=True)
class SatelliteTrail(_OneBand):
    """A straight streak across the cutout in one band (one visit), PSF-wide; nJy per arcsec."""

    x: float
    y: float
    angle: float
    flux_per_arcsec: float
    after_noise: bool = False

    def _draw_in_band(self, image: FloatArray, *, pixel_scale: float, fwhm: float) -> FloatArray:
        """The image with the trail added."""
        gx, gy = _grid(image.shape[0], pixel_scale)
        d = -(gx - self.x) * math.sin(self.angle) + (gy - self.y) * math.cos(self.angle)
        sigma = fwhm / 2.3548
        line = np.exp(-0.5 * (d / sigma) ** 2) / (math.sqrt(2.0 * math.pi) * sigma)
        return image + self.flux_per_arcsec * line * pixel_scale**2


@dataclass(frozen=True)
class BadColumn(_OneBand):
    """A detector column gone wrong in one band: hot (adds nJy before noise) or dead (zero)."""

    column: int
    level: float
    dead: bool = False
    start: int = 0
    stop: int = 1 << 30

    @property
    def after_noise(self) -> bool:
        """Dead columns are written over the noise; hot ones carry their own."""
        return self.dead

    def _draw_in_band(self, image: FloatArray, *, pixel_scale: float, fwhm: float) -> FloatArray:
        """The image with the column changed (where the image has it)."""
        if not 0 <= self.column < image.shape[1]:
            return image
        out = image.copy()
        rows = slice(max(self.start, 0), min(self.stop, image.shape[0]))
        if self.dead:
            out[rows, self.column] = 0.0
        else:
            out[rows, self.column] += self.level
        return out


@dataclass(frozen=True)
class StarHalo:
    """Light of a bright star (inside or just outside the cutout) beyond its PSF core.

    A power-law aureole, four diffraction spikes and an out-of-focus ghost (a ring offset from
    the star); flux per band (nJy) is the star's total flux.
    """

    x: float
    y: float
    flux: Mapping[str, float]
    aureole_fraction: float = 0.03
    spike_fraction: float = 0.01
    spike_angle: float = 0.0
    ghost_fraction: float = 0.002
    ghost_dx: float = 0.0
    ghost_dy: float = 0.0
    ghost_radius: float = 2.5
    after_noise: bool = False

    def draw(
        self, image: FloatArray, *, band: str, pixel_scale: float, fwhm: float, psf_model: str
    ) -> FloatArray:
        """The image with the halo of the star added."""
        flux = self.flux.get(band, 0.0)
        if flux <= 0.0:
            return image
        gx, gy = _grid(image.shape[0], pixel_scale)
        dx, dy = gx - self.x, gy - self.y
        r2 = dx * dx + dy * dy
        area = pixel_scale**2
        r0 = 2.0 * fwhm
        aureole = 1.0 / (math.pi * r0 * r0) * (1.0 + r2 / (r0 * r0)) ** -2.0
        out = image + flux * self.aureole_fraction * aureole * area
        sigma = 0.6 * fwhm / 2.3548
        spikes = np.zeros_like(gx)
        for k in range(4):
            a = self.spike_angle + 0.5 * math.pi * k
            along = dx * math.cos(a) + dy * math.sin(a)
            across = -dx * math.sin(a) + dy * math.cos(a)
            decay = 1.0 / (1.0 + (np.maximum(along, 0.0) / (3.0 * fwhm)) ** 2)
            spikes += np.where(along > 0, decay, 0.0) * np.exp(-0.5 * (across / sigma) ** 2)
        norm = 4.0 * math.sqrt(2.0 * math.pi) * sigma * 1.5 * math.pi * fwhm
        out = out + flux * self.spike_fraction * spikes / norm * area
        if self.ghost_fraction > 0.0:
            gr = np.hypot(dx - self.ghost_dx, dy - self.ghost_dy)
            w = 0.12 * self.ghost_radius
            ring = np.exp(-0.5 * ((gr - self.ghost_radius) / w) ** 2)
            ring += 0.35 * (gr < self.ghost_radius)
            ring_norm = 2.0 * math.pi * self.ghost_radius * w * math.sqrt(2.0 * math.pi) + (
                0.35 * math.pi * self.ghost_radius**2
            )
            out = out + flux * self.ghost_fraction * ring / ring_norm * area
        return out


ARTEFACTS: dict[str, type] = {
    "cosmic_ray": CosmicRay,
    "satellite_trail": SatelliteTrail,
    "bad_column": BadColumn,
    "star_halo": StarHalo,
}
"""Artefact kinds by name."""


def observe_band(
    signal: FloatArray,
    *,
    band: str,
    sky_sigma: float,
    gain: float,
    saturation: float,
    pixel_scale: float,
    fwhm: float,
    psf_model: str,
    artefacts: tuple[Artefact, ...],
    rng: np.random.Generator,
    noise: CoaddNoise | None = None,
) -> FloatArray:
    """Noiseless PSF-convolved signal (n, n) -> observed image: artefacts, noise, saturation.

    noise: the coadd's correlated noise (None: white noise).
    """
    for artefact in artefacts:
        if not artefact.after_noise:
            signal = artefact.draw(
                signal, band=band, pixel_scale=pixel_scale, fwhm=fwhm, psf_model=psf_model
            )
    if noise is None:
        image = add_noise(signal, sky_sigma=sky_sigma, gain=gain, rng=rng)
    else:
        image = add_coadd_noise(signal, sky_sigma=sky_sigma, gain=gain, rng=rng, noise=noise)
    image = saturate(image, saturation)
    for artefact in artefacts:
        if artefact.after_noise:
            image = artefact.draw(
                image, band=band, pixel_scale=pixel_scale, fwhm=fwhm, psf_model=psf_model
            )
    return image
