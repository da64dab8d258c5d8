"""Painting one simulated lensed source onto a real cutout of a deflector.

The deflector's velocity dispersion follows from its r magnitude and redshift (`FaberJackson`,
with log-normal scatter), theta_E from the SIS relation at a drawn source redshift
(lensflow.simulate.cosmology.einstein_radius); the mass is an SIE plus external shear centred on
the deflector's light, its angle that of the light (with scatter). The source is lensflow's
lens source: a Sersic profile plus star-forming clumps (as `draw_lens` draws it), ray-traced
and rendered by lensflow's lensing engine (`unit_templates`), convolved per band with the
store's PSF, with its own Poisson noise at the band's gain, added to the cutout, whose own
noise is already there. A draw is kept when it meets the LensCriteria floors (theta_E over the
sharpest FWHM, the source's magnification, the arcs' signal-to-noise against the cutout's
measured sky noise plus the Poisson noise of cutout and arcs).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from lensflow.simulate.colours import band_fluxes, blue_colours, in_bands
from lensflow.simulate.cosmology import einstein_radius
from lensflow.simulate.draw_base import Range, clipped_ellipticity, clumps, count_law, uniform
from lensflow.simulate.draw_lenses import LENS
from lensflow.simulate.geometry import ellipticity_to_q_phi, unrotated
from lensflow.simulate.inject_deflectors import Deflector, FaberJackson
from lensflow.simulate.lensing import SIE, ExternalShear, LensModel
from lensflow.simulate.light import LightProfile
from lensflow.simulate.observe import add_noise, convolve, noise_sigma, psf_kernel
from lensflow.simulate.scene import LensCriteria, unit_templates
from lensflow.simulate.sersic import SersicEllipse
from lensflow.surveys import Survey, ab_to_njy


@dataclass(frozen=True)
class InjectionPrior:
    """What is drawn for an injection (defaults: those of lensflow's simulated lenses, LENS).

    Mass axis ratio uniform in mass_q, its angle the light's plus N(0, mass_phi_scatter_deg)
    (uniform when the light is rounder than round_light_q); the rest as `LensPrior`.
    """

    z_source: Range = LENS.z_source
    min_z_gap: float = 0.1
    theta_e: Range = LENS.theta_e
    mass_q: Range = LENS.mass_q
    mass_phi_scatter_deg: float = LENS.light_phi_scatter_deg
    round_light_q: float = 0.97
    shear: Range = LENS.shear
    source_beta_max: float = LENS.source_beta_max
    source_r_sersic: Range = LENS.source_r_sersic
    source_n_sersic: Range = LENS.source_n_sersic
    source_q: Range = LENS.source_q
    n_clumps: tuple[int, int] = LENS.n_clumps
    clumps_share: Range = LENS.clumps_share
    clump_sigma: Range = LENS.clump_sigma
    clumps_bluer: float = LENS.clumps_bluer
    source_mag_r: Range = LENS.source_mag_r
    source_mag_slope: float = LENS.source_mag_slope


@dataclass(frozen=True)
class Imaging:
    """How a store's cutouts were observed: bands, pixel scale (arcsec), size (px), PSF FWHM
    (arcsec) and gain (counts per nJy) per band, the PSF shape, and the survey profile whose
    wavelengths give fluxes in bands the colour laws lack; gain_from says where the gain came
    from."""

    bands: tuple[str, ...]
    pixel_scale: float
    size: int
    psf_fwhm: tuple[float, ...]
    gain: tuple[float, ...]
    psf_model: str
    survey: Survey
    gain_from: str = ""


@dataclass(frozen=True)
class Painted:
    """An injection: the cutout with the arcs, float32 (bands, n, n); the noiseless arcs
    (bands, n, n) nJy; the parameters; the source's magnified flux per band (nJy)."""

    image: npt.NDArray[np.float32]
    arcs: npt.NDArray[np.float64]
    params: dict[str, float]
    arc_flux: dict[str, float]


def arc_snr(
    arcs: npt.NDArray[np.float64],
    cutout: npt.NDArray[np.floating],
    deflector: Deflector,
    imaging: Imaging,
) -> float:
    """Best band's arc signal-to-noise: lensed light summed where it exceeds the local noise
    (the cutout's sky sigma, Poisson noise of cutout and arcs), over that noise."""
    best = 0.0
    for k in range(len(imaging.bands)):
        sigma = noise_sigma(
            arcs[k] + cutout[k], sky_sigma=deflector.sky_sigma[k], gain=imaging.gain[k]
        )
        mask = arcs[k] > sigma
        if mask.any():
            best = max(
                best, float(arcs[k][mask].sum() / math.sqrt(float((sigma[mask] ** 2).sum())))
            )
    return best


def paint_lens(
    cutout: npt.ArrayLike,
    deflector: Deflector,
    *,
    rng: np.random.Generator,
    imaging: Imaging,
    criteria: LensCriteria,
    prior: InjectionPrior,
    relation: FaberJackson,
    noise: bool = True,
) -> Painted | None:
    """Draw a lensed source behind a deflector until it meets the criteria (at most
    criteria.max_draws draws); the painted cutout, or None when no draw did."""
    image = np.asarray(cutout, dtype=np.float64)
    n, scale = imaging.size, imaging.pixel_scale
    fwhm_min = min(imaging.psf_fwhm)
    z_l = deflector.z
    if not (z_l > 0.0 and math.isfinite(deflector.mag_r)):
        return None
    sigma_mean = relation.sigma_kms(deflector.mag_r, z_l)
    kernels = np.stack([psf_kernel(imaging.psf_model, f, scale) for f in imaging.psf_fwhm])
    for draw in range(1, criteria.max_draws + 1):
        z_s = uniform(rng, prior.z_source)
        sigma_v = sigma_mean * 10.0 ** float(rng.normal(0.0, relation.scatter_dex))
        if z_s < z_l + prior.min_z_gap:
            continue
        theta_e = einstein_radius(sigma_v, z_l, z_s)
        lo, hi = prior.theta_e
        if not lo <= theta_e <= hi or theta_e < criteria.min_theta_e_over_fwhm * fwhm_min:
            continue
        q_m = uniform(rng, prior.mass_q)
        scatter = float(rng.normal(0.0, math.radians(prior.mass_phi_scatter_deg)))
        round_light = deflector.light_q > prior.round_light_q
        phi_m = float(rng.uniform(0.0, math.pi)) if round_light else deflector.light_phi + scatter
        e1, e2 = clipped_ellipticity(q_m, phi_m)
        gamma = uniform(rng, prior.shear)
        shear_phi = float(rng.uniform(0.0, math.pi))
        g1, g2 = gamma * math.cos(2.0 * shear_phi), gamma * math.sin(2.0 * shear_phi)
        x0, y0 = deflector.x, deflector.y
        lens = LensModel((SIE(theta_e, e1, e2, x0, y0), ExternalShear(g1, g2, x0, y0)))
        beta = prior.source_beta_max * theta_e * math.sqrt(float(rng.uniform()))
        beta_angle = float(rng.uniform(0.0, 2.0 * math.pi))
        sx, sy = x0 + beta * math.cos(beta_angle), y0 + beta * math.sin(beta_angle)
        r_lo, r_hi = prior.source_r_sersic
        r_s = 10.0 ** float(rng.uniform(math.log10(r_lo), math.log10(r_hi)))
        n_s = uniform(rng, prior.source_n_sersic)
        q_s = uniform(rng, prior.source_q)
        es1, es2 = clipped_ellipticity(q_s, float(rng.uniform(0.0, math.pi)))
        lights: list[LightProfile] = [SersicEllipse.from_flux(1.0, r_s, n_s, es1, es2, sx, sy)]
        n_clumps = int(rng.integers(*prior.n_clumps))
        share = uniform(rng, prior.clumps_share) if n_clumps else 0.0
        if n_clumps:
            off_x = rng.normal(0.0, r_s / math.sqrt(q_s), size=n_clumps)
            off_y = rng.normal(0.0, r_s * math.sqrt(q_s), size=n_clumps)
            cx, cy = unrotated(off_x, off_y, ellipticity_to_q_phi(es1, es2)[1], sx, sy)
            lights.append(clumps(rng, cx, cy, prior.clump_sigma))
        templates = unit_templates(tuple(lights), lens, n, scale)
        mus = [float(t.sum()) for t in templates]
        mu = (1.0 - share) * mus[0] + (share * mus[1] if n_clumps else 0.0)
        if mu < criteria.min_magnification:
            continue
        source_mag = count_law(rng, *prior.source_mag_r, slope=prior.source_mag_slope)
        f_src = ab_to_njy(source_mag)
        fluxes = [
            in_bands(band_fluxes((1.0 - share) * f_src, blue_colours(rng)), imaging.survey),
            in_bands(
                band_fluxes(share * f_src, blue_colours(rng, prior.clumps_bluer)), imaging.survey
            ),
        ][: len(lights)]
        weights = np.array([[f[b] for f in fluxes] for b in imaging.bands])  # (bands, lights)
        arcs = convolve(np.tensordot(weights, templates, axes=(1, 0)), kernels)
        snr = arc_snr(arcs, image, deflector, imaging)
        if snr < criteria.min_arc_snr:
            continue
        added = arcs.copy()
        if noise:
            for k, gain in enumerate(imaging.gain):
                added[k] = add_noise(arcs[k], sky_sigma=0.0, gain=gain, rng=rng)
        params = {
            "theta_e": theta_e,
            "sigma_v": sigma_v,
            "z_lens": z_l,
            "z_source": z_s,
            "z_lens_from_colour": float(deflector.z_from_colour),
            "lens_x": x0,
            "lens_y": y0,
            "lens_q": q_m,
            "lens_phi": phi_m,
            "lens_e1": e1,
            "lens_e2": e2,
            "gamma_ext": gamma,
            "gamma_ext1": g1,
            "gamma_ext2": g2,
            "shear_phi": shear_phi,
            "lens_light_q": deflector.light_q,
            "lens_light_phi": deflector.light_phi,
            "lens_mag_r": deflector.mag_r,
            "source_x": sx,
            "source_y": sy,
            "source_r_sersic": r_s,
            "source_n_sersic": n_s,
            "source_q": q_s,
            "source_e1": es1,
            "source_e2": es2,
            "source_n_clumps": float(n_clumps),
            "source_mag_r": source_mag,
            "magnification": mu,
            "arc_snr": snr,
            "psf_fwhm_min": fwhm_min,
            "min_magnification": criteria.min_magnification,
            "min_arc_snr": criteria.min_arc_snr,
            "min_theta_e_over_fwhm": criteria.min_theta_e_over_fwhm,
            "draws": float(draw),
        }
        arc_flux = {b: float(weights[k] @ np.array(mus)) for k, b in enumerate(imaging.bands)}
        return Painted((image + added).astype(np.float32), arcs, params, arc_flux)
    return None
