"""Drawers of the galaxies that look most like lenses: rings, mergers, blue neighbours, groups.

Each class has its prior as a frozen dataclass beside its drawer (r magnitudes from the number
counts, radii and separations in arcsec, flux shares, chances); the drawers take a DrawContext
and return a Drawn, drawing in a fixed order so that a seed gives the same scene bit for bit.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from lensflow.simulate.colours import band_fluxes, blue_colours, red_colours, scaled_fluxes
from lensflow.simulate.draw_base import (
    DrawContext,
    Drawn,
    IntRange,
    Range,
    RedGalaxyPrior,
    RedshiftLaw,
    UniformRedshift,
    clipped_ellipticity,
    clumps,
    draw_red_galaxy,
    mag_r_or_draw,
    on_ellipse,
    sersic_light,
    size_law,
    uniform,
)
from lensflow.simulate.light import GaussianRing, TidalArc
from lensflow.simulate.scene import Component
from lensflow.simulate.sersic import SersicEllipse
from lensflow.surveys import ab_to_njy

# --- rings ------------------------------------------------------------------------------------


RING_REDSHIFT = RedshiftLaw(at_17=0.1, per_mag=0.1, clip=(0.05, 0.9))
"""Redshift of a ring galaxy from its r magnitude."""


@dataclass(frozen=True)
class RingPrior:
    """A red core inside a Gaussian ring (often lopsided, sometimes with knots on it)."""

    mag_r: Range = (18.0, 22.5)
    redshift: RedshiftLaw = RING_REDSHIFT
    core_r_sersic: Range = (0.25, 0.8)
    core_n_sersic: Range = (2.0, 4.0)
    core_q: Range = (0.6, 1.0)
    radius: Range = (0.9, 3.0)
    q: Range = (0.5, 1.0)
    width_over_sqrt_radius: Range = (0.08, 0.3)
    lopsided: Range = (0.0, 0.8)
    ring_share: Range = (0.3, 0.7)
    red_ring_chance: float = 0.2
    ring_bluer: float = 0.1
    n_knots: IntRange = (0, 9)
    knots_share_of_ring: float = 0.2
    knot_sigma: Range = (0.05, 0.12)
    knots_bluer: float = 0.3


RING = RingPrior()


def draw_ring(ctx: DrawContext, prior: RingPrior = RING) -> Drawn:
    """A ring galaxy."""
    rng = ctx.rng
    mag = mag_r_or_draw(ctx, prior.mag_r)
    z = prior.redshift.draw(rng, mag)
    core = sersic_light(
        ctx,
        r_sersic=uniform(rng, prior.core_r_sersic),
        n_sersic=uniform(rng, prior.core_n_sersic),
        q=uniform(rng, prior.core_q),
    )
    radius = uniform(rng, prior.radius)
    q = uniform(rng, prior.q)
    e1, e2 = clipped_ellipticity(q, float(rng.uniform(0.0, math.pi)))
    ring = GaussianRing(
        1.0,
        radius,
        uniform(rng, prior.width_over_sqrt_radius) * radius**0.5,
        e1,
        e2,
        ctx.x0,
        ctx.y0,
        lopsided=uniform(rng, prior.lopsided),
        angle=float(rng.uniform(0.0, 2.0 * math.pi)),
    )
    total = ab_to_njy(mag)
    f_ring = uniform(rng, prior.ring_share)
    red_ring = rng.uniform() < prior.red_ring_chance
    ring_colours = red_colours(rng, z) if red_ring else blue_colours(rng, prior.ring_bluer)
    knots_share = prior.knots_share_of_ring
    comps = [
        Component(core, band_fluxes((1.0 - f_ring) * total, red_colours(rng, z))),
        Component(ring, band_fluxes((1.0 - knots_share) * f_ring * total, ring_colours)),
    ]
    k = int(rng.integers(*prior.n_knots))
    if k:
        e_sie = SersicEllipse(1.0, radius, 1.0, e1, e2, ctx.x0, ctx.y0)
        kx, ky = on_ellipse(e_sie, np.full(k, radius), rng.uniform(0.0, 2.0 * math.pi, size=k))
        comps.append(
            Component(
                clumps(rng, kx, ky, prior.knot_sigma),
                band_fluxes(knots_share * f_ring * total, blue_colours(rng, prior.knots_bluer)),
            )
        )
    else:
        comps[1] = replace(comps[1], flux=scaled_fluxes(comps[1].flux, 1.0 / (1.0 - knots_share)))
    return Drawn(comps, size=radius)


# --- mergers ----------------------------------------------------------------------------------


MERGER_REDSHIFT = RedshiftLaw(at_17=0.1, per_mag=0.1, clip=(0.05, 0.9))
"""Redshift of a merging pair from its total r magnitude."""


@dataclass(frozen=True)
class MergerPrior:
    """Two galaxies close together, most often with tidal arcs about their midpoint."""

    mag_r: Range = (18.0, 22.5)
    redshift: RedshiftLaw = MERGER_REDSHIFT
    separation: Range = (0.8, 3.0)
    flux_ratio: Range = (0.2, 1.0)
    tails_chance: float = 0.7
    tails_share: Range = (0.08, 0.3)
    r_e: Range = (0.3, 1.2)
    n_sersic: Range = (1.0, 4.0)
    q: Range = (0.4, 1.0)
    red_chance: float = 0.5
    n_tails: IntRange = (1, 3)
    tail_radius: Range = (1.2, 4.0)
    tail_width: Range = (0.1, 0.35)
    tail_spread: Range = (0.35, 1.1)
    share_per_tail: float = 0.5


MERGER = MergerPrior()


def draw_merger(ctx: DrawContext, prior: MergerPrior = MERGER) -> Drawn:
    """A merging pair."""
    rng = ctx.rng
    mag = mag_r_or_draw(ctx, prior.mag_r)
    total = ab_to_njy(mag)
    sep = uniform(rng, prior.separation)
    angle = float(rng.uniform(0.0, 2.0 * math.pi))
    ratio = uniform(rng, prior.flux_ratio)
    f1 = 1.0 / (1.0 + ratio)
    tails = rng.uniform() < prior.tails_chance
    f_tails = uniform(rng, prior.tails_share) if tails else 0.0
    z = prior.redshift.draw(rng, mag)
    comps: list[Component] = []
    sizes = []
    for k, frac in enumerate((f1, 1.0 - f1)):
        d = (0.0, 0.0) if k == 0 else (sep * math.cos(angle), sep * math.sin(angle))
        r_e = uniform(rng, prior.r_e) * (1.0 if k == 0 else math.sqrt(ratio))
        profile = sersic_light(
            ctx,
            r_sersic=r_e,
            n_sersic=uniform(rng, prior.n_sersic),
            q=uniform(rng, prior.q),
            dx=d[0],
            dy=d[1],
        )
        colours = red_colours(rng, z) if rng.uniform() < prior.red_chance else blue_colours(rng)
        comps.append(Component(profile, band_fluxes(frac * (1.0 - f_tails) * total, colours)))
        sizes.append(r_e)
    if tails:
        mx, my = ctx.x0 + 0.5 * sep * math.cos(angle), ctx.y0 + 0.5 * sep * math.sin(angle)
        for _ in range(int(rng.integers(*prior.n_tails))):
            arc = TidalArc(
                1.0,
                uniform(rng, prior.tail_radius),
                uniform(rng, prior.tail_width),
                float(rng.uniform(0.0, 2.0 * math.pi)),
                uniform(rng, prior.tail_spread),
                mx,
                my,
            )
            flux = band_fluxes(prior.share_per_tail * f_tails * total, blue_colours(rng))
            comps.append(Component(arc, flux))
    return Drawn(comps, size=0.5 * sep + max(sizes))


# --- blue neighbours --------------------------------------------------------------------------


BLUE_NEIGHBOURS_CENTRAL = RedGalaxyPrior(
    mag_r=(18.0, 22.0),
    redshift=UniformRedshift((0.2, 0.8)),
    r_e_at_18=1.6,
    r_e_max=3.0,
    n_sersic=(3.0, 5.5),
    q=(0.55, 1.0),
)
"""The red galaxy that has blue neighbours (its redshift does not follow its magnitude)."""


@dataclass(frozen=True)
class BlueNeighboursPrior:
    """A red galaxy with small blue galaxies close by (where lensed images would be)."""

    central: RedGalaxyPrior = BLUE_NEIGHBOURS_CENTRAL
    n_neighbours: IntRange = (1, 5)
    neighbour_dmag: Range = (1.5, 4.0)
    central_min_share: float = 0.3
    distance: Range = (0.8, 3.0)
    neighbour_r_sersic: Range = (0.1, 0.35)
    neighbour_n_sersic: Range = (0.5, 1.5)
    neighbour_q: Range = (0.3, 1.0)
    size_weight_of_distance: float = 0.3


BLUE_NEIGHBOURS = BlueNeighboursPrior()


def draw_blue_neighbours(ctx: DrawContext, prior: BlueNeighboursPrior = BLUE_NEIGHBOURS) -> Drawn:
    """A red galaxy and its blue neighbours."""
    rng = ctx.rng
    central = draw_red_galaxy(ctx, prior.central)
    mag = central.mag
    k = int(rng.integers(*prior.n_neighbours))
    comps = []
    total_neigh = 0.0
    fluxes = []
    for _ in range(k):
        dm = uniform(rng, prior.neighbour_dmag)
        f = ab_to_njy(mag + dm)
        total_neigh += f
        fluxes.append(f)
    own = max(ab_to_njy(mag) - total_neigh, prior.central_min_share * ab_to_njy(mag))
    comps.append(central.component(rng, own))
    far = 0.0
    for f in fluxes:
        r = uniform(rng, prior.distance)
        a = float(rng.uniform(0.0, 2.0 * math.pi))
        far = max(far, r)
        nb = sersic_light(
            ctx,
            r_sersic=uniform(rng, prior.neighbour_r_sersic),
            n_sersic=uniform(rng, prior.neighbour_n_sersic),
            q=uniform(rng, prior.neighbour_q),
            dx=r * math.cos(a),
            dy=r * math.sin(a),
        )
        comps.append(Component(nb, band_fluxes(f, blue_colours(rng))))
    size = math.sqrt(central.r_e**2 + prior.size_weight_of_distance * far**2)
    return Drawn(comps, size=size)


# --- groups -----------------------------------------------------------------------------------


GROUP_CENTRAL = RedGalaxyPrior(
    mag_r=(17.5, 21.5),
    redshift=RedshiftLaw(at_17=0.08, per_mag=0.12, clip=(0.05, 0.9)),
    r_e_at_18=1.8,
    r_e_max=4.0,
    n_sersic=(3.5, 6.0),
    q=(0.6, 1.0),
)
"""The central galaxy of a group (the group's redshift follows its r magnitude)."""


@dataclass(frozen=True)
class GroupPrior:
    """A bright central galaxy and fainter members, mostly red, not counted by the catalog."""

    central: RedGalaxyPrior = GROUP_CENTRAL
    n_members: IntRange = (2, 7)
    member_dmag: Range = (0.5, 3.0)
    member_distance: Range = (1.5, 6.5)
    red_chance: float = 0.8
    member_r_e_at_18: float = 1.4
    member_r_e_max: float = 2.5
    red_n_sersic: Range = (2.5, 5.0)
    blue_n_sersic: Range = (0.8, 1.5)
    member_q: Range = (0.4, 1.0)


GROUP = GroupPrior()


def draw_group(ctx: DrawContext, prior: GroupPrior = GROUP) -> Drawn:
    """A galaxy group (members uniform in area between the distance bounds)."""
    rng = ctx.rng
    central = draw_red_galaxy(ctx, prior.central)
    mag, z = central.mag, central.z
    comps = [central.component(rng, ab_to_njy(mag))]
    near, far = prior.member_distance
    for _ in range(int(rng.integers(*prior.n_members))):
        m = mag + uniform(rng, prior.member_dmag)
        r = float(np.sqrt(rng.uniform(near**2, far**2)))
        a = float(rng.uniform(0.0, 2.0 * math.pi))
        red = rng.uniform() < prior.red_chance
        member = sersic_light(
            ctx,
            r_sersic=min(size_law(rng, m, prior.member_r_e_at_18), prior.member_r_e_max),
            n_sersic=uniform(rng, prior.red_n_sersic if red else prior.blue_n_sersic),
            q=uniform(rng, prior.member_q),
            dx=r * math.cos(a),
            dy=r * math.sin(a),
        )
        colours = red_colours(rng, z) if red else blue_colours(rng)
        comps.append(Component(member, band_fluxes(ab_to_njy(m), colours), in_catalog=False))
    return Drawn(comps, size=central.r_e)
