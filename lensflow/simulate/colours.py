"""Colour laws of the simulated populations and per-band fluxes from an r flux and colours.

Colours are (g-r, r-i, i-z) in AB magnitudes; fluxes are in nJy per band. The laws give fluxes
in g, r, i and z (`band_fluxes`); a profile's band of another name (y, u, a narrow band) gets
its flux from those four by `in_bands`, an approximation: the AB magnitude is taken as linear
in log(wavelength) between the two anchors around the band's effective wavelength, and
extrapolated from the nearest pair beyond them (a power law through i and z for y, through g
and r for u). No random number is drawn for it, so adding a band changes no other draw. The
anchors sit at the profile's own effective wavelengths where it has those bands, else at
LAW_WAVELENGTH_NM. Colours from SED templates would be better; this keeps the laws' four
colours exact and makes the other bands smooth continuations of them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import numpy.typing as npt
from frozendict import frozendict

from lensflow.simulate.geometry import FloatArray
from lensflow.surveys import Survey, frozen

Colours = tuple[float, float, float]
"""(g-r, r-i, i-z), AB mag."""

LAW_BANDS: tuple[str, ...] = ("g", "r", "i", "z")
"""The bands the colour laws give fluxes in, blue to red."""

LAW_WAVELENGTH_NM: Mapping[str, float] = frozen({"g": 482.0, "r": 622.0, "i": 755.0, "z": 869.0})
"""Where the laws' bands sit when a profile lacks them (the lsst profile's wavelengths)."""


def _table(*values: float) -> FloatArray:
    """A read-only float64 array."""
    out = np.array(values)
    out.setflags(write=False)
    return out


_RED_Z = _table(0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5)
"""Redshifts of the red-sequence colour and K-correction tables."""
_RED_GR = _table(0.72, 1.1, 1.6, 1.85, 1.95, 2.0, 2.0)
_RED_RI = _table(0.36, 0.45, 0.6, 0.95, 1.2, 1.3, 1.4)
_RED_IZ = _table(0.25, 0.3, 0.35, 0.45, 0.65, 0.8, 0.9)
_K_R = _table(0.0, 0.25, 0.7, 1.2, 1.7, 2.1, 2.6)


def red_colours(rng: np.random.Generator, z: float) -> Colours:
    """(g-r, r-i, i-z) of an early-type galaxy at redshift z, with 0.05 mag scatter."""
    return (
        float(np.interp(z, _RED_Z, _RED_GR) + rng.normal(0.0, 0.05)),
        float(np.interp(z, _RED_Z, _RED_RI) + rng.normal(0.0, 0.05)),
        float(np.interp(z, _RED_Z, _RED_IZ) + rng.normal(0.0, 0.05)),
    )


def red_sequence(z: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Mean (g-r, r-i, i-z) of early-type galaxies at redshifts z (red_colours without scatter)."""
    z = np.asarray(z, dtype=np.float64)
    return (
        np.interp(z, _RED_Z, _RED_GR),
        np.interp(z, _RED_Z, _RED_RI),
        np.interp(z, _RED_Z, _RED_IZ),
    )


def red_k_correction_r(z: float) -> float:
    """r-band K-correction (mag) of an early-type galaxy at redshift z."""
    return float(np.interp(z, _RED_Z, _K_R))


def blue_colours(rng: np.random.Generator, bluer: float = 0.0) -> Colours:
    """(g-r, r-i, i-z) of a star-forming galaxy or knot (bluer > 0: bluer still)."""
    return (
        float(rng.uniform(-0.1, 0.45) - bluer),
        float(rng.uniform(-0.15, 0.35) - 0.5 * bluer),
        float(rng.uniform(-0.15, 0.3)),
    )


def disc_colours(rng: np.random.Generator) -> Colours:
    """(g-r, r-i, i-z) of a nearby disc."""
    return (
        float(rng.uniform(0.35, 0.8)),
        float(rng.uniform(0.15, 0.45)),
        float(rng.uniform(0.05, 0.3)),
    )


def star_colours(rng: np.random.Generator) -> Colours:
    """(g-r, r-i, i-z) along the stellar locus (F to M dwarfs)."""
    gr = float(rng.uniform(0.15, 1.55))
    ri = 0.40 * gr - 0.05 if gr < 1.3 else 0.47 + 2.5 * (gr - 1.3)
    ri += float(rng.normal(0.0, 0.04))
    iz = 0.45 * ri + float(rng.normal(0.0, 0.03))
    return gr, ri, iz


def band_fluxes(flux_r: float, colours: Colours) -> frozendict[str, float]:
    """Per-band fluxes (nJy) of an r flux and colours (g-r, r-i, i-z)."""
    gr, ri, iz = colours
    offsets = {"g": gr, "r": 0.0, "i": -ri, "z": -ri - iz}
    return frozen({b: flux_r * 10.0 ** (-0.4 * m) for b, m in offsets.items()})


def scaled_fluxes(flux: Mapping[str, float], factor: float) -> frozendict[str, float]:
    """Per-band fluxes times a factor."""
    return frozen({b: v * factor for b, v in flux.items()})


def interpolated_flux(flux: Mapping[str, float], wavelength_nm: float, survey: Survey) -> float:
    """Flux (nJy) at a wavelength from the laws' g, r, i, z fluxes: AB magnitude linear in
    log(wavelength) between the anchors around it, else through the nearest pair beyond.

    The anchors' signs are kept (a dust lane's negative flux); anchors of opposite sign, or a
    zero one, give 0.
    """
    log_lam = [math.log(survey.wavelength_nm.get(b, LAW_WAVELENGTH_NM[b])) for b in LAW_BANDS]
    x = math.log(wavelength_nm)
    k = 1 + sum(1 for v in log_lam[1:-1] if x > v)
    a, b = flux[LAW_BANDS[k - 1]], flux[LAW_BANDS[k]]
    if a * b <= 0.0:
        return 0.0
    t = (x - log_lam[k - 1]) / (log_lam[k] - log_lam[k - 1])
    return math.copysign(abs(a) ** (1.0 - t) * abs(b) ** t, a)


def in_bands(flux: Mapping[str, float], survey: Survey) -> Mapping[str, float]:
    """The fluxes with every catalog band of the survey (`interpolated_flux` for those the laws
    lack); the same mapping when none is missing."""
    missing = [b for b in survey.catalog_bands if b not in flux]
    if not missing:
        return flux
    extra = {b: interpolated_flux(flux, survey.wavelength_nm[b], survey) for b in missing}
    return frozen({**flux, **extra})
