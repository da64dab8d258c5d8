"""Parts the wide population's drawers share: two-component red galaxies with a colour gradient,
irregular star-forming sources, quasar colours, and the choice of a class's variant.

Red galaxies (lens light, ellipticals, the centrals of groups and of blue neighbours) are a
compact inner component and an extended envelope: nearby ellipticals are fitted by a compact
core, an intermediate component and an outer envelope holding about half the light (Huang et
al. 2013, ApJ 766, 47); two components of the same centre keep that: an inner one of 0.25-0.6
and an envelope of 1.2-2.2 times the galaxy's r_e, sharing a Sersic index of 2-4.5 so that the
envelope's share of the light grows with radius at every radius (two indices cross over: the
cuspier one wins at the centre and again far out), which makes the colour fall monotonically. Early-type
galaxies are redder inside, by about 0.1-0.2 mag per dex of radius in g - r and g - i (Tortora
et al. 2010, MNRAS 407, 144; La Barbera & de Carvalho 2009, ApJ 699, L76): the inner
component is redder than the envelope by a drawn Delta(g - r), Delta(r - i) = Delta(g - r) / 2,
Delta(i - z) = 0.3 Delta(g - r), shared so that the light-weighted colour keeps the colour law's.
Lens light and non-lens red galaxies use the same parts, so that no look of the light tells
a lens from a non-lens.

Sources at z 1-3 are irregular: a Sersic body (sometimes two), plus star-forming clumps of
varied number, size and colour (clumps of 0.05-1 kpc, up to tens per galaxy, Guo et al. 2015,
ApJ 800, 39; at z ~ 2, 0.1 kpc ~ 0.012''), in up to three groups of their own colour, scattered
about a centre offset from the body's (asymmetric, as the clumpy galaxies of Elmegreen et al.
2007, ApJ 658, 763).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from lensflow.errors import SimulationError
from lensflow.simulate.colours import Colours, band_fluxes
from lensflow.simulate.draw_base import (
    DrawContext,
    IntRange,
    Range,
    clipped_ellipticity,
    clumps,
    uniform,
)
from lensflow.simulate.geometry import unrotated
from lensflow.simulate.light import LightProfile
from lensflow.simulate.scene import Component
from lensflow.simulate.sed_colours import sed_blue_colours, sed_red_colours
from lensflow.simulate.sersic import SersicEllipse


def pick_variant(ctx: DrawContext, chances: Mapping[str, float]) -> str:
    """The variant ctx asks for (checked against chances), else one drawn with those chances."""
    if ctx.variant is not None:
        if ctx.variant not in chances:
            raise SimulationError(
                f"unknown variant {ctx.variant!r}; this class has {sorted(chances)}"
            )
        return ctx.variant
    names = tuple(chances)
    u = float(ctx.rng.uniform()) * sum(chances.values())
    for name in names:
        u -= chances[name]
        if u < 0.0:
            return name
    return names[-1]


# --- red galaxies: bulge + envelope, redder centre --------------------------------------------


@dataclass(frozen=True)
class TwoComponentPrior:
    """An inner component and an envelope about one centre, in units of the galaxy's r_e."""

    inner_r_over_re: Range = (0.25, 0.6)
    n_sersic: Range = (2.0, 4.5)
    outer_r_over_re: Range = (1.2, 2.2)
    outer_share: Range = (0.4, 0.7)
    outer_q_change: Range = (-0.1, 0.1)
    twist_deg: float = 8.0
    gradient_gr: Range = (0.04, 0.2)
    gradient_ri_per_gr: float = 0.5
    gradient_iz_per_gr: float = 0.3


TWO_COMPONENT = TwoComponentPrior()


def shifted_colours(colours: Colours, delta_gr: float, prior: TwoComponentPrior) -> Colours:
    """Colours made redder by delta_gr in g - r (and the prior's share of it in r-i, i-z)."""
    gr, ri, iz = colours
    return (
        gr + delta_gr,
        ri + prior.gradient_ri_per_gr * delta_gr,
        iz + prior.gradient_iz_per_gr * delta_gr,
    )


def red_two_components(
    ctx: DrawContext,
    *,
    flux_r: float,
    r_e: float,
    q: float,
    phi: float,
    z: float,
    dx: float = 0.0,
    dy: float = 0.0,
    prior: TwoComponentPrior = TWO_COMPONENT,
) -> tuple[list[Component], dict[str, float]]:
    """The inner component and envelope of a red galaxy (r flux flux_r nJy, half-light radius
    r_e arcsec, axis ratio q, angle phi, redshift z) at (dx, dy) from the centre; and their
    parameters (outer share, colour gradient in g - r)."""
    rng = ctx.rng
    r_in = r_e * uniform(rng, prior.inner_r_over_re)
    r_out = r_e * uniform(rng, prior.outer_r_over_re)
    n_sersic = uniform(rng, prior.n_sersic)
    share = uniform(rng, prior.outer_share)
    q_out = min(max(q + uniform(rng, prior.outer_q_change), 0.1), 1.0)
    phi_out = phi + math.radians(prior.twist_deg) * float(rng.normal())
    gradient = uniform(rng, prior.gradient_gr)
    base = sed_red_colours(rng, z, ctx.survey)
    cx, cy = ctx.x0 + dx, ctx.y0 + dy
    inner = SersicEllipse.from_flux(1.0, r_in, n_sersic, *clipped_ellipticity(q, phi), cx, cy)
    outer = SersicEllipse.from_flux(
        1.0, r_out, n_sersic, *clipped_ellipticity(q_out, phi_out), cx, cy
    )
    comps = [
        Component(
            inner,
            band_fluxes((1.0 - share) * flux_r, shifted_colours(base, share * gradient, prior)),
        ),
        Component(
            outer,
            band_fluxes(share * flux_r, shifted_colours(base, -(1.0 - share) * gradient, prior)),
        ),
    ]
    params = {"light_outer_share": share, "colour_gradient_gr": gradient, "n_sersic": n_sersic}
    return comps, params


# --- irregular star-forming sources -----------------------------------------------------------


@dataclass(frozen=True)
class IrregularSourcePrior:
    """A star-forming galaxy at z 1-3: body, second body, clump groups (see module)."""

    r_sersic: Range = (0.05, 0.6)
    n_sersic: Range = (0.5, 4.0)
    q: Range = (0.2, 1.0)
    second_body_chance: float = 0.25
    second_offset_over_r: Range = (0.5, 2.5)
    second_share: Range = (0.15, 0.5)
    n_clumps: IntRange = (0, 26)
    clumps_share: Range = (0.1, 0.7)
    n_groups: IntRange = (1, 4)
    clump_sigma: Range = (0.01, 0.12)
    clump_spread_over_r: Range = (0.5, 2.0)
    clump_offset_over_r: Range = (0.0, 0.8)
    clumps_bluer: Range = (0.0, 0.5)


IRREGULAR_SOURCE = IrregularSourcePrior()


@dataclass(frozen=True)
class Parts:
    """Unit-flux light profiles of one object, each with its share of the flux and colours."""

    profiles: tuple[LightProfile, ...]
    shares: tuple[float, ...]
    colours: tuple[Colours, ...]
    params: Mapping[str, float]

    def components(self, flux_r: float, *, lensed: bool = False) -> list[Component]:
        """Components of total r flux flux_r (nJy)."""
        return [
            Component(p, band_fluxes(s * flux_r, c), lensed=lensed)
            for p, s, c in zip(self.profiles, self.shares, self.colours, strict=True)
        ]


def irregular_source(
    ctx: DrawContext,
    sx: float,
    sy: float,
    *,
    z: float,
    prior: IrregularSourcePrior = IRREGULAR_SOURCE,
) -> Parts:
    """A clumpy star-forming galaxy at redshift z about (sx, sy) arcsec (absolute, not from
    ctx's centre); its colours from SED templates (`sed_colours`)."""
    rng = ctx.rng
    lo, hi = prior.r_sersic
    r_s = 10.0 ** float(rng.uniform(math.log10(lo), math.log10(hi)))
    n_s = uniform(rng, prior.n_sersic)
    q_s = uniform(rng, prior.q)
    phi_s = float(rng.uniform(0.0, math.pi))
    body = SersicEllipse.from_flux(1.0, r_s, n_s, *clipped_ellipticity(q_s, phi_s), sx, sy)
    body_colours = sed_blue_colours(rng, z, ctx.survey)
    profiles: list[LightProfile] = [body]
    colours: list[Colours] = [body_colours]
    weights = [1.0]
    if rng.uniform() < prior.second_body_chance:
        d = r_s * uniform(rng, prior.second_offset_over_r)
        a = float(rng.uniform(0.0, 2.0 * math.pi))
        second = SersicEllipse.from_flux(
            1.0,
            r_s * float(rng.uniform(0.3, 1.0)),
            uniform(rng, (0.5, 1.5)),
            *clipped_ellipticity(uniform(rng, prior.q), float(rng.uniform(0.0, math.pi))),
            sx + d * math.cos(a),
            sy + d * math.sin(a),
        )
        profiles.append(second)
        colours.append(sed_blue_colours(rng, z, ctx.survey))
        second_share = uniform(rng, prior.second_share)
        weights = [1.0 - second_share, second_share]
    k = int(rng.integers(*prior.n_clumps))
    groups = 0
    clump_share = uniform(rng, prior.clumps_share) if k else 0.0
    if k:
        spread = r_s * uniform(rng, prior.clump_spread_over_r)
        off = r_s * uniform(rng, prior.clump_offset_over_r)
        a = float(rng.uniform(0.0, 2.0 * math.pi))
        cx, cy = sx + off * math.cos(a), sy + off * math.sin(a)
        ox = rng.normal(0.0, spread / math.sqrt(q_s), size=k)
        oy = rng.normal(0.0, spread * math.sqrt(q_s), size=k)
        xs, ys = unrotated(ox, oy, phi_s, cx, cy)
        groups = min(int(rng.integers(*prior.n_groups)), k)
        label = rng.integers(0, groups, size=k)
        label[:groups] = np.arange(groups)  # every group has a clump
        group_share = rng.dirichlet(np.ones(groups) * 2.0)
        for g in range(groups):
            idx = np.nonzero(label == g)[0]
            profiles.append(clumps(rng, xs[idx], ys[idx], prior.clump_sigma))
            young = uniform(rng, prior.clumps_bluer)
            colours.append(sed_blue_colours(rng, z, ctx.survey, young))
            weights.append(float(group_share[g]))
    bodies = len(profiles) - groups
    body_total = sum(weights[:bodies])
    shares = [(1.0 - clump_share) * w / body_total for w in weights[:bodies]]
    shares += [clump_share * w for w in weights[bodies:]]
    params = {
        "source_r_sersic": r_s,
        "source_n_sersic": n_s,
        "source_q": q_s,
        "source_n_clumps": float(k),
        "source_clump_groups": float(groups),
        "source_clumps_share": clump_share,
    }
    return Parts(tuple(profiles), tuple(shares), tuple(colours), params)


# --- quasars ----------------------------------------------------------------------------------

_QSO_Z = (1.0, 1.5, 2.0, 2.5, 3.0)
_QSO_GR = (0.15, 0.2, 0.15, 0.25, 0.5)
_QSO_RI = (0.2, 0.1, 0.15, 0.1, 0.15)
_QSO_IZ = (0.0, 0.1, 0.1, 0.05, 0.05)


def quasar_colours(rng: np.random.Generator, z: float) -> Colours:
    """(g-r, r-i, i-z) of a quasar at redshift z, 0.1 mag scatter: approximate medians read off
    the SDSS colour-redshift relation (Richards et al. 2001, AJ 121, 2308); g - r rises at z > 2.5
    as the Lyman-alpha forest enters g."""
    return (
        float(np.interp(z, _QSO_Z, _QSO_GR) + rng.normal(0.0, 0.1)),
        float(np.interp(z, _QSO_Z, _QSO_RI) + rng.normal(0.0, 0.1)),
        float(np.interp(z, _QSO_Z, _QSO_IZ) + rng.normal(0.0, 0.1)),
    )
