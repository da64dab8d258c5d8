"""Drawers of stars and artefacts: point sources, bright-star halos, cosmic rays, satellite
trails, bad columns, and the occasional artefact that any cutout may carry.

Priors are frozen dataclasses beside their drawers (magnitudes AB, lengths in arcsec, fluxes in
nJy, chances per cutout); the draws happen in a fixed order, so a seed gives the same cutout.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from lensflow.errors import SimulationError
from lensflow.simulate.colours import band_fluxes, in_bands, scaled_fluxes, star_colours
from lensflow.simulate.draw_base import DrawContext, Drawn, Range, mag_r_or_draw, uniform
from lensflow.simulate.observe import Artefact, BadColumn, CosmicRay, SatelliteTrail, StarHalo
from lensflow.simulate.render import pixel_centres
from lensflow.simulate.scene import PointSource
from lensflow.surveys import ab_to_njy, frozen, njy_to_ab

UNIT_AMPLITUDE = 1000.0
"""Amplitude of an artefact before it is scaled to its drawn brightness (see `with_amplitude`)."""

# --- stars ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StarHaloPrior:
    """The halo of a bright star: aureole, spikes and ghost as fractions of its flux."""

    ghost_distance: Range = (1.0, 4.0)
    aureole_fraction: Range = (0.01, 0.05)
    spike_fraction: Range = (0.003, 0.02)
    ghost_fraction: Range = (0.0005, 0.003)
    ghost_radius: Range = (1.5, 4.0)


STAR_HALO = StarHaloPrior()


def bright_star_halo(
    ctx: DrawContext,
    x: float,
    y: float,
    flux: Mapping[str, float],
    prior: StarHaloPrior = STAR_HALO,
) -> StarHalo:
    """The halo of a star at (x, y) arcsec with flux per band (nJy; given every band of the
    survey here, as the artefact class measures the halo in each image band)."""
    rng = ctx.rng
    a = float(rng.uniform(0.0, 2.0 * math.pi))
    d = uniform(rng, prior.ghost_distance)
    return StarHalo(
        x=x,
        y=y,
        flux=frozen(in_bands(flux, ctx.survey)),
        aureole_fraction=uniform(rng, prior.aureole_fraction),
        spike_fraction=uniform(rng, prior.spike_fraction),
        spike_angle=float(rng.uniform(0.0, 0.5 * math.pi)),
        ghost_fraction=uniform(rng, prior.ghost_fraction),
        ghost_dx=d * math.cos(a),
        ghost_dy=d * math.sin(a),
        ghost_radius=uniform(rng, prior.ghost_radius),
    )


@dataclass(frozen=True)
class StarPrior:
    """A star on the stellar locus, sometimes with a companion; bright ones have a halo."""

    mag_r: Range = (14.5, 23.0)
    mag_slope: float = 0.2
    companion_chance: float = 0.2
    companion_separation: Range = (0.7, 4.0)
    companion_dmag: Range = (0.0, 3.0)
    companion_blended_within: float = 1.5
    halo_brighter_than: float = 17.5


STAR = StarPrior()


def draw_star(ctx: DrawContext, prior: StarPrior = STAR) -> Drawn:
    """A star (and its companion, catalogued with it when blended)."""
    rng = ctx.rng
    mag = mag_r_or_draw(ctx, prior.mag_r, slope=prior.mag_slope)
    flux = band_fluxes(ab_to_njy(mag), star_colours(rng))
    points = [PointSource(ctx.x0, ctx.y0, flux)]
    artefacts: list[Artefact] = []
    if rng.uniform() < prior.companion_chance:
        sep = uniform(rng, prior.companion_separation)
        a = float(rng.uniform(0.0, 2.0 * math.pi))
        m2 = mag + uniform(rng, prior.companion_dmag)
        points.append(
            PointSource(
                ctx.x0 + sep * math.cos(a),
                ctx.y0 + sep * math.sin(a),
                band_fluxes(ab_to_njy(m2), star_colours(rng)),
                in_catalog=sep < prior.companion_blended_within,
            )
        )
    if mag < prior.halo_brighter_than:
        artefacts.append(bright_star_halo(ctx, ctx.x0, ctx.y0, flux))
    return Drawn([], points=points, artefacts=artefacts, extended=False, size=0.0)


# --- artefacts --------------------------------------------------------------------------------


@dataclass(frozen=True)
class ArtefactShapePrior:
    """Where and how an artefact lies: a central one passes within ~0.1 arcsec of the centre."""

    central_scatter: float = 0.1
    cosmic_ray_length: Range = (0.2, 2.5)
    dead_column_chance: float = 0.5
    partial_column_chance: float = 0.5
    halo_star_distance: Range = (7.0, 12.0)
    central_ghost_fraction: Range = (0.002, 0.01)


ARTEFACT_SHAPE = ArtefactShapePrior()


def random_artefact(
    ctx: DrawContext,
    kind: str,
    band: str,
    central: bool,
    prior: ArtefactShapePrior = ARTEFACT_SHAPE,
) -> Artefact:
    """One artefact of a kind, through the centre when central, of amplitude UNIT_AMPLITUDE."""
    rng = ctx.rng
    half = 0.5 * ctx.survey.cutout_size * ctx.survey.pixel_scale_arcsec
    if central:
        scatter = prior.central_scatter
        x = ctx.x0 + float(rng.normal(0.0, scatter))
        y = ctx.y0 + float(rng.normal(0.0, scatter))
    else:
        x, y = (float(v) for v in rng.uniform(-half, half, size=2))
    angle = float(rng.uniform(0.0, math.pi))
    unit = UNIT_AMPLITUDE
    if kind == "cosmic_ray":
        return CosmicRay(band, x, y, uniform(rng, prior.cosmic_ray_length), angle, unit)
    if kind == "satellite_trail":
        return SatelliteTrail(band, x, y, angle, unit)
    if kind == "bad_column":
        n = ctx.survey.cutout_size
        col = n // 2 - 1 + int(rng.integers(0, 2)) if central else int(rng.integers(0, n))
        dead = (not central) and rng.uniform() < prior.dead_column_chance
        partial = rng.uniform() < prior.partial_column_chance
        start = int(rng.integers(0, n // 2)) if partial else 0
        return BadColumn(band, col, unit, dead=dead, start=start)
    d = uniform(rng, prior.halo_star_distance)
    a = float(rng.uniform(0.0, 2.0 * math.pi))
    star_flux = band_fluxes(unit, star_colours(rng))
    halo = bright_star_halo(ctx, x + d * math.cos(a), y + d * math.sin(a), star_flux)
    if central:
        halo = replace(
            halo,
            ghost_dx=-d * math.cos(a),
            ghost_dy=-d * math.sin(a),
            ghost_fraction=uniform(rng, prior.central_ghost_fraction),
        )
    return halo


def with_amplitude(artefact: Artefact, factor: float) -> Artefact:
    """The artefact with its flux (or level) times factor."""
    if isinstance(artefact, CosmicRay):
        return replace(artefact, flux=artefact.flux * factor)
    if isinstance(artefact, SatelliteTrail):
        return replace(artefact, flux_per_arcsec=artefact.flux_per_arcsec * factor)
    if isinstance(artefact, BadColumn):
        return replace(artefact, level=artefact.level * factor)
    if isinstance(artefact, StarHalo):
        return replace(artefact, flux=scaled_fluxes(artefact.flux, factor))
    raise SimulationError(f"cannot scale artefact {artefact!r}")


def _aperture_flux(ctx: DrawContext, artefact: Artefact, band: str, radius: float) -> float:
    """Flux of an artefact (nJy) inside a circular aperture (arcsec) about the cutout centre."""
    n, scale = ctx.survey.cutout_size, ctx.survey.pixel_scale_arcsec
    image = artefact.draw(
        np.zeros((n, n)), band=band, pixel_scale=scale, fwhm=ctx.fwhm(band), psf_model=ctx.psf_model
    )
    c = pixel_centres(n, scale)
    inside = (c[None, :] - ctx.x0) ** 2 + (c[:, None] - ctx.y0) ** 2 <= radius**2
    return float(image[inside].sum())


ARTEFACT_KINDS = frozen(
    {"cosmic_ray": 0.3, "satellite_trail": 0.25, "bad_column": 0.2, "star_halo": 0.25}
)
"""Chance of each kind for the artefact class."""

ARTEFACT_SIZES = frozen(
    {"cosmic_ray": 0.0, "satellite_trail": 0.5, "bad_column": 0.5, "star_halo": 2.0}
)
"""Size (arcsec) that the catalog's aperture photometry assigns to each artefact kind."""


@dataclass(frozen=True)
class ArtefactPrior:
    """An artefact through the centre, as bright in a 1 arcsec aperture as a faint source."""

    kinds: Mapping[str, float] = ARTEFACT_KINDS
    mag_r: Range = (21.0, 24.5)
    aperture_radius: float = 1.0
    sizes: Mapping[str, float] = ARTEFACT_SIZES


ARTEFACT = ArtefactPrior()


def _nearest_band(wavelength: Mapping[str, float], bands: Sequence[str], band: str) -> str:
    """The band of `bands` nearest in log(wavelength) to `band`."""
    return min(bands, key=lambda b: abs(math.log(wavelength[b] / wavelength[band])))


def draw_artefact(ctx: DrawContext, prior: ArtefactPrior = ARTEFACT) -> Drawn:
    """An artefact scaled to its drawn aperture magnitude; its catalog mags are measured."""
    rng = ctx.rng
    kind = str(rng.choice(tuple(prior.kinds), p=tuple(prior.kinds.values())))
    bands = ctx.survey.bands
    band = "r" if ctx.mag_r is not None and "r" in bands else str(rng.choice(bands))
    artefact = random_artefact(ctx, kind, band, central=True)
    mag = ctx.mag_r if ctx.mag_r is not None else uniform(rng, prior.mag_r)
    ref_band = band if kind != "star_halo" else ("r" if "r" in bands else bands[0])
    radius = prior.aperture_radius
    unit = _aperture_flux(ctx, artefact, ref_band, radius)
    artefact = with_amplitude(artefact, ab_to_njy(mag) / max(unit, 1e-12))
    mags = {
        b: njy_to_ab(_aperture_flux(ctx, artefact, b, radius)) if b in bands else math.inf
        for b in ctx.survey.catalog_bands
    }
    if isinstance(artefact, StarHalo):
        # a catalog band without an image: carry the star's colour over from the image band
        # nearest in wavelength to what the aperture measured there
        for b in (b for b in ctx.survey.catalog_bands if b not in bands):
            near = _nearest_band(ctx.survey.wavelength_nm, bands, b)
            mags[b] = mags.get(near, math.inf) - 2.5 * math.log10(
                artefact.flux[b] / artefact.flux[near]
            )
    return Drawn(
        [],
        artefacts=[artefact],
        extended=kind != "cosmic_ray",
        size=prior.sizes[kind],
        scale_to_mag_r=False,
        mag=mags,
    )


# --- artefacts in any cutout ------------------------------------------------------------------


EXTRA_ARTEFACT_CHANCES = frozen(
    {"cosmic_ray": 0.03, "satellite_trail": 0.01, "bad_column": 0.01, "star_halo": 0.02}
)
"""Chance of each artefact kind anywhere in a cutout of any class."""


@dataclass(frozen=True)
class ExtraArtefactPrior:
    """Chance of each artefact kind anywhere in a cutout of any class, and its amplitude.

    Cosmic rays: 10^u nJy; trails: 10^u nJy / arcsec; bad columns: times the sky sigma per
    pixel; star halos: the AB magnitude of the star.
    """

    chances: Mapping[str, float] = EXTRA_ARTEFACT_CHANCES
    cosmic_ray_log10_flux: Range = (2.5, 4.3)
    trail_log10_flux_per_arcsec: Range = (1.3, 2.8)
    column_over_sky_sigma: Range = (3.0, 30.0)
    star_mag: Range = (10.5, 14.5)


EXTRA_ARTEFACTS = ExtraArtefactPrior()


def _artefact_amplitude(ctx: DrawContext, kind: str, band: str, prior: ExtraArtefactPrior) -> float:
    """A typical amplitude of an artefact kind: CR flux, trail nJy/arcsec, column nJy/pixel,
    bright-star flux (nJy)."""
    rng = ctx.rng
    if kind == "cosmic_ray":
        return float(10.0 ** uniform(rng, prior.cosmic_ray_log10_flux))
    if kind == "satellite_trail":
        return float(10.0 ** uniform(rng, prior.trail_log10_flux_per_arcsec))
    if kind == "bad_column":
        return uniform(rng, prior.column_over_sky_sigma) * ctx.survey.sky_sigma_njy[band]
    return ab_to_njy(uniform(rng, prior.star_mag))


def extra_artefacts(
    ctx: DrawContext, prior: ExtraArtefactPrior = EXTRA_ARTEFACTS
) -> list[Artefact]:
    """Occasional artefacts anywhere in the cutout, whatever the class."""
    rng = ctx.rng
    out: list[Artefact] = []
    for kind, p in prior.chances.items():
        if rng.uniform() < p:
            band = str(rng.choice(ctx.survey.bands))
            artefact = random_artefact(ctx, kind, band, central=False)
            level = _artefact_amplitude(ctx, kind, band, prior)
            out.append(with_amplitude(artefact, level / UNIT_AMPLITUDE))
    return out
