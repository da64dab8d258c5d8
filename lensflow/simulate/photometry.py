"""Catalog photometry of a drawn scene: magnitudes and errors as an aperture would measure them."""

from __future__ import annotations

import math

import numpy as np

from lensflow.simulate.scene import Scene
from lensflow.surveys import Survey, ab_to_njy, njy_to_ab, survey_profile

CALIBRATION_MAG = 0.005
"""1-sigma photometric calibration error (mag), added to every measurement."""


def observe_magnitudes(
    scene: Scene, *, rng: np.random.Generator, survey: Survey | None = None
) -> tuple[dict[str, float], dict[str, float]]:
    """Catalog magnitudes and 1-sigma errors per catalog band, as an aperture would measure them.

    Aperture radius = PSF FWHM + the system's half-light radius; noise from the sky sigma over
    the aperture's pixels and the source's Poisson noise, plus the CALIBRATION_MAG term.
    A source measured below 1 sigma gets nan. survey: the scene's profile (default: lsst).
    """
    survey = survey or survey_profile()
    mags: dict[str, float] = {}
    errors: dict[str, float] = {}
    for band in survey.catalog_bands:
        flux = ab_to_njy(scene.mag.get(band, math.inf))
        radius = scene.psf_fwhm(band, survey) + scene.size_arcsec
        n_pix = math.pi * radius**2 / survey.pixel_scale_arcsec**2
        sigma = math.sqrt(
            n_pix * survey.sky_sigma_njy[band] ** 2 + max(flux, 0.0) / survey.gain(band)
        )
        calib = float(rng.normal(0.0, CALIBRATION_MAG))
        measured = flux * 10.0 ** (-0.4 * calib) + float(rng.normal(0.0, sigma))
        if measured < sigma:
            mags[band], errors[band] = math.nan, math.nan
            continue
        mags[band] = njy_to_ab(measured)
        errors[band] = math.hypot(2.5 / math.log(10.0) * sigma / measured, CALIBRATION_MAG)
    return mags, errors
