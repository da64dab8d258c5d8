"""Catalog morphology of a drawn scene, measured on its pixels as a survey pipeline measures it.

Per catalog band: a PSF flux (the flux a matched filter of the band's PSF measures at the
source's centroid, as a PSF-fit magnitude), and a size (the source's adaptive second-moment
radius with the PSF's subtracted in quadrature, arcsec); and one extendedness flag.

What is measured is the catalogued light (the components and points the catalog counts, the
neighbours deblended away; a scene with none, an artefact, is its artefacts), rendered in every
catalog band through the scene's PSF with the profile's sky and Poisson noise (a noise stream of
its own, 2, so the magnitudes and the cutouts are drawn as before). The centroid is found once, on
the inverse-variance sum of the bands, and every band is measured there (forced photometry).

- PSF flux: f = sum(P I) / sum(P^2), P the unit-flux pixel-integrated PSF at the centroid on a
  PSF_STAMP-pixel stamp; its variance sum(P^2 var) / sum(P^2)^2 (sky plus source Poisson). A
  point source gives its total flux, so psf - model magnitude is ~0 for a star and grows with
  the size of a galaxy.
- Size: circular adaptive moments (Bernstein & Jarvis 2002, AJ 123, 583): the Gaussian weight's
  variance s^2 is iterated to the object's own, a^2 = 1 / (1/m - 1/s^2) from the weighted
  per-axis variance m; the same on the PSF gives a_psf^2, and size = sqrt(max(a^2 - a_psf^2, 0)),
  the sigma of the Gaussian the PSF-free light resembles (its half-light radius x 1 / 1.18).
- Extendedness: 1 where psf - model magnitude > EXTENDEDNESS_MAG in the reference band, as the
  HSC and Rubin pipelines classify (PSF over CModel flux < 0.985: Bosch et al. 2018, PASJ 70,
  S5, the HSC pipeline; the LSST science pipelines' ClassificationExtendedness measurement,
  fluxRatio 0.985). The reference band is the first of REFERENCE_PRIORITY (the pipelines'
  priority list for an object's multi-band reference band) with PSF signal-to-noise >=
  REFERENCE_SNR, else the best-measured band.

Approximations: the deblending is perfect (the neighbours are simply not drawn), the PSF is
known exactly (the scene's own model and FWHM), the weights are circular, and the model
magnitude the flag compares with is the catalog's aperture magnitude (`observe_photometry`,
total flux plus noise drawn apart from these pixels' noise, the calibration error shared).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from lensflow.simulate.geometry import FloatArray
from lensflow.simulate.observe import observe_band, psf_profile
from lensflow.simulate.render import pixel_centres, subpixel_offsets
from lensflow.simulate.scene import Scene, scene_rng, scene_signal
from lensflow.surveys import Survey, frozen, njy_to_ab, survey_profile

EXTENDEDNESS_MAG = 2.5 * math.log10(1.0 / 0.985)
"""psf - model magnitude (0.0164) above which HSC and Rubin call a source extended."""

REFERENCE_PRIORITY: tuple[str, ...] = ("i", "r", "z", "y", "g", "u")
"""Bands in the order the HSC and Rubin pipelines take one as an object's reference band."""

REFERENCE_SNR = 10.0
"""PSF signal-to-noise a band needs to be the reference band."""

MORPHOLOGY_STREAM = 2
"""The scene's random stream (`scene_rng`) of the morphology's noise (0: parameters, 1: cutout)."""

PSF_STAMP = 21
"""Side (pixels) of the stamp the PSF flux is measured on (4.2 arcsec at 0.2 arcsec per pixel)."""

PSF_SUBSAMPLE = 3
"""Sub-pixels per side over which the PSF template is integrated (the midpoint rule misses
1/9 of the pixel's variance: a PSF flux low by ~0.2 % at 0.2 arcsec pixels and 0.75 arcsec FWHM)."""

PSF_MOMENT_STEP = 0.02
"""FWHM grid (arcsec) on which the PSF's adaptive moment is measured and interpolated."""

MAX_SHIFT_ARCSEC = 1.0
"""How far from the cutout centre a measured centroid may wander (else the centre is kept)."""

WEIGHT_REACH = 4.5
"""Adaptive moments sum pixels within this many weight sigmas of the cutout centre."""

MAX_SIZE_ARCSEC = 4.0
"""Bound on the adaptive weight's sigma (arcsec): noise cannot drive it past the cutout."""


@dataclass(frozen=True)
class Morphology:
    """What a pipeline measures of one source: per catalog band the PSF flux and its 1-sigma
    error (nJy), the PSF-corrected size (arcsec); the reference band and the centroid (arcsec)."""

    psf_flux: Mapping[str, float]
    psf_flux_error: Mapping[str, float]
    size: Mapping[str, float]
    reference_band: str
    centroid: tuple[float, float]

    def psf_magnitudes(self) -> dict[str, float]:
        """AB PSF magnitudes per band; nan where the PSF flux is below its 1-sigma error."""
        return {
            band: njy_to_ab(flux) if flux >= self.psf_flux_error[band] else math.nan
            for band, flux in self.psf_flux.items()
        }


def catalog_band_survey(survey: Survey) -> Survey:
    """The survey with every catalog band imaged (for rendering the catalog's bands)."""
    if survey.bands == survey.catalog_bands:
        return survey
    return replace(survey, bands=survey.catalog_bands)


def catalogued_images(scene: Scene, *, survey: Survey | None = None) -> FloatArray:
    """Observed images (catalog bands, n, n) in nJy of the light the catalog counts.

    The scene's catalogued components and points (its artefacts where it has none) through the
    PSF, with sky and Poisson noise from the scene's MORPHOLOGY_STREAM, and saturation.
    """
    survey = catalog_band_survey(survey or survey_profile())
    components = [c for c in scene.components if c.in_catalog]
    points = [p for p in scene.points if p.in_catalog]
    artefacts = scene.artefacts if not components and not points else ()
    signal = scene_signal(components, points, scene, survey)
    rng = scene_rng(scene.seed, scene.kind, MORPHOLOGY_STREAM)
    return np.stack(
        [
            observe_band(
                signal[k],
                band=band,
                sky_sigma=survey.sky_sigma_njy[band],
                gain=survey.gain(band),
                saturation=survey.saturation_njy,
                pixel_scale=survey.pixel_scale_arcsec,
                fwhm=scene.psf_fwhm(band, survey),
                psf_model=scene.psf_model,
                artefacts=artefacts,
                rng=rng,
            )
            for k, band in enumerate(survey.bands)
        ]
    )


def pixel_psf(
    model: str, fwhm: float, x: float, y: float, *, n: int, pixel_scale: float
) -> FloatArray:
    """A unit-flux PSF at (x, y) arcsec integrated over pixels (PSF_SUBSAMPLE^2 points each) on
    an (n, n) grid centred on (0, 0): its sum is the PSF's flux on the grid (< 1: the wings
    beyond it are not there, so a matched filter with it measures total flux)."""
    sub = subpixel_offsets(PSF_SUBSAMPLE, pixel_scale)
    c = pixel_centres(n, pixel_scale)
    fine = (c[:, None] + sub[None, :]).reshape(-1)
    gx, gy = np.meshgrid(fine, fine)
    values = psf_profile(model, fwhm, center_x=x, center_y=y).surface_brightness(gx, gy)
    summed = values.reshape(n, PSF_SUBSAMPLE, n, PSF_SUBSAMPLE).sum(axis=(1, 3))
    out: FloatArray = summed * (pixel_scale / PSF_SUBSAMPLE) ** 2
    return out


def centroid(
    image: FloatArray, *, sigma: float, pixel_scale: float, iterations: int = 6
) -> tuple[float, float]:
    """Gaussian-weighted centroid (arcsec) of an image (n, n), the weight of sigma (arcsec)
    re-centred at each iteration from the cutout centre; the centre if it wanders off."""
    c = pixel_centres(image.shape[0], pixel_scale)
    x, y = 0.0, 0.0
    for _ in range(iterations):
        w = np.exp(-0.5 * ((c[None, :] - x) ** 2 + (c[:, None] - y) ** 2) / sigma**2) * image
        total = float(w.sum())
        if not total > 0.0:
            return 0.0, 0.0
        x, y = float((w * c[None, :]).sum() / total), float((w * c[:, None]).sum() / total)
        if math.hypot(x, y) > MAX_SHIFT_ARCSEC:
            return 0.0, 0.0
    return x, y


def _stamp(image: FloatArray, size: int) -> FloatArray:
    """The central (size, size) pixels of an image (n, n), n - size even."""
    lo = (image.shape[0] - size) // 2
    return image[lo : lo + size, lo : lo + size]


def psf_flux(
    image: FloatArray,
    variance: FloatArray,
    *,
    psf: FloatArray,
) -> tuple[float, float]:
    """Matched-filter flux (nJy) and its 1-sigma error of an image stamp (k, k) with a unit-flux
    PSF template (k, k) and the pixels' variance (k, k) in nJy^2."""
    p2 = float((psf * psf).sum())
    flux = float((psf * image).sum()) / p2
    error = math.sqrt(float((psf * psf * variance).sum())) / p2
    return flux, error


def adaptive_moment(
    image: FloatArray,
    *,
    centre: tuple[float, float],
    pixel_scale: float,
    start: float,
    iterations: int = 30,
    tolerance: float = 1e-4,
) -> float:
    """Per-axis variance a^2 (arcsec^2) of an image (n, n) by circular adaptive moments.

    The weight exp(-r^2 / 2 s^2) about centre starts at s^2 = start; each step measures the
    weighted per-axis variance m and sets s^2 = 1 / (1/m - 1/s^2), the variance of the Gaussian
    that would give m (exact for a Gaussian). s is kept within [pixel_scale / 2, MAX_SIZE_ARCSEC].
    """
    n = image.shape[0]
    c = pixel_centres(n, pixel_scale)
    r2 = (c[None, :] - centre[0]) ** 2 + (c[:, None] - centre[1]) ** 2
    lo, hi = (0.5 * pixel_scale) ** 2, MAX_SIZE_ARCSEC**2
    s2 = min(max(start, lo), hi)
    for _ in range(iterations):
        half = min(math.ceil(WEIGHT_REACH * math.sqrt(s2) / pixel_scale), n // 2)
        within = slice(n // 2 - half, n // 2 + half + n % 2)
        near, light = r2[within, within], image[within, within]
        w = np.exp(-0.5 * near / s2) * light
        total = float(w.sum())
        if not total > 0.0:
            return s2
        m = 0.5 * float((w * near).sum()) / total
        inverse = 1.0 / m - 1.0 / s2 if m > 0.0 else 1.0 / lo
        new = hi if inverse <= 1.0 / hi else min(max(1.0 / inverse, lo), hi)
        if abs(new - s2) <= tolerance * s2:
            return new
        s2 = new
    return s2


@functools.lru_cache(maxsize=4096)
def _psf_moment_on_grid(model: str, step: int, pixel_scale: float) -> float:
    """psf_moment at FWHM = step x PSF_MOMENT_STEP, over FWHM^2."""
    fwhm = step * PSF_MOMENT_STEP
    n = 2 * math.ceil(4.0 * fwhm / pixel_scale) + 1
    template = pixel_psf(model, fwhm, 0.0, 0.0, n=n, pixel_scale=pixel_scale)
    sigma2 = (fwhm / 2.3548) ** 2
    moment = adaptive_moment(
        template, centre=(0.0, 0.0), pixel_scale=pixel_scale, start=sigma2, tolerance=1e-7
    )
    return moment / fwhm**2


def psf_moment(model: str, fwhm: float, pixel_scale: float) -> float:
    """Adaptive per-axis variance (arcsec^2) of the pixel-integrated PSF, measured as a source's
    (on a FWHM grid of PSF_MOMENT_STEP, the ratio to FWHM^2 interpolated linearly)."""
    at = fwhm / PSF_MOMENT_STEP
    step = max(math.floor(at), 1)
    t = at - step
    low = _psf_moment_on_grid(model, step, pixel_scale)
    high = _psf_moment_on_grid(model, step + 1, pixel_scale)
    return ((1.0 - t) * low + t * high) * fwhm**2


def reference_band(snr: Mapping[str, float], bands: Sequence[str]) -> str:
    """The first of REFERENCE_PRIORITY among bands with snr >= REFERENCE_SNR, else the band of
    the highest snr (a band not in the priority list comes last, in the survey's order)."""
    ordered = [b for b in REFERENCE_PRIORITY if b in bands] + [
        b for b in bands if b not in REFERENCE_PRIORITY
    ]
    for band in ordered:
        if snr.get(band, 0.0) >= REFERENCE_SNR:
            return band
    return max(ordered, key=lambda b: snr.get(b, -math.inf))


def measure_images(
    images: FloatArray,
    *,
    scene: Scene,
    survey: Survey,
    calibration: Mapping[str, float] | None = None,
) -> Morphology:
    """Morphology of observed images (catalog bands, n, n) nJy of a scene's catalogued light.

    calibration: per band the calibration error (mag) the catalog's magnitudes carry; the PSF
    fluxes carry the same (one zero point per band). survey: the scene's profile.
    """
    scale = survey.pixel_scale_arcsec
    bands = survey.catalog_bands
    inverse = np.array([1.0 / survey.sky_sigma_njy[b] ** 2 for b in bands])
    detection = np.tensordot(inverse, images, axes=(0, 0))
    mean_sigma = float(np.mean([scene.psf_fwhm(b, survey) for b in bands])) / 2.3548
    centre = centroid(detection, sigma=mean_sigma, pixel_scale=scale)
    n = images.shape[-1]
    size = min(PSF_STAMP + (n - PSF_STAMP) % 2, n)  # the stamp's pixels are the image's
    fluxes, errors, sizes, snr = {}, {}, {}, {}
    for k, band in enumerate(bands):
        fwhm = scene.psf_fwhm(band, survey)
        image = images[k]
        variance = survey.sky_sigma_njy[band] ** 2 + np.maximum(image, 0.0) / survey.gain(band)
        template = pixel_psf(scene.psf_model, fwhm, *centre, n=size, pixel_scale=scale)
        flux, error = psf_flux(_stamp(image, size), _stamp(variance, size), psf=template)
        if calibration is not None:
            flux *= 10.0 ** (-0.4 * calibration.get(band, 0.0))
        fluxes[band], errors[band], snr[band] = flux, error, flux / error
        a_psf2 = psf_moment(scene.psf_model, fwhm, scale)
        a2 = adaptive_moment(image, centre=centre, pixel_scale=scale, start=a_psf2)
        sizes[band] = math.sqrt(max(a2 - a_psf2, 0.0))
    return Morphology(
        psf_flux=frozen(fluxes),
        psf_flux_error=frozen(errors),
        size=frozen(sizes),
        reference_band=reference_band(snr, bands),
        centroid=centre,
    )


def measure_morphology(
    scene: Scene,
    *,
    survey: Survey | None = None,
    calibration: Mapping[str, float] | None = None,
) -> Morphology:
    """Render a scene's catalogued light in every catalog band and measure its morphology
    (`catalogued_images`, `measure_images`); deterministic from the scene's seed."""
    survey = survey or survey_profile()
    images = catalogued_images(scene, survey=survey)
    return measure_images(images, scene=scene, survey=survey, calibration=calibration)


def extendedness(psf_mag: float, model_mag: float) -> float:
    """1.0 where psf - model > EXTENDEDNESS_MAG, 0.0 where not, nan where either is unmeasured."""
    if not (math.isfinite(psf_mag) and math.isfinite(model_mag)):
        return math.nan
    return 1.0 if psf_mag - model_mag > EXTENDEDNESS_MAG else 0.0
