"""Lenses of the check set: EPL + shear deflectors with extended or quasar sources, kept only
when a human would call them detectable (`Detectability`, measured on the rendered system)."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from lensflow.errors import SimulationError
from lensflow.independent.deflectors import draw_deflector
from lensflow.independent.galaxies import star_forming_galaxy
from lensflow.independent.population import Deflector, Light, Points, Seeing, count_law
from lensflow.independent.render import (
    band_images,
    canvas_of,
    light_maps,
    noise_variance,
    psf_kernel,
)
from lensflow.independent.seds import SED, band_fluxes
from lensflow.independent.sources import (
    SOURCES,
    SourcePrior,
    clumps,
    image_positions,
    magnifications,
    shapelets,
)
from lensflow.surveys import Survey


@dataclass(frozen=True)
class Detectability:
    """When a drawn system counts as a lens (the check set's own criterion).

    Resolution, after Collett (2015, ApJ 811, 20): theta_E^2 >= r_s^2 + (FWHM / 2)^2 (the ring
    larger than the source and the seeing) and mu r_s >= FWHM / 2 (the arc resolved along
    its length), with r_s the source's half-light radius and FWHM the cutout's mean PSF FWHM;
    a quasar's images must span at least one FWHM. Also theta_E >= min_theta_e_over_fwhm FWHM
    and theta_E <= max_theta_e_over_half_size of the cutout's half-width (arcs inside). The
    source's total magnification (extended: lensed over unlensed flux at REF_NM; quasar: the
    sum of |mu| of its images) must reach min_magnification; the lensed light's matched-filter
    signal-to-noise over the lens-subtracted image, all image bands together (noise: sky plus
    the Poisson noise of lens and source), must reach min_snr; the lensed light must stand out
    of the lens light: in its pixels above the local noise it must make up min_contrast of all
    the light there in at least one band; a lensed quasar's second-brightest image must reach
    min_counter_image_snr on its own.
    """

    min_theta_e_over_fwhm: float = 0.5
    max_theta_e_over_half_size: float = 0.5
    min_magnification: float = 2.0
    min_snr: float = 40.0
    min_contrast: float = 0.3
    min_counter_image_snr: float = 8.0
    max_draws: int = 300

    def resolved(self, theta_e: float, r_s: float, mu: float, fwhm: float) -> bool:
        """Collett's two resolution conditions for an extended source of radius r_s."""
        return theta_e**2 >= r_s**2 + (fwhm / 2.0) ** 2 and mu * r_s >= fwhm / 2.0


DETECTABLE = Detectability()


def _point_snr(points: Points, variance: np.ndarray, seeing: Seeing, survey: Survey) -> list[float]:
    """Matched-filter S/N of each point, all bands, at the local variance of its pixel."""
    canvas = canvas_of(survey)
    fluxes = band_fluxes(
        points.sed, points.mag_ref, {b: survey.wavelength_nm[b] for b in survey.bands}
    )
    sharp = [
        canvas.ss**2 * float((psf_kernel(seeing, b, canvas.step) ** 2).sum()) for b in survey.bands
    ]
    out = []
    for x, y, w in zip(points.x, points.y, points.weights, strict=True):
        ix = int(np.clip(round(x / canvas.scale + (canvas.n - 1) / 2), 0, canvas.n - 1))
        iy = int(np.clip(round(y / canvas.scale + (canvas.n - 1) / 2), 0, canvas.n - 1))
        terms = [
            (fluxes[b] * w) ** 2 * sharp[k] / variance[k, iy, ix]
            for k, b in enumerate(survey.bands)
        ]
        out.append(math.sqrt(sum(terms)))
    return out


def contrast(arcs: np.ndarray, light: np.ndarray, variance: np.ndarray) -> float:
    """The best band's share of lensed light among all light, over the pixels where the lensed
    light (bands, n, n) exceeds the local noise."""
    best = 0.0
    for k in range(arcs.shape[0]):
        mask = arcs[k] > np.sqrt(variance[k])
        if mask.any():
            best = max(best, float(arcs[k][mask].sum() / (arcs[k][mask] + light[k][mask]).sum()))
    return best


def draw_lens(
    rng: np.random.Generator,
    *,
    survey: Survey,
    seeing: Seeing,
    center: tuple[float, float],
    criterion: Detectability = DETECTABLE,
    prior: SourcePrior = SOURCES,
) -> tuple[list[Light], list[Points], Deflector, dict[str, float]]:
    """A detectable lens: its lens and lensed lights, quasar images, deflector and parameters."""
    fwhm = seeing.mean_fwhm()
    half = 0.5 * survey.cutout_size * survey.pixel_scale_arcsec
    theta_range = (
        criterion.min_theta_e_over_fwhm * fwhm,
        criterion.max_theta_e_over_half_size * half,
    )
    canvas = canvas_of(survey)
    quasar = bool(rng.uniform() < prior.quasar_share)
    for draw in range(1, criterion.max_draws + 1):
        deflector, lens_lights, params = draw_deflector(
            rng, center=center, theta_e_range=theta_range
        )
        theta_e, z_s = deflector.theta_e, params["z_source"]
        beta_max = prior.quasar_beta_max if quasar else prior.beta_max
        beta = beta_max * theta_e * math.sqrt(float(rng.uniform()))
        angle = float(rng.uniform(0.0, 2.0 * math.pi))
        src = (center[0] + beta * math.cos(angle), center[1] + beta * math.sin(angle))
        points: list[Points] = []
        if quasar:
            qso_mag = count_law(rng, *prior.quasar_mags, slope=prior.slope)
            host_mag = qso_mag + float(rng.uniform(*prior.host_fainter))
            lensed = [star_forming_galaxy(rng, z=z_s, mag_ref=host_mag, center=src, lensed=True)]
            xs, ys = image_positions(deflector, *src)
            if xs.size < 2:
                continue
            mus = np.abs(magnifications(deflector, xs, ys))
            alpha_nu = float(rng.normal(-0.44, 0.2))
            points = [
                Points(
                    tuple(xs.tolist()),
                    tuple(ys.tolist()),
                    tuple(mus.tolist()),
                    SED("quasar", z_s, (alpha_nu,)),
                    qso_mag,
                )
            ]
            kind = 3
        else:
            mag = count_law(rng, *prior.mags, slope=prior.slope)
            base = star_forming_galaxy(rng, z=z_s, mag_ref=mag, center=src, lensed=True)
            kind = int(rng.choice(3, p=np.asarray(prior.kinds)))
            lensed = [base]
            if kind == 1:
                lensed += clumps(rng, base, prior)
                share = sum(10 ** (-0.4 * (c.mag_ref - mag)) for c in lensed[1:])
                lensed[0] = replace(base, mag_ref=mag - 2.5 * math.log10(1.0 - share))
            elif kind == 2:
                lensed = [shapelets(rng, base, prior)]
        maps = light_maps(lensed, deflector=deflector, canvas=canvas)
        ref = [10 ** (-0.4 * li.mag_ref) for li in lensed]
        mu_ext = sum(f * m.total for f, m in zip(ref, maps, strict=True)) / sum(ref)
        mu = float(sum(points[0].weights)) if quasar else mu_ext
        if mu < criterion.min_magnification:
            continue
        if quasar:
            span = float(np.max(np.hypot(xs[:, None] - xs[None, :], ys[:, None] - ys[None, :])))
            if span < fwhm:
                continue
        elif not criterion.resolved(theta_e, lensed[0].size, mu, fwhm):
            continue
        arcs = band_images(
            lensed,
            points,
            deflector=deflector,
            seeing=seeing,
            survey=survey,
            canvas=canvas,
            maps=maps,
        )
        light = band_images(
            lens_lights, [], deflector=None, seeing=seeing, survey=survey, canvas=canvas
        )
        variance = noise_variance(arcs + light, survey)
        snr = float(np.sqrt((arcs**2 / variance).sum()))
        share = contrast(arcs, light, variance)
        if snr < criterion.min_snr or share < criterion.min_contrast:
            continue
        counter = math.nan
        if quasar:
            counter = sorted(_point_snr(points[0], variance, seeing, survey))[-2]
            if counter < criterion.min_counter_image_snr:
                continue
        lensed = [replace(li, magnification=m.total) for li, m in zip(lensed, maps, strict=True)]
        params |= {
            "source_x": src[0],
            "source_y": src[1],
            "source_mag_ref": points[0].mag_ref if quasar else mag,
            "source_r_e": lensed[0].size,
            "source_kind": float(kind),
            "is_quasar": float(quasar),
            "n_images": float(len(points[0].x)) if quasar else math.nan,
            "magnification": mu,
            "arc_snr": snr,
            "arc_contrast": share,
            "counter_image_snr": counter,
            "psf_fwhm_mean": fwhm,
            "theta_e_over_fwhm": theta_e / fwhm,
            "draws": float(draw),
        }
        return lens_lights + lensed, points, deflector, params
    raise SimulationError(f"no detectable lens in {criterion.max_draws} draws ({criterion})")


LENS_PARAMS: tuple[str, ...] = (
    "theta_e",
    "sigma_v",
    "z_lens",
    "z_source",
    "gamma_slope",
    "lens_q",
    "lens_phi",
    "lens_e1",
    "lens_e2",
    "gamma_ext1",
    "gamma_ext2",
    "lens_x",
    "lens_y",
    "lens_r_e",
    "lens_mag_ref",
    "source_x",
    "source_y",
    "source_mag_ref",
    "source_r_e",
    "source_kind",
    "is_quasar",
    "n_images",
    "magnification",
    "arc_snr",
    "arc_contrast",
    "counter_image_snr",
    "psf_fwhm_mean",
    "theta_e_over_fwhm",
    "draws",
)
"""Keys of a lens's params, in order (labels columns; NaN where one does not apply)."""
