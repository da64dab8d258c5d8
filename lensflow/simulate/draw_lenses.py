"""The lens drawer: an SIE plus shear with a red lens galaxy and a clumpy lensed blue source.

A lens is redrawn until it shows lensing (LensCriteria): its Einstein radius against the
sharpest PSF, the source's extended magnification, and the arcs' signal-to-noise, all measured
on the noiselessly rendered system. The prior (`LensPrior`: redshifts, velocity dispersion in
km/s, shapes, sizes in arcsec, magnitudes AB) is frozen data beside the drawer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lensflow.errors import SimulationError
from lensflow.simulate.colours import band_fluxes, blue_colours, red_colours, red_k_correction_r
from lensflow.simulate.cosmology import einstein_radius, luminosity_distance
from lensflow.simulate.draw_base import (
    DrawContext,
    Drawn,
    IntRange,
    Range,
    clipped_ellipticity,
    clumps,
    count_law,
    sersic_light,
    uniform,
)
from lensflow.simulate.geometry import FloatArray, ellipticity_to_q_phi, unrotated
from lensflow.simulate.lensing import SIE, ExternalShear, LensModel
from lensflow.simulate.light import LightProfile
from lensflow.simulate.observe import noise_sigma
from lensflow.simulate.scene import Component, Scene, scene_signal, unit_templates
from lensflow.simulate.sersic import SersicEllipse
from lensflow.surveys import Survey, ab_to_njy, njy_to_ab


@dataclass(frozen=True)
class LensPrior:
    """Deflector, lens light and source of a galaxy-scale lens.

    z_lens = z_lens_min + z_lens_span Beta(a, b); sigma_v likewise (km/s); the lens light's
    half-light radius is r_light_at_250 (sigma_v / 250)^1.2 (0.5 / z_lens)^0.7 with log-normal
    scatter; its r magnitude follows the Faber-Jackson relation. The source lies within
    source_beta_max theta_E of the lens (uniform in area), its radius log-uniform.
    """

    z_lens_min: float = 0.2
    z_lens_span: float = 0.8
    z_lens_beta: Range = (2.0, 3.0)
    z_source: Range = (1.0, 3.0)
    sigma_v_min: float = 200.0
    sigma_v_span: float = 200.0
    sigma_v_beta: Range = (1.5, 2.5)
    theta_e: Range = (0.6, 3.0)
    mass_q: Range = (0.5, 1.0)
    shear: Range = (0.0, 0.1)
    light_q_scatter: float = 0.08
    light_q: Range = (0.4, 1.0)
    light_phi_scatter_deg: float = 10.0
    r_light_at_250: float = 0.9
    r_light_scatter_dex: float = 0.12
    r_light: Range = (0.3, 3.0)
    light_n_sersic: Range = (3.0, 5.5)
    fj_absolute_mag_at_250: float = -22.3
    fj_slope: float = 10.0
    fj_scatter: float = 0.35
    lens_mag_min: float = 17.0
    source_beta_max: float = 0.8
    source_r_sersic: Range = (0.08, 0.5)
    source_n_sersic: Range = (0.5, 2.0)
    source_q: Range = (0.3, 1.0)
    n_clumps: IntRange = (0, 6)
    clumps_share: Range = (0.1, 0.45)
    clump_sigma: Range = (0.02, 0.07)
    clumps_bluer: float = 0.15
    source_mag_r: Range = (21.0, 25.0)
    source_mag_slope: float = 0.2
    source_share_at_mag_r: Range = (0.05, 0.5)


LENS = LensPrior()


def arc_snr(
    source: FloatArray, lens_light: FloatArray, survey: Survey
) -> tuple[float, list[float]]:
    """Arc signal-to-noise per band: sum of the lensed light over pixels where it exceeds the
    local noise, over the square root of the summed variance there (sky, source, lens light)."""
    snrs = []
    for k, band in enumerate(survey.bands):
        sigma = noise_sigma(
            source[k] + lens_light[k], sky_sigma=survey.sky_sigma_njy[band], gain=survey.gain(band)
        )
        mask = source[k] > sigma
        snrs.append(
            float(source[k][mask].sum() / math.sqrt(float((sigma[mask] ** 2).sum())))
            if mask.any()
            else 0.0
        )
    return max(snrs), snrs


def faber_jackson_mag_r(
    rng: np.random.Generator, sigma_v: float, z: float, prior: LensPrior = LENS
) -> float:
    """Apparent r magnitude of an early-type galaxy of velocity dispersion sigma_v (km/s)."""
    absolute = (
        prior.fj_absolute_mag_at_250
        - prior.fj_slope * math.log10(sigma_v / 250.0)
        + float(rng.normal(0.0, prior.fj_scatter))
    )
    modulus = 5.0 * math.log10(luminosity_distance(z) * 1e5)
    return absolute + modulus + red_k_correction_r(z)


def draw_lens(ctx: DrawContext, prior: LensPrior = LENS) -> Drawn:
    """A lens meeting ctx.criteria (redrawn up to max_draws times; SimulationError after)."""
    rng, survey, crit = ctx.rng, ctx.survey, ctx.criteria
    fwhm_min = min(ctx.fwhm(b) for b in survey.bands)
    for draw in range(1, crit.max_draws + 1):
        z_l = prior.z_lens_min + prior.z_lens_span * float(rng.beta(*prior.z_lens_beta))
        z_s = uniform(rng, prior.z_source)
        sigma_v = prior.sigma_v_min + prior.sigma_v_span * float(rng.beta(*prior.sigma_v_beta))
        theta_e = einstein_radius(sigma_v, z_l, z_s)
        theta_lo, theta_hi = prior.theta_e
        if not theta_lo <= theta_e <= theta_hi or theta_e < crit.min_theta_e_over_fwhm * fwhm_min:
            continue
        q_m = uniform(rng, prior.mass_q)
        phi_m = float(rng.uniform(0.0, math.pi))
        e1, e2 = clipped_ellipticity(q_m, phi_m)
        gamma = uniform(rng, prior.shear)
        shear_phi = float(rng.uniform(0.0, math.pi))
        g1, g2 = gamma * math.cos(2.0 * shear_phi), gamma * math.sin(2.0 * shear_phi)
        lens = LensModel(
            (SIE(theta_e, e1, e2, ctx.x0, ctx.y0), ExternalShear(g1, g2, ctx.x0, ctx.y0))
        )
        # lens light: red Sersic aligned with the mass (with scatter)
        q_l = float(np.clip(q_m + rng.normal(0.0, prior.light_q_scatter), *prior.light_q))
        phi_l = phi_m + float(rng.normal(0.0, math.radians(prior.light_phi_scatter_deg)))
        r_l = float(
            np.clip(
                prior.r_light_at_250
                * (sigma_v / 250.0) ** 1.2
                * (0.5 / z_l) ** 0.7
                * 10.0 ** rng.normal(0.0, prior.r_light_scatter_dex),
                *prior.r_light,
            )
        )
        n_l = uniform(rng, prior.light_n_sersic)
        lens_light = sersic_light(ctx, r_sersic=r_l, n_sersic=n_l, q=q_l, phi=phi_l)
        # source: Sersic plus star-forming clumps, inside the caustic region mostly
        beta = prior.source_beta_max * theta_e * math.sqrt(float(rng.uniform()))
        beta_angle = float(rng.uniform(0.0, 2.0 * math.pi))
        sx, sy = ctx.x0 + beta * math.cos(beta_angle), ctx.y0 + beta * math.sin(beta_angle)
        r_lo, r_hi = prior.source_r_sersic
        r_s = 10.0 ** float(rng.uniform(math.log10(r_lo), math.log10(r_hi)))
        n_s = uniform(rng, prior.source_n_sersic)
        q_s = uniform(rng, prior.source_q)
        es1, es2 = clipped_ellipticity(q_s, float(rng.uniform(0.0, math.pi)))
        source = SersicEllipse.from_flux(1.0, r_s, n_s, es1, es2, sx, sy)
        n_clumps = int(rng.integers(*prior.n_clumps))
        f_clumps = uniform(rng, prior.clumps_share) if n_clumps else 0.0
        lensed: list[LightProfile] = [source]
        if n_clumps:
            off_x = rng.normal(0.0, r_s / math.sqrt(q_s), size=n_clumps)
            off_y = rng.normal(0.0, r_s * math.sqrt(q_s), size=n_clumps)
            _, phi_s = ellipticity_to_q_phi(es1, es2)
            cx, cy = unrotated(off_x, off_y, phi_s, sx, sy)
            lensed.append(clumps(rng, cx, cy, prior.clump_sigma))
        n, scale = survey.cutout_size, survey.pixel_scale_arcsec
        templates = unit_templates(tuple(lensed), lens, n, scale)
        mus = [float(t.sum()) for t in templates]
        mu = (1.0 - f_clumps) * mus[0] + (f_clumps * mus[1] if n_clumps else 0.0)
        if mu < crit.min_magnification:
            continue
        # fluxes
        source_colours = blue_colours(rng)
        clump_colours = blue_colours(rng, prior.clumps_bluer)
        if ctx.mag_r is None:
            lens_mag = max(faber_jackson_mag_r(rng, sigma_v, z_l, prior), prior.lens_mag_min)
            source_mag = count_law(rng, *prior.source_mag_r, slope=prior.source_mag_slope)
        else:
            total = ab_to_njy(ctx.mag_r)
            share = uniform(rng, prior.source_share_at_mag_r)
            lens_mag = njy_to_ab((1.0 - share) * total)
            source_mag = njy_to_ab(share * total / mu)
        f_src = ab_to_njy(source_mag)
        comps = [
            Component(lens_light, band_fluxes(ab_to_njy(lens_mag), red_colours(rng, z_l))),
            Component(
                source,
                band_fluxes((1.0 - f_clumps) * f_src, source_colours),
                lensed=True,
                magnification=mus[0],
            ),
        ]
        if n_clumps:
            comps.append(
                Component(
                    lensed[1],
                    band_fluxes(f_clumps * f_src, clump_colours),
                    lensed=True,
                    magnification=mus[1],
                )
            )
        probe = Scene(
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
        )
        arcs = scene_signal(comps[1:], [], probe, survey)
        light = scene_signal(comps[:1], [], probe, survey)
        snr, _ = arc_snr(arcs, light, survey)
        if snr < crit.min_arc_snr:
            continue
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
            "lens_light_q": q_l,
            "lens_light_phi": phi_l,
            "lens_r_sersic": r_l,
            "lens_n_sersic": n_l,
            "lens_mag_r": lens_mag,
            "source_x": sx,
            "source_y": sy,
            "source_r_sersic": r_s,
            "source_n_sersic": n_s,
            "source_q": q_s,
            "source_n_clumps": float(n_clumps),
            "source_mag_r": source_mag,
            "magnification": mu,
            "arc_snr": snr,
            "psf_fwhm_min": fwhm_min,
            "min_magnification": crit.min_magnification,
            "min_arc_snr": crit.min_arc_snr,
            "min_theta_e_over_fwhm": crit.min_theta_e_over_fwhm,
            "draws": float(draw),
        }
        f_lens = ab_to_njy(lens_mag)
        f_arcs = mu * f_src
        size = math.sqrt((f_lens * r_l**2 + f_arcs * (theta_e**2 + r_s**2)) / (f_lens + f_arcs))
        return Drawn(comps, lens=lens, params=params, size=size, scale_to_mag_r=False)
    raise SimulationError(
        f"no lens met {crit} in {crit.max_draws} draws"
        + (f" at mag_r {ctx.mag_r}: try a brighter system" if ctx.mag_r is not None else "")
    )
