"""What a check-set cutout is, as data: light components, point sources, the deflector, seeing.

Everything here is drawn by the check set's own population choices (lensflow.independent), each
written beside its draw with its published source, and rendered by
`lensflow.independent.render` with lenstronomy. Angles in arcsec, measured counter-clockwise
from +x; (0, 0) is the cutout's centre; magnitudes AB at REF_NM (observed) unless said.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from frozendict import frozendict

from lensflow.independent.seds import SED
from lensflow.surveys import Survey, frozen


@dataclass(frozen=True, eq=False)
class Light:
    """One light component: lenstronomy light models and their kwargs (amplitudes relative; the
    component is normalised to its magnitude), its SED and unlensed magnitude at REF_NM.

    extent: radius (arcsec) about center outside which its light is neglected; size: its
    characteristic radius; lensed: seen through the deflector; central: part of the cutout's
    main object; magnification: its measured total magnification (lensed lights).
    """

    models: tuple[str, ...]
    kwargs: tuple[Mapping[str, Any], ...]
    sed: SED
    mag_ref: float
    center: tuple[float, float]
    extent: float
    size: float
    lensed: bool = False
    central: bool = True
    magnification: float = 1.0


@dataclass(frozen=True)
class Points:
    """Point sources sharing one SED: positions (arcsec) and flux weights (|mu| of each lensed
    image, or 1), unlensed magnitude mag_ref at REF_NM each."""

    x: tuple[float, ...]
    y: tuple[float, ...]
    weights: tuple[float, ...]
    sed: SED
    mag_ref: float
    central: bool = True


@dataclass(frozen=True)
class Deflector:
    """An elliptical power law (lenstronomy EPL) plus external shear (SHEAR) about its centre.

    theta_e in arcsec (intermediate-axis convention), gamma the 3D slope (2 isothermal).
    """

    theta_e: float
    gamma: float
    e1: float
    e2: float
    center_x: float
    center_y: float
    gamma1: float
    gamma2: float

    models = ("EPL", "SHEAR")

    def kwargs(self) -> list[dict[str, float]]:
        """lenstronomy kwargs_lens of ("EPL", "SHEAR")."""
        cx, cy = self.center_x, self.center_y
        return [
            {
                "theta_E": self.theta_e,
                "gamma": self.gamma,
                "e1": self.e1,
                "e2": self.e2,
                "center_x": cx,
                "center_y": cy,
            },
            {"gamma1": self.gamma1, "gamma2": self.gamma2, "ra_0": cx, "dec_0": cy},
        ]


@dataclass(frozen=True)
class Seeing:
    """A cutout's PSF: model ("moffat" or "gaussian"), Moffat beta, FWHM per image band."""

    model: str
    beta: float
    fwhm: Mapping[str, float]

    def mean_fwhm(self) -> float:
        """Mean FWHM over the image bands (arcsec)."""
        return float(np.mean(list(self.fwhm.values())))


@dataclass(frozen=True, eq=False)
class Scene:
    """A drawn cutout: class, truth, lights, point sources, the deflector (lenses), the seeing."""

    kind: str
    is_lens: bool
    lights: tuple[Light, ...]
    points: tuple[Points, ...]
    deflector: Deflector | None
    seeing: Seeing
    params: Mapping[str, float] = field(default_factory=frozendict)


@dataclass(frozen=True)
class SeeingPrior:
    """Seeing: a common factor on the profile's FWHM, log-normal (ground-based seeing is close
    to log-normal, Racine 1996, PASP 108, 372), clipped, and a per-band scatter; the PSF is a
    Moffat with beta drawn in beta_range (Trujillo et al. 2001, MNRAS 328, 977: 4.765 for
    pure Kolmogorov turbulence, lower in practice) with chance p_moffat, else a Gaussian."""

    sigma_ln: float = 0.12
    clip: tuple[float, float] = (0.75, 1.45)
    band_scatter: float = 0.04
    p_moffat: float = 0.75
    beta_range: tuple[float, float] = (2.5, 4.5)


SEEING = SeeingPrior()


def draw_seeing(rng: np.random.Generator, survey: Survey, prior: SeeingPrior = SEEING) -> Seeing:
    """A cutout's PSF around the profile's nominal FWHM per image band."""
    common = float(np.clip(math.exp(rng.normal(0.0, prior.sigma_ln)), *prior.clip))
    model = "moffat" if rng.uniform() < prior.p_moffat else "gaussian"
    beta = float(rng.uniform(*prior.beta_range))
    fwhm = {
        b: survey.psf_fwhm_arcsec[b]
        * common
        * float(np.clip(1.0 + rng.normal(0.0, prior.band_scatter), 0.85, 1.15))
        for b in survey.bands
    }
    return Seeing(model=model, beta=beta, fwhm=frozen(fwhm))


def ellipticity(q: float, phi: float) -> tuple[float, float]:
    """(e1, e2) of axis ratio q and major-axis angle phi (rad), lenstronomy's convention."""
    from lenstronomy.Util.param_util import phi_q2_ellipticity

    e1, e2 = phi_q2_ellipticity(phi, q)
    return float(e1), float(e2)


def sersic(
    r_sersic: float, n_sersic: float, q: float, phi: float, center: tuple[float, float]
) -> tuple[tuple[str, ...], tuple[dict[str, float], ...]]:
    """An elliptical Sersic (lenstronomy SERSIC_ELLIPSE, amp 1)."""
    e1, e2 = ellipticity(q, phi)
    kwargs = {
        "amp": 1.0,
        "R_sersic": r_sersic,
        "n_sersic": n_sersic,
        "e1": e1,
        "e2": e2,
        "center_x": center[0],
        "center_y": center[1],
    }
    return ("SERSIC_ELLIPSE",), (kwargs,)


def sersic_extent(r_sersic: float, n_sersic: float) -> float:
    """Radius (arcsec) that holds all but a negligible part of a Sersic's light."""
    return r_sersic * (6.0 + 5.0 * max(n_sersic - 1.0, 0.0))


def sersic_light(
    r_sersic: float,
    n_sersic: float,
    q: float,
    phi: float,
    center: tuple[float, float],
    *,
    sed: SED,
    mag_ref: float,
    lensed: bool = False,
    central: bool = True,
) -> Light:
    """A Sersic light component (see sersic)."""
    models, kwargs = sersic(r_sersic, n_sersic, q, phi, center)
    return Light(
        models,
        kwargs,
        sed,
        mag_ref,
        center,
        sersic_extent(r_sersic, n_sersic),
        r_sersic,
        lensed=lensed,
        central=central,
    )


def rayleigh_q(rng: np.random.Generator, scale: float, q_min: float = 0.2) -> float:
    """Axis ratio with 1 - q Rayleigh distributed (Collett 2015, ApJ 811, 20), q >= q_min."""
    for _ in range(100):
        q = 1.0 - float(rng.rayleigh(max(scale, 0.02)))
        if q >= q_min:
            return q
    return q_min


def count_law(rng: np.random.Generator, low: float, high: float, slope: float) -> float:
    """A magnitude in [low, high] with dN/dm ~ 10^(slope m) (number counts)."""
    u = float(rng.uniform())
    a, b = 10.0 ** (slope * low), 10.0 ** (slope * high)
    return math.log10(a + u * (b - a)) / slope
