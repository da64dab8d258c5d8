"""The wide population's drawers of single galaxies: ellipticals (alone or with a star beside
them), spirals of every arm pattern, and rings with knots.

Red light is the two-component model of `wide_parts` (a redder inner component and an
envelope). Spirals: arm counts from one to six with two the most common, pitch angles of 6-43
degrees (the range from Sa to Sd discs, Kennicutt 1981, AJ 86, 1847; Davis et al. 2012, ApJS
199, 33), grand-design, many-armed, flocculent (weak arms, many knots) and barred patterns
(about 30 % of disc galaxies are barred, Masters et al. 2011, MNRAS 411, 2026). Rings carry
knots of star formation of their own sizes and colours, and may be partial (lopsided).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from lensflow.simulate.colours import band_fluxes, disc_colours, star_colours
from lensflow.simulate.draw_base import (
    DrawContext,
    Drawn,
    IntRange,
    Range,
    RedGalaxyPrior,
    clipped_ellipticity,
    clumps,
    mag_r_or_draw,
    on_ellipse,
    size_law,
    uniform,
)
from lensflow.simulate.draw_galaxies import ELLIPTICAL, SPIRAL_REDSHIFT, DiscPrior, draw_bulge_disc
from lensflow.simulate.draw_lookalikes import RING, RingPrior
from lensflow.simulate.geometry import FloatArray
from lensflow.simulate.light import GaussianRing
from lensflow.simulate.scene import Component, PointSource
from lensflow.simulate.sed_colours import sed_blue_colours, sed_red_colours
from lensflow.simulate.sersic import SersicArms, SersicEllipse
from lensflow.simulate.wide_parts import pick_variant, red_two_components
from lensflow.surveys import ab_to_njy


@dataclass(frozen=True)
class RedGalaxy2:
    """A drawn two-component red galaxy: r magnitude, redshift, half-light radius, light."""

    mag: float
    z: float
    r_e: float
    components: list[Component]


def red_galaxy(
    ctx: DrawContext,
    prior: RedGalaxyPrior,
    *,
    flux_share: float = 1.0,
    dx: float = 0.0,
    dy: float = 0.0,
) -> RedGalaxy2:
    """A red galaxy of the classic prior's magnitude, redshift and size, with two-component
    light of flux_share of its r flux at (dx, dy) from the centre."""
    rng = ctx.rng
    mag = mag_r_or_draw(ctx, prior.mag_r)
    z = prior.redshift.draw(rng, mag)
    r_e = min(size_law(rng, mag, prior.r_e_at_18), prior.r_e_max)
    q = uniform(rng, prior.q)
    phi = float(rng.uniform(0.0, math.pi))
    comps, _ = red_two_components(
        ctx, flux_r=flux_share * ab_to_njy(mag), r_e=r_e, q=q, phi=phi, z=z, dx=dx, dy=dy
    )
    return RedGalaxy2(mag, z, r_e, comps)


# --- ellipticals ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WideEllipticalPrior:
    """An elliptical (classic magnitudes and sizes); with_star: a star 0.5-4'' away, catalogued
    with the galaxy when within 1.5'' (blended), of r magnitude dmag from the galaxy's."""

    galaxy: RedGalaxyPrior = ELLIPTICAL
    variants: dict[str, float] = field(default_factory=lambda: {"plain": 0.7, "with_star": 0.3})
    star_distance: Range = (0.5, 4.0)
    star_dmag: Range = (-1.0, 4.0)
    blended_within: float = 1.5


WIDE_ELLIPTICAL = WideEllipticalPrior()


def draw_wide_elliptical(ctx: DrawContext, prior: WideEllipticalPrior = WIDE_ELLIPTICAL) -> Drawn:
    """An elliptical galaxy, maybe with a star beside it."""
    rng = ctx.rng
    variant = pick_variant(ctx, prior.variants)
    galaxy = red_galaxy(ctx, prior.galaxy)
    points = []
    if variant == "with_star":
        d = uniform(rng, prior.star_distance)
        a = float(rng.uniform(0.0, 2.0 * math.pi))
        flux = band_fluxes(ab_to_njy(galaxy.mag + uniform(rng, prior.star_dmag)), star_colours(rng))
        points.append(
            PointSource(
                ctx.x0 + d * math.cos(a),
                ctx.y0 + d * math.sin(a),
                flux,
                in_catalog=d < prior.blended_within,
            )
        )
    return Drawn(galaxy.components, points=points, size=galaxy.r_e, variant=variant)


# --- spirals ----------------------------------------------------------------------------------


WIDE_SPIRAL_DISC = DiscPrior(
    r_disc_at_18=2.6, r_disc_max=5.0, q=(0.25, 1.0), bulge_fraction=(0.02, 0.5)
)


@dataclass(frozen=True)
class WideSpiralPrior:
    """Bulge, disc, arms, knots and (barred) a bar; per variant, the arm count and contrast."""

    mag_r: Range = (17.0, 23.0)
    disc: DiscPrior = WIDE_SPIRAL_DISC
    variants: dict[str, float] = field(
        default_factory=lambda: {
            "grand_design": 0.35,
            "many_arms": 0.2,
            "flocculent": 0.25,
            "barred": 0.2,
        }
    )
    pitch: Range = (0.1, 0.75)
    strong_contrast: Range = (1.5, 5.0)
    weak_contrast: Range = (0.3, 1.2)
    many_arms: IntRange = (3, 7)
    one_arm_chance: float = 0.15
    arms_share: Range = (0.2, 0.7)
    arms_inner_over_bulge: Range = (1.0, 3.0)
    n_knots: IntRange = (4, 20)
    flocculent_knots: IntRange = (15, 41)
    knots_share: Range = (0.03, 0.2)
    knot_rho_over_disc: Range = (0.3, 2.5)
    knot_sigma: Range = (0.03, 0.15)
    knot_groups: IntRange = (1, 4)
    knots_bluer: Range = (0.1, 0.5)
    bar_share: Range = (0.05, 0.2)
    bar_q: Range = (0.2, 0.4)
    bar_length_over_disc: Range = (0.4, 1.0)


WIDE_SPIRAL = WideSpiralPrior()


def knot_groups(
    ctx: DrawContext,
    xs: FloatArray,
    ys: FloatArray,
    flux_r: float,
    *,
    z: float,
    sigma: Range,
    groups: IntRange,
    bluer: Range,
) -> list[Component]:
    """Knots at (xs, ys) arcsec (sigmas uniform in `sigma`) in a number of groups drawn from
    `groups`, each of its own star-forming colours at redshift z (young share drawn from
    `bluer`); total r flux nJy."""
    rng = ctx.rng
    k = len(xs)
    n_groups = min(int(rng.integers(*groups)), k)
    label = rng.integers(0, n_groups, size=k)
    label[:n_groups] = np.arange(n_groups)
    shares = rng.dirichlet(np.ones(n_groups) * 2.0)
    return [
        Component(
            clumps(rng, xs[label == g], ys[label == g], sigma),
            band_fluxes(
                float(shares[g]) * flux_r,
                sed_blue_colours(rng, z, ctx.survey, uniform(rng, bluer)),
            ),
        )
        for g in range(n_groups)
    ]


def draw_wide_spiral(ctx: DrawContext, prior: WideSpiralPrior = WIDE_SPIRAL) -> Drawn:
    """A spiral galaxy: grand-design, many-armed, flocculent or barred."""
    rng = ctx.rng
    variant = pick_variant(ctx, prior.variants)
    mag = mag_r_or_draw(ctx, prior.mag_r)
    z = SPIRAL_REDSHIFT.draw(rng, mag)
    r_disc, _, bulge, disc, f_bulge, f_disc = draw_bulge_disc(ctx, mag, prior.disc)
    if variant == "many_arms":
        n_arms = 1 if rng.uniform() < prior.one_arm_chance else int(rng.integers(*prior.many_arms))
    else:
        n_arms = 2 if variant != "flocculent" else int(rng.integers(2, 6))
    weak = variant == "flocculent"
    contrast = uniform(rng, prior.weak_contrast if weak else prior.strong_contrast)
    pitch = uniform(rng, prior.pitch)
    phase = float(rng.uniform(0.0, 2.0 * math.pi))
    inner = bulge.r_sersic * uniform(rng, prior.arms_inner_over_bulge)
    bar_len = r_disc * uniform(rng, prior.bar_length_over_disc) if variant == "barred" else 0.0
    arms = SersicArms(
        disc, n_arms=n_arms, pitch=pitch, contrast=contrast, phase=phase, inner=max(inner, bar_len)
    )
    f_arms = uniform(rng, prior.arms_share)
    f_knots = uniform(rng, prior.knots_share) * (2.0 if weak else 1.0)
    f_bar = uniform(rng, prior.bar_share) if variant == "barred" else 0.0
    k = int(rng.integers(*(prior.flocculent_knots if weak else prior.n_knots)))
    rho = disc.r_sersic * rng.uniform(*prior.knot_rho_over_disc, size=k)
    if weak:
        theta = rng.uniform(0.0, 2.0 * math.pi, size=k)
    else:
        arm = rng.integers(0, n_arms, size=k)
        theta = np.log(rho / disc.r_sersic) / math.tan(pitch) + phase + 2 * math.pi * arm / n_arms
        theta = theta + rng.normal(0.0, 0.15, size=k)
    kx, ky = on_ellipse(disc, rho, theta)
    f_disc_smooth = f_disc * max(1.0 - f_arms - f_knots - f_bar, 0.05)
    comps = [
        Component(bulge, band_fluxes(f_bulge, sed_red_colours(rng, z, ctx.survey))),
        Component(disc, band_fluxes(f_disc_smooth, disc_colours(rng))),
        Component(arms, band_fluxes(f_disc * f_arms, sed_blue_colours(rng, z, ctx.survey, 0.1))),
        *knot_groups(
            ctx,
            kx,
            ky,
            f_disc * f_knots,
            z=z,
            sigma=prior.knot_sigma,
            groups=prior.knot_groups,
            bluer=prior.knots_bluer,
        ),
    ]
    if variant == "barred":
        bar = SersicEllipse.from_flux(
            1.0,
            0.5 * bar_len,
            0.5,
            *clipped_ellipticity(uniform(rng, prior.bar_q), phase),
            disc.center_x,
            disc.center_y,
        )
        comps.append(Component(bar, band_fluxes(f_disc * f_bar, disc_colours(rng))))
    return Drawn(comps, size=r_disc, variant=variant)


# --- rings ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WideRingPrior:
    """A ring about a red core: knotted (many knots), smooth, or partial (strongly lopsided)."""

    base: RingPrior = RING
    variants: dict[str, float] = field(
        default_factory=lambda: {"knotted": 0.5, "smooth": 0.2, "partial": 0.3}
    )
    radius: Range = (0.7, 3.5)
    n_knots: IntRange = (3, 21)
    knots_share_of_ring: Range = (0.1, 0.5)
    knot_sigma: Range = (0.03, 0.15)
    knot_groups: IntRange = (1, 4)
    knots_bluer: Range = (0.0, 0.5)
    partial_lopsided: Range = (0.7, 0.98)


WIDE_RING = WideRingPrior()


def draw_wide_ring(ctx: DrawContext, prior: WideRingPrior = WIDE_RING) -> Drawn:
    """A ring galaxy with its knots."""
    rng, base = ctx.rng, prior.base
    variant = pick_variant(ctx, prior.variants)
    mag = mag_r_or_draw(ctx, base.mag_r)
    z = base.redshift.draw(rng, mag)
    total = ab_to_njy(mag)
    f_ring = uniform(rng, base.ring_share)
    core, _ = red_two_components(
        ctx,
        flux_r=(1.0 - f_ring) * total,
        r_e=uniform(rng, base.core_r_sersic),
        q=uniform(rng, base.core_q),
        phi=float(rng.uniform(0.0, math.pi)),
        z=z,
    )
    radius = uniform(rng, prior.radius)
    q = uniform(rng, base.q)
    phi = float(rng.uniform(0.0, math.pi))
    shape = SersicEllipse(1.0, radius, 1.0, *clipped_ellipticity(q, phi), ctx.x0, ctx.y0)
    lopsided = uniform(rng, prior.partial_lopsided if variant == "partial" else base.lopsided)
    ring = GaussianRing(
        1.0,
        radius,
        uniform(rng, base.width_over_sqrt_radius) * radius**0.5,
        shape.e1,
        shape.e2,
        ctx.x0,
        ctx.y0,
        lopsided=lopsided,
        angle=float(rng.uniform(0.0, 2.0 * math.pi)),
    )
    share = uniform(rng, prior.knots_share_of_ring) if variant != "smooth" else 0.0
    ring_colours = sed_blue_colours(rng, z, ctx.survey, base.ring_bluer)
    comps = [*core, Component(ring, band_fluxes((1.0 - share) * f_ring * total, ring_colours))]
    if share:
        k = int(rng.integers(*prior.n_knots))
        kx, ky = on_ellipse(shape, np.full(k, radius), rng.uniform(0.0, 2.0 * math.pi, size=k))
        comps += knot_groups(
            ctx,
            kx,
            ky,
            share * f_ring * total,
            z=z,
            sigma=prior.knot_sigma,
            groups=prior.knot_groups,
            bluer=prior.knots_bluer,
        )
    return Drawn(comps, size=radius, variant=variant)
