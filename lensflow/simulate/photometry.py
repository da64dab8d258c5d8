"""Catalog photometry of a drawn scene: magnitudes and errors as an aperture would measure them,
and the morphology a pipeline measures on the scene's pixels (PSF magnitudes, sizes,
extendedness; `lensflow.simulate.morphology`)."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lensflow.simulate.morphology import extendedness, measure_morphology
from lensflow.simulate.scene import Scene
from lensflow.surveys import Survey, ab_to_njy, frozen, njy_to_ab, survey_profile

CALIBRATION_MAG = 0.005
"""1-sigma photometric calibration error (mag), added to every measurement."""


@dataclass(frozen=True)
class Photometry:
    """Per catalog band: AB magnitude and its 1-sigma error (nan below 1 sigma), and the
    calibration error (mag) drawn for the band (the PSF magnitudes share it)."""

    mags: Mapping[str, float]
    errors: Mapping[str, float]
    calibration: Mapping[str, float]


@dataclass(frozen=True)
class CatalogEntry:
    """A source's catalog row: per band magnitude, error, PSF magnitude (AB) and PSF-corrected
    size (arcsec); extendedness (1.0 extended, 0.0 point-like, nan unmeasured) and the band it
    was decided in."""

    mags: Mapping[str, float]
    errors: Mapping[str, float]
    psf_mags: Mapping[str, float]
    sizes: Mapping[str, float]
    extendedness: float
    reference_band: str


def observe_photometry(
    scene: Scene, *, rng: np.random.Generator, survey: Survey | None = None
) -> Photometry:
    """Catalog magnitudes, 1-sigma errors and calibration errors per catalog band.

    Aperture radius = PSF FWHM + the system's half-light radius; noise from the sky sigma over
    the aperture's pixels and the source's Poisson noise, plus the CALIBRATION_MAG term.
    A source measured below 1 sigma gets nan. survey: the scene's profile (default: lsst).
    """
    survey = survey or survey_profile()
    mags: dict[str, float] = {}
    errors: dict[str, float] = {}
    calibration: dict[str, float] = {}
    for band in survey.catalog_bands:
        flux = ab_to_njy(scene.mag.get(band, math.inf))
        radius = scene.psf_fwhm(band, survey) + scene.size_arcsec
        n_pix = math.pi * radius**2 / survey.pixel_scale_arcsec**2
        sigma = math.sqrt(
            n_pix * survey.sky_sigma_njy[band] ** 2 + max(flux, 0.0) / survey.gain(band)
        )
        calib = float(rng.normal(0.0, CALIBRATION_MAG))
        calibration[band] = calib
        measured = flux * 10.0 ** (-0.4 * calib) + float(rng.normal(0.0, sigma))
        if measured < sigma:
            mags[band], errors[band] = math.nan, math.nan
            continue
        mags[band] = njy_to_ab(measured)
        errors[band] = math.hypot(2.5 / math.log(10.0) * sigma / measured, CALIBRATION_MAG)
    return Photometry(frozen(mags), frozen(errors), frozen(calibration))


def observe_magnitudes(
    scene: Scene, *, rng: np.random.Generator, survey: Survey | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """Catalog magnitudes and 1-sigma errors per catalog band (`observe_photometry`)."""
    photometry = observe_photometry(scene, rng=rng, survey=survey)
    return dict(photometry.mags), dict(photometry.errors)


def observe_morphology(
    scene: Scene, photometry: Photometry, *, survey: Survey | None = None
) -> CatalogEntry:
    """The catalog row of a scene whose magnitudes are measured: its morphology measured on
    the scene's pixels (deterministic from the scene's seed), the PSF fluxes calibrated as the
    magnitudes are, extendedness decided in the reference band."""
    survey = survey or survey_profile()
    morphology = measure_morphology(scene, survey=survey, calibration=photometry.calibration)
    psf_mags = morphology.psf_magnitudes()
    band = morphology.reference_band
    return CatalogEntry(
        mags=photometry.mags,
        errors=photometry.errors,
        psf_mags=frozen(psf_mags),
        sizes=morphology.size,
        extendedness=extendedness(psf_mags[band], photometry.mags[band]),
        reference_band=band,
    )


def observe_catalog(
    scene: Scene, *, rng: np.random.Generator, survey: Survey | None = None
) -> CatalogEntry:
    """A scene's whole catalog row: magnitudes (`observe_photometry`, from rng) and
    morphology (`observe_morphology`)."""
    photometry = observe_photometry(scene, rng=rng, survey=survey)
    return observe_morphology(scene, photometry, survey=survey)
