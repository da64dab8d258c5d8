"""Faint field galaxies at deep-field number counts (the wide population): every cutout has them.

Counts: the LSST Science Book's fit to deep i-band counts (LSST Science Collaboration 2009,
arXiv:0912.0201, eq. 3.7), N(< i) = 46 x 10^(0.31 (i - 25)) galaxies per arcmin^2, i.e.
dN/di = 0.31 ln(10) N(< i) per arcmin^2 per magnitude (1.2e5 per deg^2 per mag at i = 25),
fitted for 20.5 < i < 25.5 and carried here to 2 mag below the survey's 5-sigma point depth in
i (lsst: 25.8 + 2; about 15 galaxies in a 12.8'' cutout). A profile without an i band uses its
r band, with i = r - 0.4 (a typical faint galaxy's r - i). Galaxies are uniform over the
cutout, the centre included (faint galaxies overlap real targets), and are not catalogued.

Sizes: the size-magnitude relation of faint discs in HST imaging used as the CFHTLenS size
prior (Miller et al. 2013, MNRAS 429, 2858): median exponential scale length
ln(r_d / arcsec) = -1.145 - 0.269 (i - 23), half-light radius 1.678 r_d, with a log-normal
scatter of 0.2 dex; red (early-type) field galaxies are 0.7 times smaller and have higher
Sersic indices. About a quarter of faint field galaxies are red.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lensflow.simulate.colours import band_fluxes
from lensflow.simulate.draw_base import DrawContext, Range, clipped_ellipticity, count_law, uniform
from lensflow.simulate.scene import Component
from lensflow.simulate.sed_colours import sed_blue_colours, sed_red_colours
from lensflow.simulate.sersic import SersicEllipse
from lensflow.surveys import Survey, ab_to_njy


@dataclass(frozen=True)
class FieldCountsPrior:
    """Deep-field counts N(< m) = n_at_25 10^(slope (m - 25)) per arcmin^2 in `band`, between
    `bright` and below_depth under the 5-sigma point depth; sizes and colours (see module)."""

    band: str = "i"
    fallback_band: str = "r"
    fallback_offset: float = 0.4
    n_at_25_per_arcmin2: float = 46.0
    slope: float = 0.31
    bright: float = 20.5
    below_depth: float = 2.0
    scale_length_ln_at_23: float = -1.145
    scale_length_ln_per_mag: float = -0.269
    half_light_per_scale_length: float = 1.678
    size_scatter_dex: float = 0.2
    r_e_max: float = 3.0
    red_chance: float = 0.25
    red_size_factor: float = 0.7
    red_z: Range = (0.3, 1.2)
    blue_z: Range = (0.2, 2.5)
    blue_n_sersic: Range = (0.5, 1.5)
    red_n_sersic: Range = (2.0, 4.0)
    q: Range = (0.2, 1.0)


FIELD_COUNTS = FieldCountsPrior()


def count_band(survey: Survey, prior: FieldCountsPrior = FIELD_COUNTS) -> tuple[str, float]:
    """The band the counts are drawn in and its offset m_band = i + offset from the i counts."""
    if prior.band in survey.catalog_bands:
        return prior.band, 0.0
    return prior.fallback_band, prior.fallback_offset


def magnitude_range(survey: Survey, prior: FieldCountsPrior = FIELD_COUNTS) -> Range:
    """(bright, faint) AB limits of the field galaxies in the count band."""
    band, offset = count_band(survey, prior)
    if band in survey.bands:
        depth = survey.point_depth(band)
    else:
        depth = min(survey.point_depth(b) for b in survey.bands)
    return prior.bright + offset, depth + prior.below_depth


def cumulative_count(
    mag: float, prior: FieldCountsPrior = FIELD_COUNTS, offset: float = 0.0
) -> float:
    """N(< mag) per arcmin^2 in the count band (offset: the band's m - i)."""
    return float(prior.n_at_25_per_arcmin2 * 10.0 ** (prior.slope * (mag - offset - 25.0)))


def expected_count(
    survey: Survey, lo: float, hi: float, prior: FieldCountsPrior = FIELD_COUNTS
) -> float:
    """Mean number of field galaxies per cutout with count-band magnitude in [lo, hi)."""
    _, offset = count_band(survey, prior)
    side = survey.cutout_size * survey.pixel_scale_arcsec / 60.0
    return side * side * (cumulative_count(hi, prior, offset) - cumulative_count(lo, prior, offset))


def half_light_radius(mag_i: float, prior: FieldCountsPrior = FIELD_COUNTS) -> float:
    """Median half-light radius (arcsec) of a faint disc of i magnitude mag_i."""
    ln_rd = prior.scale_length_ln_at_23 + prior.scale_length_ln_per_mag * (mag_i - 23.0)
    return prior.half_light_per_scale_length * math.exp(ln_rd)


def counted_field_galaxies(
    ctx: DrawContext, prior: FieldCountsPrior = FIELD_COUNTS
) -> list[Component]:
    """Field galaxies over the whole cutout: a Poisson number at the counts, each a Sersic."""
    rng, survey = ctx.rng, ctx.survey
    band, offset = count_band(survey, prior)
    lo, hi = magnitude_range(survey, prior)
    half = 0.5 * survey.cutout_size * survey.pixel_scale_arcsec
    comps = []
    for _ in range(int(rng.poisson(expected_count(survey, lo, hi, prior)))):
        mag = count_law(rng, lo, hi, slope=prior.slope)
        x, y = (float(v) for v in rng.uniform(-half, half, size=2))
        red = rng.uniform() < prior.red_chance
        r_e = half_light_radius(mag - offset, prior) * 10.0 ** (
            prior.size_scatter_dex * float(rng.normal())
        )
        r_e = min(r_e * (prior.red_size_factor if red else 1.0), prior.r_e_max)
        n_sersic = uniform(rng, prior.red_n_sersic if red else prior.blue_n_sersic)
        e1, e2 = clipped_ellipticity(uniform(rng, prior.q), float(rng.uniform(0.0, math.pi)))
        z = uniform(rng, prior.red_z if red else prior.blue_z)
        sed = sed_red_colours if red else sed_blue_colours
        colours = sed(rng, z, survey)
        # the counts' band's flux; band_fluxes wants r: r = m_band + (r - band) colour
        to_r = {"g": colours[0], "r": 0.0, "i": -colours[1], "z": -colours[1] - colours[2]}
        flux_r = ab_to_njy(mag) * 10.0 ** (0.4 * to_r.get(band, 0.0))
        profile = SersicEllipse.from_flux(1.0, r_e, n_sersic, e1, e2, x, y)
        comps.append(Component(profile, band_fluxes(flux_r, colours), in_catalog=False))
    return comps
