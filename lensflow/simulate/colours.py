"""Colour laws of the simulated populations and per-band fluxes from an r flux and colours.

Colours are (g-r, r-i, i-z) in AB magnitudes; fluxes are in nJy per catalog band.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from frozendict import frozendict

from lensflow.simulate.geometry import FloatArray
from lensflow.simulate.survey import frozen

Colours = tuple[float, float, float]
"""(g-r, r-i, i-z), AB mag."""


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
