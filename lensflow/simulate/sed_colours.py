"""Colours from galaxy SED templates at redshift through the survey's filter curves (wide).

Templates: the kcorrect package's (Blanton & Roweis 2007, AJ 133, 734; shipped in its wheel,
`kcorrect/data/templates/`): the five spectra of kcorrect-default-v4 (stellar populations with
their nebular emission lines, which span galaxies from old to starbursting) and its luminous-
red-galaxy template (kcorrect-lrg1-v4). Filter curves: speclite's (shipped in its wheel):
lsst2023 for the lsst profile, hsc2017 for hsc, decam2014 for legacy and any other profile.
Nothing is downloaded: both packages carry their data.

Each template is normalised to unit f_nu at rest-frame 550 nm, shifted to redshift z (observed
wavelength (1 + z) lambda) and integrated through each filter (AB magnitudes, speclite), on a
grid of z in steps of 0.02 up to 4 made once per process and filter set. A galaxy is a mix of
the templates by light fraction at 550 nm: red galaxies the LRG template with up to 30 % of the
old default template, star-forming ones a Dirichlet mix of the default templates favouring the
young ones (`young` moves the mix further towards the youngest). Fluxes add linearly, so the
mix's band fluxes are the weighted sums of the templates' and its colours (g-r, r-i, i-z) follow.
Intergalactic absorption (g at z > 2.5) is not applied.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import NoReturn

import numpy as np
from frozendict import frozendict

from lensflow.errors import SimulationError
from lensflow.simulate.colours import LAW_BANDS, Colours
from lensflow.simulate.geometry import FloatArray
from lensflow.surveys import Survey

FILTER_SETS: Mapping[str, str] = frozendict({"lsst": "lsst2023", "hsc": "hsc2017"})
"""speclite filter group of each shipped profile; any other profile uses DEFAULT_FILTER_SET."""
DEFAULT_FILTER_SET = "decam2014"

Z_GRID = np.round(np.arange(0.0, 4.0 + 1e-9, 0.02), 2)
"""Redshifts at which the templates' band fluxes are tabulated."""
Z_GRID.setflags(write=False)

LRG = 5
"""Index of the luminous-red-galaxy template (after the five default ones)."""
OLD, YOUNG = 0, 1
"""Indices of the oldest and the youngest default template."""
STAR_FORMING_ALPHA = (0.15, 1.0, 0.5, 0.4, 1.5)
"""Dirichlet concentrations of the five default templates' light fractions (star-forming)."""


def _require(module: str) -> NoReturn:
    raise SimulationError(
        f"the wide population's colours need the {module} package (its SED templates or "
        "filter curves ship in its wheel): pip install kcorrect speclite"
    )


@functools.lru_cache(maxsize=1)
def templates() -> tuple[FloatArray, FloatArray]:
    """Rest-frame wavelength (n,) in Angstrom and the six templates' f_lambda (6, n), each
    scaled to unit f_nu at 550 nm."""
    try:
        from importlib import resources

        from astropy.io import fits

        folder = resources.files("kcorrect") / "data" / "templates"
    except ModuleNotFoundError:
        _require("kcorrect")
    spectra = []
    wave = np.empty(0)
    for name in ("kcorrect-default-v4.fits", "kcorrect-lrg1-v4.fits"):
        with fits.open(str(folder / name)) as hdus:
            data = hdus[1].data
            w = np.asarray(data["wave"][0], dtype=np.float64)
            f = np.asarray(data["flux"][0], dtype=np.float64).reshape(-1, w.size)
        if wave.size and not np.array_equal(w, wave):
            f = np.stack([np.interp(wave, w, row) for row in f])
        wave = w if not wave.size else wave
        spectra.append(f)
    flux = np.concatenate(spectra)
    f_nu_550 = np.array([np.interp(5500.0, wave, row) for row in flux]) * 5500.0**2
    flux = flux / f_nu_550[:, None]
    wave.setflags(write=False)
    flux.setflags(write=False)
    return wave, flux


def filter_set(survey: Survey) -> str:
    """The speclite filter group for a profile."""
    return FILTER_SETS.get(survey.name, DEFAULT_FILTER_SET)


@functools.lru_cache(maxsize=8)
def band_flux_grid(group: str) -> FloatArray:
    """Band fluxes (AB maggies, arbitrary common scale) of the templates, (len(Z_GRID), 6, 4):
    the laws' bands g, r, i, z of a speclite filter group at each redshift of Z_GRID.

    maggies = int f_nu R dlambda/lambda / int R dlambda/lambda (a photon-counting band),
    integrated on the templates' own wavelength grid (their lines resolved) with each filter's
    response interpolated at the redshifted wavelengths; `speclite_band_fluxes` is the check.
    """
    wave, flux = templates()
    responses = _responses(group)
    lo = min(float(fw[0]) for fw, _ in responses) / (1.0 + float(Z_GRID[-1]))
    hi = max(float(fw[-1]) for fw, _ in responses)
    dlnw = np.gradient(np.log(wave))
    keep = (wave >= lo) & (wave <= hi)  # the rest-frame range any band sees
    wave, f_nu, dlnw = wave[keep], flux[:, keep] * wave[keep] ** 2, dlnw[keep]
    out = np.empty((Z_GRID.size, flux.shape[0], len(LAW_BANDS)))
    for b, (fw, fr) in enumerate(responses):
        norm = float(np.trapezoid(fr / fw, fw))
        observed = wave[None, :] * (1.0 + Z_GRID[:, None])  # (z, n)
        response = np.interp(observed, fw, fr, left=0.0, right=0.0) * dlnw[None, :]
        out[:, :, b] = response @ f_nu.T / norm
    out.setflags(write=False)
    return out


def _responses(group: str) -> list[tuple[FloatArray, FloatArray]]:
    """(wavelength in Angstrom, response) of a speclite group's g, r, i, z filters."""
    try:
        import speclite.filters
    except ModuleNotFoundError:
        _require("speclite")
    out = []
    for band in LAW_BANDS:
        response = speclite.filters.load_filter(f"{group}-{band}")
        out.append(
            (
                np.asarray(response.wavelength, dtype=np.float64),
                np.asarray(response.response, dtype=np.float64),
            )
        )
    return out


def speclite_band_fluxes(group: str, z: float) -> FloatArray:
    """The templates' band fluxes (6, 4) at z by speclite's own integration (for checks)."""
    import astropy.units as u
    import speclite.filters

    names = [f"{group}-{b}" for b in LAW_BANDS]
    wave, flux = templates()
    table = speclite.filters.load_filters(*names).get_ab_maggies(
        flux * 1e-17 * u.erg / u.s / u.cm**2 / u.Angstrom, wave * (1.0 + z) * u.Angstrom
    )
    return np.stack([np.asarray(table[name], dtype=np.float64) for name in names], axis=-1)


def mix_colours(weights: FloatArray, z: float, survey: Survey) -> Colours:
    """(g-r, r-i, i-z) of a mix of the six templates (light fractions at 550 nm) at redshift z."""
    if not 0.0 <= z <= float(Z_GRID[-1]):
        raise SimulationError(f"SED colours need 0 <= z <= {Z_GRID[-1]}, got {z}")
    grid = band_flux_grid(filter_set(survey))
    t = z / 0.02
    k = min(int(t), Z_GRID.size - 2)
    frac = t - k
    fluxes = (1.0 - frac) * weights @ grid[k] + frac * weights @ grid[k + 1]
    mags = -2.5 * np.log10(fluxes)
    return float(mags[0] - mags[1]), float(mags[1] - mags[2]), float(mags[2] - mags[3])


def sed_red_colours(rng: np.random.Generator, z: float, survey: Survey) -> Colours:
    """Colours of an early-type galaxy at z: the LRG template plus 0-30 % old light."""
    weights = np.zeros(6)
    old = float(rng.uniform(0.0, 0.3))
    weights[LRG], weights[OLD] = 1.0 - old, old
    return mix_colours(weights, z, survey)


def sed_blue_colours(
    rng: np.random.Generator, z: float, survey: Survey, young: float = 0.0
) -> Colours:
    """Colours of a star-forming galaxy (or knot) at z; young in [0, 1] moves the mix towards
    the youngest template."""
    weights = np.zeros(6)
    weights[:5] = rng.dirichlet(STAR_FORMING_ALPHA)
    weights[:5] *= 1.0 - young
    weights[YOUNG] += young
    return mix_colours(weights, z, survey)
