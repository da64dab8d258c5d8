"""Drawers of single galaxies: ellipticals, spirals, face-on and edge-on discs, field galaxies.

Each class has its prior as a frozen dataclass beside its drawer (r magnitudes from the number
counts, sizes in arcsec at r = 18, Sersic indices, axis ratios, flux shares); the drawers take a
DrawContext and return a Drawn. The random draws happen in a fixed order, so a seed gives the
same galaxy bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import NamedTuple

import numpy as np

from lensflow.simulate.colours import (
    band_fluxes,
    blue_colours,
    disc_colours,
    red_colours,
    scaled_fluxes,
)
from lensflow.simulate.draw_base import (
    DrawContext,
    Drawn,
    IntRange,
    Range,
    RedGalaxyPrior,
    RedshiftLaw,
    clipped_ellipticity,
    clumps,
    count_law,
    draw_red_galaxy,
    mag_r_or_draw,
    on_ellipse,
    sersic_light,
    size_law,
    uniform,
)
from lensflow.simulate.scene import Component
from lensflow.simulate.sersic import SersicArms, SersicEllipse, SersicLane
from lensflow.surveys import ab_to_njy, frozen

# --- ellipticals ------------------------------------------------------------------------------


ELLIPTICAL_REDSHIFT = RedshiftLaw(at_17=0.08, per_mag=0.12, clip=(0.03, 1.2), scatter=0.08)
"""Redshift of an elliptical from its r magnitude."""


ELLIPTICAL = RedGalaxyPrior(
    mag_r=(17.5, 23.0),
    redshift=ELLIPTICAL_REDSHIFT,
    r_e_at_18=1.6,
    r_e_max=4.0,
    n_sersic=(3.0, 6.0),
    q=(0.5, 1.0),
)
"""An early-type galaxy: a de Vaucouleurs-like Sersic with red-sequence colours."""


def draw_elliptical(ctx: DrawContext, prior: RedGalaxyPrior = ELLIPTICAL) -> Drawn:
    """An elliptical galaxy."""
    galaxy = draw_red_galaxy(ctx, prior)
    return Drawn([galaxy.component(ctx.rng, ab_to_njy(galaxy.mag))], size=galaxy.r_e)


# --- discs ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DiscPrior:
    """An exponential-like disc and a rounder Sersic bulge on the same axis.

    Disc half-light radius from the size law (arcsec at r = 18, capped), axis ratio q of the
    disc, the bulge's share of the flux, and the bulge's radius relative to the disc's.
    """

    r_disc_at_18: float
    r_disc_max: float
    q: Range
    bulge_fraction: Range
    disc_n_sersic: Range = (0.8, 1.2)
    bulge_r_over_disc: Range = (0.12, 0.3)
    bulge_n_sersic: Range = (2.0, 4.0)
    bulge_extra_q: Range = (0.2, 0.5)


class BulgeDisc(NamedTuple):
    """A drawn bulge and disc: disc radius (arcsec), disc q, unit-flux profiles, fluxes (nJy)."""

    r_disc: float
    q: float
    bulge: SersicEllipse
    disc: SersicEllipse
    f_bulge: float
    f_disc: float


def draw_bulge_disc(ctx: DrawContext, mag: float, prior: DiscPrior) -> BulgeDisc:
    """The bulge and disc of a galaxy of r magnitude mag."""
    rng = ctx.rng
    r_disc = min(size_law(rng, mag, prior.r_disc_at_18), prior.r_disc_max)
    q = uniform(rng, prior.q)
    bulge_fraction = uniform(rng, prior.bulge_fraction)
    phi = float(rng.uniform(0.0, math.pi))
    disc = sersic_light(
        ctx, r_sersic=r_disc, n_sersic=uniform(rng, prior.disc_n_sersic), q=q, phi=phi
    )
    bulge = sersic_light(
        ctx,
        r_sersic=r_disc * uniform(rng, prior.bulge_r_over_disc),
        n_sersic=uniform(rng, prior.bulge_n_sersic),
        q=min(1.0, q + uniform(rng, prior.bulge_extra_q)),
        phi=phi,
    )
    total = ab_to_njy(mag)
    return BulgeDisc(r_disc, q, bulge, disc, bulge_fraction * total, (1.0 - bulge_fraction) * total)


SPIRAL_REDSHIFT = RedshiftLaw(at_17=0.05, per_mag=0.08, clip=(0.02, 0.8), scatter=0.05)
"""Redshift of a spiral from its r magnitude."""

SPIRAL_BULGE_DISC = DiscPrior(
    r_disc_at_18=2.6, r_disc_max=5.0, q=(0.35, 1.0), bulge_fraction=(0.05, 0.4)
)
"""Bulge and disc of a spiral."""


@dataclass(frozen=True)
class SpiralPrior:
    """A bulge, a disc, logarithmic spiral arms and star-forming knots along the arms."""

    mag_r: Range = (17.0, 22.5)
    redshift: RedshiftLaw = SPIRAL_REDSHIFT
    disc: DiscPrior = SPIRAL_BULGE_DISC
    two_arm_chance: float = 0.7
    n_arms_otherwise: IntRange = (3, 5)
    pitch: Range = (0.2, 0.45)
    contrast: Range = (1.5, 4.0)
    arms_inner_over_bulge: float = 2.0
    arms_share: Range = (0.35, 0.65)
    knots_share: Range = (0.03, 0.12)
    n_knots: IntRange = (4, 12)
    knot_rho_over_disc: Range = (0.5, 2.5)
    knot_sigma: Range = (0.04, 0.12)
    arms_bluer: float = 0.1
    knots_bluer: float = 0.3


SPIRAL = SpiralPrior()


def draw_spiral(ctx: DrawContext, prior: SpiralPrior = SPIRAL) -> Drawn:
    """A spiral galaxy."""
    rng = ctx.rng
    mag = mag_r_or_draw(ctx, prior.mag_r)
    z = prior.redshift.draw(rng, mag)
    r_disc, _, bulge, disc, f_bulge, f_disc = draw_bulge_disc(ctx, mag, prior.disc)
    two_arms = rng.uniform() < prior.two_arm_chance
    n_arms = 2 if two_arms else int(rng.integers(*prior.n_arms_otherwise))
    pitch = uniform(rng, prior.pitch)
    phase = float(rng.uniform(0.0, 2.0 * math.pi))
    arms = SersicArms(
        disc,
        n_arms=n_arms,
        pitch=pitch,
        contrast=uniform(rng, prior.contrast),
        phase=phase,
        inner=bulge.r_sersic * prior.arms_inner_over_bulge,
    )
    f_arms = uniform(rng, prior.arms_share)
    f_knots = uniform(rng, prior.knots_share)
    k = int(rng.integers(*prior.n_knots))
    rho = disc.r_sersic * rng.uniform(*prior.knot_rho_over_disc, size=k)
    arm = rng.integers(0, n_arms, size=k)
    theta = np.log(rho / disc.r_sersic) / math.tan(pitch) + phase + 2.0 * math.pi * arm / n_arms
    kx, ky = on_ellipse(disc, rho, theta)
    knots = clumps(rng, kx, ky, prior.knot_sigma)
    comps = [
        Component(bulge, band_fluxes(f_bulge, red_colours(rng, z))),
        Component(disc, band_fluxes(f_disc * (1 - f_arms - f_knots), disc_colours(rng))),
        Component(arms, band_fluxes(f_disc * f_arms, blue_colours(rng, prior.arms_bluer))),
        Component(knots, band_fluxes(f_disc * f_knots, blue_colours(rng, prior.knots_bluer))),
    ]
    return Drawn(comps, size=r_disc)


FACE_ON_BULGE_DISC = DiscPrior(
    r_disc_at_18=2.2, r_disc_max=5.0, q=(0.75, 1.0), bulge_fraction=(0.0, 0.15)
)
"""Bulge and disc of a face-on disc galaxy."""


@dataclass(frozen=True)
class FaceOnDiscPrior:
    """A nearly round disc with a small bulge, scattered knots and, half the time, weak arms."""

    mag_r: Range = (17.5, 23.0)
    disc: DiscPrior = FACE_ON_BULGE_DISC
    bulge_min_share_of_disc: float = 1e-3
    bulge_z: float = 0.1
    n_knots: IntRange = (3, 12)
    knot_rho2_over_disc2: Range = (0.05, 4.0)
    knots_share: Range = (0.05, 0.25)
    knot_sigma: Range = (0.05, 0.15)
    knots_bluer: float = 0.2
    arms_chance: float = 0.5
    n_arms: IntRange = (2, 5)
    pitch: Range = (0.25, 0.5)
    contrast: Range = (0.3, 1.2)
    arms_inner_over_disc: float = 0.3
    arms_share: Range = (0.2, 0.5)


FACE_ON_DISC = FaceOnDiscPrior()


def draw_disc_face_on(ctx: DrawContext, prior: FaceOnDiscPrior = FACE_ON_DISC) -> Drawn:
    """A face-on disc galaxy."""
    rng = ctx.rng
    mag = mag_r_or_draw(ctx, prior.mag_r)
    r_disc, _, bulge, disc, f_bulge, f_disc = draw_bulge_disc(ctx, mag, prior.disc)
    k = int(rng.integers(*prior.n_knots))
    rho = disc.r_sersic * np.sqrt(rng.uniform(*prior.knot_rho2_over_disc2, size=k))
    kx, ky = on_ellipse(disc, rho, rng.uniform(0.0, 2.0 * math.pi, size=k))
    f_knots = uniform(rng, prior.knots_share)
    f_bulge = max(f_bulge, prior.bulge_min_share_of_disc * f_disc)
    comps = [
        Component(bulge, band_fluxes(f_bulge, red_colours(rng, prior.bulge_z))),
        Component(disc, band_fluxes(f_disc * (1.0 - f_knots), disc_colours(rng))),
        Component(
            clumps(rng, kx, ky, prior.knot_sigma),
            band_fluxes(f_disc * f_knots, blue_colours(rng, prior.knots_bluer)),
        ),
    ]
    if rng.uniform() < prior.arms_chance:
        weak = SersicArms(
            disc,
            n_arms=int(rng.integers(*prior.n_arms)),
            pitch=uniform(rng, prior.pitch),
            contrast=uniform(rng, prior.contrast),
            phase=float(rng.uniform(0, 2 * math.pi)),
            inner=prior.arms_inner_over_disc * r_disc,
        )
        share = uniform(rng, prior.arms_share)
        disc_flux = comps[1].flux
        comps[1] = replace(comps[1], flux=scaled_fluxes(disc_flux, 1.0 - share))
        comps.append(Component(weak, scaled_fluxes(disc_flux, share)))
    return Drawn(comps, size=r_disc)


LANE_DEPTH_PER_BAND = frozen({"g": 1.0, "r": 0.8, "i": 0.62, "z": 0.5})
"""Depth of a dust lane per band relative to g (dust reddens)."""


EDGE_ON_BULGE_DISC = DiscPrior(
    r_disc_at_18=2.6, r_disc_max=5.0, q=(0.1, 0.25), bulge_fraction=(0.02, 0.3)
)
"""Bulge and disc of an edge-on disc galaxy (q of the thin disc)."""


@dataclass(frozen=True)
class EdgeOnDiscPrior:
    """A thin disc and a flattened bulge, most often crossed by a dust lane (deeper in g)."""

    mag_r: Range = (17.5, 23.0)
    disc: DiscPrior = EDGE_ON_BULGE_DISC
    bulge_ellipticity_factor: float = 0.4
    bulge_z: float = 0.15
    lane_chance: float = 0.7
    lane_width_over_minor_axis: Range = (0.15, 0.35)
    lane_depth: Range = (0.3, 0.85)
    lane_depth_per_band: Mapping[str, float] = LANE_DEPTH_PER_BAND


EDGE_ON_DISC = EdgeOnDiscPrior()


def draw_disc_edge_on(ctx: DrawContext, prior: EdgeOnDiscPrior = EDGE_ON_DISC) -> Drawn:
    """An edge-on disc galaxy."""
    rng = ctx.rng
    mag = mag_r_or_draw(ctx, prior.mag_r)
    r_disc, q, bulge, disc, f_bulge, f_disc = draw_bulge_disc(ctx, mag, prior.disc)
    flat = prior.bulge_ellipticity_factor
    bulge = replace(bulge, e1=flat * bulge.e1, e2=flat * bulge.e2)
    comps = [
        Component(bulge, band_fluxes(f_bulge, red_colours(rng, prior.bulge_z))),
        Component(disc, band_fluxes(f_disc, disc_colours(rng))),
    ]
    if rng.uniform() < prior.lane_chance:
        width = r_disc * math.sqrt(q) * uniform(rng, prior.lane_width_over_minor_axis)
        lane = SersicLane(disc, width)
        depth = uniform(rng, prior.lane_depth)
        ratio = lane.total_flux() / disc.total_flux()
        per_band = prior.lane_depth_per_band
        flux = frozen({b: -depth * per_band[b] * ratio * v for b, v in comps[1].flux.items()})
        comps.append(Component(lane, flux))
    return Drawn(comps, size=r_disc)


# --- field galaxies ---------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldGalaxyPrior:
    """Faint galaxies anywhere in a cutout (Poisson count), not counted by the catalog."""

    mean_count: float = 1.5
    min_distance: float = 2.0
    mag_r: Range = (23.0, 26.5)
    r_sersic: Range = (0.1, 0.5)
    n_sersic: Range = (0.5, 2.5)
    q: Range = (0.3, 1.0)
    red_chance: float = 0.3
    red_z: Range = (0.3, 1.0)


FIELD_GALAXIES = FieldGalaxyPrior()


def field_galaxies(ctx: DrawContext, prior: FieldGalaxyPrior = FIELD_GALAXIES) -> list[Component]:
    """Faint field galaxies scattered over the cutout (not within min_distance of the centre)."""
    rng = ctx.rng
    half = 0.5 * ctx.survey.cutout_size * ctx.survey.pixel_scale_arcsec
    comps = []
    for _ in range(int(rng.poisson(prior.mean_count))):
        x, y = (float(v) for v in rng.uniform(-half, half, size=2))
        if math.hypot(x, y) < prior.min_distance:
            continue
        mag = count_law(rng, *prior.mag_r)
        profile = SersicEllipse.from_flux(
            1.0,
            uniform(rng, prior.r_sersic),
            uniform(rng, prior.n_sersic),
            *clipped_ellipticity(uniform(rng, prior.q), float(rng.uniform(0.0, math.pi))),
            ctx.x0 + x,
            ctx.y0 + y,
        )
        colours = (
            red_colours(rng, uniform(rng, prior.red_z))
            if rng.uniform() < prior.red_chance
            else (blue_colours(rng))
        )
        comps.append(Component(profile, band_fluxes(ab_to_njy(mag), colours), in_catalog=False))
    return comps
