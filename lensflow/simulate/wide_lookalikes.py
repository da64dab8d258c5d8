"""The wide population's drawers of the non-lenses most like lenses: red galaxies with blue
companions (tangential and arc-like among them), mergers with tidal features, groups and chance
alignments of unrelated galaxies.

Blue companions sit at any separation (0.4-6'', log-uniform) and orientation: round, elongated
along the tangent of the circle about the red galaxy (q 0.15-0.45, arc-like but unlensed),
curved arclets (a `TidalArc` about the red galaxy), clumpy, or compact; a star can stand beside
the galaxy too. Lens finders trained without such tangential companions take them for arcs
(the false positives of Jacobs et al. 2019, ApJS 243, 17, and Canameras et al. 2020, A&A 644,
A163, are dominated by them). Mergers carry tidal tails, shells and bridges (Duc et al. 2015,
MNRAS 446, 120, find them around a large share of nearby early-type galaxies). A chance
alignment is a foreground galaxy and an unrelated background one in projection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lensflow.simulate.colours import band_fluxes, star_colours
from lensflow.simulate.draw_base import (
    DrawContext,
    Drawn,
    IntRange,
    Range,
    RedGalaxyPrior,
    clipped_ellipticity,
    mag_r_or_draw,
    sersic_light,
    size_law,
    uniform,
)
from lensflow.simulate.draw_lookalikes import (
    BLUE_NEIGHBOURS_CENTRAL,
    GROUP,
    GroupPrior,
    MergerPrior,
)
from lensflow.simulate.draw_lookalikes import MERGER as CLASSIC_MERGER
from lensflow.simulate.light import GaussianRing, LightProfile, TidalArc
from lensflow.simulate.scene import Component, PointSource
from lensflow.simulate.sed_colours import sed_blue_colours, sed_red_colours
from lensflow.simulate.sersic import SersicEllipse
from lensflow.simulate.wide_galaxies import red_galaxy
from lensflow.simulate.wide_parts import irregular_source, pick_variant, red_two_components
from lensflow.surveys import ab_to_njy

# --- blue neighbours --------------------------------------------------------------------------

COMPANION_KINDS = ("round", "tangential", "arclet", "clumpy", "compact")
"""What a blue companion looks like (see module)."""


@dataclass(frozen=True)
class WideNeighboursPrior:
    """A red galaxy and 1-6 companions; tangential: only tangential ellipses and arclets;
    mixed: any kind; star_beside: a star and maybe a companion."""

    central: RedGalaxyPrior = BLUE_NEIGHBOURS_CENTRAL
    variants: dict[str, float] = field(
        default_factory=lambda: {"tangential": 0.4, "mixed": 0.4, "star_beside": 0.2}
    )
    n_companions: IntRange = (1, 7)
    companion_dmag: Range = (1.0, 4.5)
    central_min_share: float = 0.3
    distance: Range = (0.4, 6.0)
    r_sersic: Range = (0.08, 0.5)
    tangential_q: Range = (0.15, 0.45)
    arclet_length: Range = (0.5, 2.5)
    arclet_width: Range = (0.05, 0.2)
    star_dmag: Range = (-1.0, 4.0)
    blended_within: float = 1.5
    companion_z: Range = (0.1, 2.0)


WIDE_NEIGHBOURS = WideNeighboursPrior()


def _companion(
    ctx: DrawContext, kind: str, r: float, a: float, flux_r: float, prior: WideNeighboursPrior
) -> list[Component]:
    """A blue companion of a kind and r flux (nJy) at distance r, angle a from the centre, at a
    redshift of its own (a satellite or a galaxy behind)."""
    rng = ctx.rng
    x, y = ctx.x0 + r * math.cos(a), ctx.y0 + r * math.sin(a)
    in_catalog = r < prior.blended_within
    z = uniform(rng, prior.companion_z)
    if kind == "clumpy":
        parts = irregular_source(ctx, x, y, z=z).components(flux_r)
        return [Component(c.profile, c.flux, in_catalog=in_catalog) for c in parts]
    size = uniform(rng, prior.r_sersic)
    profile: LightProfile
    if kind == "arclet":
        length = uniform(rng, prior.arclet_length)
        width = uniform(rng, prior.arclet_width)
        profile = TidalArc(1.0, r, width, a, 0.5 * length / r, ctx.x0, ctx.y0)
    elif kind == "tangential":
        e1, e2 = clipped_ellipticity(uniform(rng, prior.tangential_q), a + 0.5 * math.pi)
        profile = SersicEllipse.from_flux(1.0, size, uniform(rng, (0.5, 1.5)), e1, e2, x, y)
    elif kind == "compact":
        profile = SersicEllipse.from_flux(1.0, 0.04, 1.0, 0.0, 0.0, x, y)
    else:
        e1, e2 = clipped_ellipticity(uniform(rng, (0.4, 1.0)), float(rng.uniform(0.0, math.pi)))
        profile = SersicEllipse.from_flux(1.0, size, uniform(rng, (0.5, 2.0)), e1, e2, x, y)
    colours = sed_blue_colours(rng, z, ctx.survey)
    return [Component(profile, band_fluxes(flux_r, colours), in_catalog=in_catalog)]


def draw_wide_neighbours(ctx: DrawContext, prior: WideNeighboursPrior = WIDE_NEIGHBOURS) -> Drawn:
    """A red galaxy with blue companions (or a star) about it."""
    rng = ctx.rng
    variant = pick_variant(ctx, prior.variants)
    mag = mag_r_or_draw(ctx, prior.central.mag_r)
    total = ab_to_njy(mag)
    if variant == "star_beside":
        k = int(rng.integers(0, 2))
    else:
        k = int(rng.integers(*prior.n_companions))
    fluxes = [ab_to_njy(mag + uniform(rng, prior.companion_dmag)) for _ in range(k)]
    own = max(total - sum(fluxes), prior.central_min_share * total)
    central = prior.central
    z = central.redshift.draw(rng, mag)
    r_e = min(size_law(rng, mag, central.r_e_at_18), central.r_e_max)
    comps, _ = red_two_components(
        ctx,
        flux_r=own,
        r_e=r_e,
        q=uniform(rng, central.q),
        phi=float(rng.uniform(0.0, math.pi)),
        z=z,
    )
    kinds = ("tangential", "arclet") if variant == "tangential" else COMPANION_KINDS
    lo, hi = prior.distance
    far = 0.0
    for f in fluxes:
        r = 10.0 ** float(rng.uniform(math.log10(lo), math.log10(hi)))
        a = float(rng.uniform(0.0, 2.0 * math.pi))
        far = max(far, r)
        kind = kinds[int(rng.integers(0, len(kinds)))]
        comps += _companion(ctx, kind, r, a, f, prior)
    points = []
    if variant == "star_beside":
        d = 10.0 ** float(rng.uniform(math.log10(lo), math.log10(hi)))
        a = float(rng.uniform(0.0, 2.0 * math.pi))
        flux = band_fluxes(ab_to_njy(mag + uniform(rng, prior.star_dmag)), star_colours(rng))
        points.append(
            PointSource(
                ctx.x0 + d * math.cos(a),
                ctx.y0 + d * math.sin(a),
                flux,
                in_catalog=d < prior.blended_within,
            )
        )
    size = math.sqrt(r_e**2 + 0.3 * far**2)
    return Drawn(comps, points=points, size=size, variant=variant)


# --- mergers ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WideMergerPrior:
    """Two (triple: three) galaxies with tidal tails, shells about the primary, or a bridge."""

    base: MergerPrior = CLASSIC_MERGER
    variants: dict[str, float] = field(
        default_factory=lambda: {"tidal_tails": 0.45, "shells": 0.2, "bridge": 0.15, "triple": 0.2}
    )
    features_share: Range = (0.08, 0.35)
    n_tails: IntRange = (1, 5)
    tail_radius: Range = (1.0, 5.0)
    tail_width: Range = (0.08, 0.4)
    tail_spread: Range = (0.3, 1.0)
    n_shells: IntRange = (1, 4)
    shell_radius: Range = (1.0, 4.5)
    shell_lopsided: Range = (0.6, 0.95)
    shell_width: Range = (0.05, 0.2)


WIDE_MERGER = WideMergerPrior()


def draw_wide_merger(ctx: DrawContext, prior: WideMergerPrior = WIDE_MERGER) -> Drawn:
    """A merging system with its tidal features."""
    rng, base = ctx.rng, prior.base
    variant = pick_variant(ctx, prior.variants)
    mag = mag_r_or_draw(ctx, base.mag_r)
    total = ab_to_njy(mag)
    f_feat = uniform(rng, prior.features_share)
    z = base.redshift.draw(rng, mag)
    n_gal = 3 if variant == "triple" else 2
    shares = rng.dirichlet(np.ones(n_gal) * 3.0)
    sep = uniform(rng, base.separation)
    angle = float(rng.uniform(0.0, 2.0 * math.pi))
    comps: list[Component] = []
    spots = [(0.0, 0.0)]
    for k in range(1, n_gal):
        a = angle + (k - 1) * float(rng.uniform(1.5, 4.7))
        spots.append((sep * math.cos(a), sep * math.sin(a)))
    for (dx, dy), share in zip(spots, shares, strict=True):
        flux = (1.0 - f_feat) * float(share) * total
        r_e = uniform(rng, base.r_e) * math.sqrt(float(share) * n_gal)
        q, phi = uniform(rng, base.q), float(rng.uniform(0.0, math.pi))
        if rng.uniform() < base.red_chance:
            parts, _ = red_two_components(
                ctx, flux_r=flux, r_e=r_e, q=q, phi=phi, z=z, dx=dx, dy=dy
            )
            comps += parts
        else:
            light = sersic_light(
                ctx, r_sersic=r_e, n_sersic=uniform(rng, (0.8, 2.0)), q=q, dx=dx, dy=dy
            )
            comps.append(Component(light, band_fluxes(flux, sed_blue_colours(rng, z, ctx.survey))))
    features: list[LightProfile] = []
    mx, my = ctx.x0 + 0.5 * spots[1][0], ctx.y0 + 0.5 * spots[1][1]
    if variant in ("tidal_tails", "triple"):
        for _ in range(int(rng.integers(*prior.n_tails))):
            features.append(
                TidalArc(
                    1.0,
                    uniform(rng, prior.tail_radius),
                    uniform(rng, prior.tail_width),
                    float(rng.uniform(0.0, 2.0 * math.pi)),
                    uniform(rng, prior.tail_spread),
                    mx,
                    my,
                )
            )
    elif variant == "shells":
        a = float(rng.uniform(0.0, 2.0 * math.pi))
        for _ in range(int(rng.integers(*prior.n_shells))):
            shell = GaussianRing(
                1.0,
                uniform(rng, prior.shell_radius),
                uniform(rng, prior.shell_width),
                center_x=ctx.x0,
                center_y=ctx.y0,
                lopsided=uniform(rng, prior.shell_lopsided),
                angle=a + float(rng.normal(0.0, 0.3)),
            )
            features.append(shell)
    else:
        d = math.hypot(*spots[1])
        bridge = TidalArc(
            1.0,
            0.5 * d * 1.2,
            uniform(rng, prior.tail_width),
            math.atan2(spots[1][1], spots[1][0]),
            0.6,
            mx,
            my,
        )
        features.append(bridge)
    share = 1.0 / len(features)
    for profile in features:
        # shells are old stars (red); tails and bridges often hold young ones
        sed = sed_red_colours if isinstance(profile, GaussianRing) else sed_blue_colours
        colours = sed(rng, z, ctx.survey)
        comps.append(Component(profile, band_fluxes(share * f_feat * total, colours)))
    return Drawn(comps, size=0.5 * sep + max(base.r_e), variant=variant)


# --- groups and chance alignments -------------------------------------------------------------


@dataclass(frozen=True)
class WideGroupPrior:
    """A classic group (two-component central) or a chance alignment: a foreground galaxy and an
    unrelated background galaxy 0.2-2.5'' away, catalogued together when blended."""

    group: GroupPrior = GROUP
    variants: dict[str, float] = field(
        default_factory=lambda: {"group": 0.6, "chance_alignment": 0.4}
    )
    alignment_distance: Range = (0.2, 2.5)
    background_dmag: Range = (0.0, 3.0)
    red_foreground_chance: float = 0.6
    background_dz: Range = (0.3, 1.5)
    blended_within: float = 1.5


WIDE_GROUP = WideGroupPrior()


def draw_wide_group(ctx: DrawContext, prior: WideGroupPrior = WIDE_GROUP) -> Drawn:
    """A galaxy group, or two unrelated galaxies in projection."""
    rng = ctx.rng
    variant = pick_variant(ctx, prior.variants)
    group = prior.group
    if variant == "group":
        central = red_galaxy(ctx, group.central)
        comps = list(central.components)
        near, far = group.member_distance
        for _ in range(int(rng.integers(*group.n_members))):
            m = central.mag + uniform(rng, group.member_dmag)
            r = float(np.sqrt(rng.uniform(near**2, far**2)))
            a = float(rng.uniform(0.0, 2.0 * math.pi))
            dx, dy = r * math.cos(a), r * math.sin(a)
            if rng.uniform() < group.red_chance:
                parts, _ = red_two_components(
                    ctx,
                    flux_r=ab_to_njy(m),
                    r_e=min(0.5 * central.r_e, group.member_r_e_max),
                    q=uniform(rng, group.member_q),
                    phi=float(rng.uniform(0.0, math.pi)),
                    z=central.z,
                    dx=dx,
                    dy=dy,
                )
            else:
                member = irregular_source(ctx, ctx.x0 + dx, ctx.y0 + dy, z=central.z)
                parts = member.components(ab_to_njy(m))
            comps += [Component(c.profile, c.flux, in_catalog=False) for c in parts]
        return Drawn(comps, size=central.r_e, variant=variant)
    mag = mag_r_or_draw(ctx, group.central.mag_r)
    d = uniform(rng, prior.alignment_distance)
    a = float(rng.uniform(0.0, 2.0 * math.pi))
    f_back = ab_to_njy(mag + uniform(rng, prior.background_dmag))
    f_front = max(ab_to_njy(mag) - f_back, 0.3 * ab_to_njy(mag))
    if rng.uniform() < prior.red_foreground_chance:
        z = uniform(rng, (0.1, 0.6))
        front, _ = red_two_components(
            ctx,
            flux_r=f_front,
            r_e=uniform(rng, (0.4, 2.0)),
            q=uniform(rng, (0.5, 1.0)),
            phi=float(rng.uniform(0.0, math.pi)),
            z=z,
        )
    else:
        z = uniform(rng, (0.1, 1.0))
        front = irregular_source(ctx, ctx.x0, ctx.y0, z=z).components(f_front)
    blended = d < prior.blended_within
    back_z = z + uniform(rng, prior.background_dz)
    back = irregular_source(ctx, ctx.x0 + d * math.cos(a), ctx.y0 + d * math.sin(a), z=back_z)
    comps = front + [
        Component(c.profile, c.flux, in_catalog=blended) for c in back.components(f_back)
    ]
    return Drawn(comps, size=0.5 * d + 0.5, variant=variant)
