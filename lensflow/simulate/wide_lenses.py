"""The wide population's lens drawer: the classic deflector (SIE + shear, `LensPrior`), lens
light of two components with a redder centre, and an irregular clumpy source or a quasar.

A quasar lens (a fraction `quasar_chance` of lenses) is a point source behind the lens with its
host galaxy: the quasar's images are the solutions of the lens equation (`find_images`), each
of flux |mu| times the quasar's, and the host is lensed as an extended source. Lensed quasars
are about a tenth of the galaxy-scale lenses a survey like LSST finds (Oguri & Marshall 2010,
MNRAS 405, 2579, predict ~8,000 lensed quasars; Collett 2015, ApJ 811, 20, ~10^5 lensed
galaxies); training sees them more often. The quasar's unlensed r magnitude is drawn from
a steep count law in quasar_mag_r (quasar counts fall fast at bright magnitudes) and its host
is host_dmag fainter. Acceptance follows `LensCriteria` as for classic lenses, on all the lensed
light (host and images): magnification is the flux-weighted one of everything lensed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lensflow.errors import SimulationError
from lensflow.simulate.colours import band_fluxes
from lensflow.simulate.cosmology import einstein_radius
from lensflow.simulate.draw_base import (
    DrawContext,
    Drawn,
    Range,
    clipped_ellipticity,
    count_law,
    uniform,
)
from lensflow.simulate.draw_lenses import LENS, LensPrior, arc_snr, faber_jackson_mag_r
from lensflow.simulate.lensing import SIE, ExternalShear, LensModel
from lensflow.simulate.scene import Component, PointSource, Scene, scene_signal, unit_templates
from lensflow.simulate.wide_parts import (
    irregular_source,
    pick_variant,
    quasar_colours,
    red_two_components,
)
from lensflow.surveys import ab_to_njy, frozen, njy_to_ab


@dataclass(frozen=True)
class WideLensPrior:
    """The classic deflector and magnitudes (`base`), a quasar's chance and brightness."""

    base: LensPrior = LENS
    quasar_chance: float = 0.15
    quasar_mag_r: Range = (19.5, 24.5)
    quasar_mag_slope: float = 0.6
    host_dmag: Range = (0.3, 2.5)
    quasar_images: tuple[int, ...] = (2, 4)


WIDE_LENS = WideLensPrior()

LENS_VARIANTS = {"galaxy": 1.0 - WIDE_LENS.quasar_chance, "quasar": WIDE_LENS.quasar_chance}
"""Variants of a wide lens: a lensed galaxy, or a lensed quasar with its host."""


def _deflector(
    ctx: DrawContext, prior: LensPrior, fwhm_min: float
) -> tuple[LensModel, dict[str, float]] | None:
    """An SIE + shear at the centre from the classic prior, or None when theta_E is refused."""
    rng, crit = ctx.rng, ctx.criteria
    z_l = prior.z_lens_min + prior.z_lens_span * float(rng.beta(*prior.z_lens_beta))
    z_s = uniform(rng, prior.z_source)
    sigma_v = prior.sigma_v_min + prior.sigma_v_span * float(rng.beta(*prior.sigma_v_beta))
    theta_e = einstein_radius(sigma_v, z_l, z_s)
    lo, hi = prior.theta_e
    if not lo <= theta_e <= hi or theta_e < crit.min_theta_e_over_fwhm * fwhm_min:
        return None
    q_m = uniform(rng, prior.mass_q)
    phi_m = float(rng.uniform(0.0, math.pi))
    e1, e2 = clipped_ellipticity(q_m, phi_m)
    gamma = uniform(rng, prior.shear)
    shear_phi = float(rng.uniform(0.0, math.pi))
    g1, g2 = gamma * math.cos(2.0 * shear_phi), gamma * math.sin(2.0 * shear_phi)
    lens = LensModel((SIE(theta_e, e1, e2, ctx.x0, ctx.y0), ExternalShear(g1, g2, ctx.x0, ctx.y0)))
    params = {
        "theta_e": theta_e,
        "sigma_v": sigma_v,
        "z_lens": z_l,
        "z_source": z_s,
        "lens_x": ctx.x0,
        "lens_y": ctx.y0,
        "lens_q": q_m,
        "lens_phi": phi_m,
        "lens_e1": e1,
        "lens_e2": e2,
        "gamma_ext": gamma,
        "gamma_ext1": g1,
        "gamma_ext2": g2,
        "shear_phi": shear_phi,
    }
    return lens, params


def _lens_light_shape(
    ctx: DrawContext, prior: LensPrior, p: dict[str, float]
) -> tuple[float, float, float]:
    """(q, phi, r_e) of the lens light: aligned with the mass with scatter, size from sigma_v."""
    rng = ctx.rng
    q_l = float(np.clip(p["lens_q"] + rng.normal(0.0, prior.light_q_scatter), *prior.light_q))
    phi_l = p["lens_phi"] + float(rng.normal(0.0, math.radians(prior.light_phi_scatter_deg)))
    r_l = prior.r_light_at_250 * (p["sigma_v"] / 250.0) ** 1.2 * (0.5 / p["z_lens"]) ** 0.7
    r_l = float(np.clip(r_l * 10.0 ** rng.normal(0.0, prior.r_light_scatter_dex), *prior.r_light))
    return q_l, phi_l, r_l


def _probe(ctx: DrawContext, lens: LensModel) -> Scene:
    """A bare scene with the cutout's PSFs, to render the system for its acceptance test."""
    return Scene(
        kind="lens",
        is_lens=True,
        seed=(),
        mag={},
        extended=True,
        size_arcsec=0.0,
        params={},
        lens=lens,
        seeing=ctx.seeing,
        psf_model=ctx.psf_model,
        psf_shapes=ctx.psf,
    )


def draw_wide_lens(ctx: DrawContext, prior: WideLensPrior = WIDE_LENS) -> Drawn:
    """A wide lens meeting ctx.criteria (redrawn up to max_draws times; SimulationError after)."""
    rng, survey, crit, base = ctx.rng, ctx.survey, ctx.criteria, prior.base
    fwhm_min = min(ctx.fwhm(b) for b in survey.bands)
    n, scale = survey.cutout_size, survey.pixel_scale_arcsec
    variant = pick_variant(ctx, LENS_VARIANTS)
    for draw in range(1, crit.max_draws + 1):
        deflector = _deflector(ctx, base, fwhm_min)
        if deflector is None:
            continue
        lens, params = deflector
        theta_e = params["theta_e"]
        q_l, phi_l, r_l = _lens_light_shape(ctx, base, params)
        beta = base.source_beta_max * theta_e * math.sqrt(float(rng.uniform()))
        beta_angle = float(rng.uniform(0.0, 2.0 * math.pi))
        sx, sy = ctx.x0 + beta * math.cos(beta_angle), ctx.y0 + beta * math.sin(beta_angle)
        images: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        if variant == "quasar":
            images = lens.image_positions(sx, sy)
            if images[0].size not in prior.quasar_images:
                continue
        source = irregular_source(ctx, sx, sy, z=params["z_source"])
        templates = unit_templates(source.profiles, lens, n, scale)
        mu_parts = [float(t.sum()) for t in templates]
        mu_host = sum(s * m for s, m in zip(source.shares, mu_parts, strict=True))
        mu_points = float(np.abs(images[2]).sum()) if images is not None else 0.0
        # fluxes: lens light from Faber-Jackson, source from its counts (quasar: its own)
        if images is not None:
            q_mag = count_law(rng, *prior.quasar_mag_r, slope=prior.quasar_mag_slope)
            host_mag = q_mag + uniform(rng, prior.host_dmag)
            f_q, f_host = ab_to_njy(q_mag), ab_to_njy(host_mag)
        else:
            f_q, f_host = (
                0.0,
                ab_to_njy(count_law(rng, *base.source_mag_r, slope=base.source_mag_slope)),
            )
        mu = (f_host * mu_host + f_q * mu_points) / (f_host + f_q)
        if mu < crit.min_magnification:
            continue
        if ctx.mag_r is None:
            lens_mag = max(
                faber_jackson_mag_r(rng, params["sigma_v"], params["z_lens"], base),
                base.lens_mag_min,
            )
        else:
            total = ab_to_njy(ctx.mag_r)
            share = uniform(rng, base.source_share_at_mag_r)
            lens_mag = njy_to_ab((1.0 - share) * total)
            factor = share * total / (mu * (f_host + f_q))
            f_q, f_host = f_q * factor, f_host * factor
        light, light_params = red_two_components(
            ctx, flux_r=ab_to_njy(lens_mag), r_e=r_l, q=q_l, phi=phi_l, z=params["z_lens"]
        )
        arcs = source.components(f_host, lensed=True)
        arcs = [
            Component(c.profile, c.flux, lensed=True, magnification=m)
            for c, m in zip(arcs, mu_parts, strict=True)
        ]
        points: list[PointSource] = []
        if images is not None:
            q_flux = band_fluxes(f_q, quasar_colours(rng, params["z_source"]))
            points = [
                PointSource(
                    float(x), float(y), frozen({b: v * abs(float(m)) for b, v in q_flux.items()})
                )
                for x, y, m in zip(*images, strict=True)
            ]
        probe = _probe(ctx, lens)
        lensed_light = scene_signal(arcs, points, probe, survey)
        snr, _ = arc_snr(lensed_light, scene_signal(light, [], probe, survey), survey)
        if snr < crit.min_arc_snr:
            continue
        source_mag = njy_to_ab(f_host + f_q)
        params |= {
            "lens_light_q": q_l,
            "lens_light_phi": phi_l,
            "lens_r_sersic": r_l,
            "lens_n_sersic": light_params["n_sersic"],
            "lens_mag_r": lens_mag,
            "source_x": sx,
            "source_y": sy,
            **source.params,
            "source_mag_r": source_mag,
            "magnification": mu,
            "arc_snr": snr,
            "psf_fwhm_min": fwhm_min,
            "min_magnification": crit.min_magnification,
            "min_arc_snr": crit.min_arc_snr,
            "min_theta_e_over_fwhm": crit.min_theta_e_over_fwhm,
            "draws": float(draw),
            "lens_light_outer_share": light_params["light_outer_share"],
            "lens_colour_gradient_gr": light_params["colour_gradient_gr"],
            "quasar": 1.0 if images is not None else 0.0,
            "n_images": float(len(points)),
            "quasar_mag_r": njy_to_ab(f_q) if images is not None else math.inf,
        }
        f_lens, f_arcs = ab_to_njy(lens_mag), mu * (f_host + f_q)
        r_s = params["source_r_sersic"]
        size = math.sqrt((f_lens * r_l**2 + f_arcs * (theta_e**2 + r_s**2)) / (f_lens + f_arcs))
        return Drawn(
            light + arcs,
            points=points,
            lens=lens,
            params=params,
            size=size,
            scale_to_mag_r=False,
            variant=variant,
        )
    raise SimulationError(
        f"no {variant} lens met {crit} in {crit.max_draws} draws"
        + (f" at mag_r {ctx.mag_r}: try a brighter system" if ctx.mag_r is not None else "")
    )
