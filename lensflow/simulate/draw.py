"""Drawing scenes from a seed: `draw_scene` for one, `simulate_cutouts` to draw and render many.

`draw_scene` draws parameters only (a lens also renders its lensed source, noiselessly, for its
acceptance test; the templates are cached for the render that usually follows): the seeing and
PSF model of the cutout, the sub-pixel centre, then the class's drawer (DRAWERS), field
galaxies and occasional artefacts, all from the scene's parameter stream. The seeing prior is
the survey profile's; the colour laws give light in g, r, i and z, and every light is given the
profile's other bands here, in one place (`lensflow.simulate.colours.in_bands`; a bright star's
halo gets them where it is drawn, since the artefact class measures it in every image band).
A lens's acceptance test sees the laws' four bands only. Magnitudes are normalised in r, so a
profile without r cannot be simulated (`check_survey`). The population (`population.py`) picks
the drawers, field galaxies, PSF shapes and noise; "classic" is the default and draws exactly
what it always drew; "wide" draws its PSF shapes and coadd noise after the centre.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import TypeVar

import numpy as np
import numpy.typing as npt
from frozendict import frozendict

from lensflow.errors import SimulationError
from lensflow.simulate.coadd_noise import CoaddNoise, draw_coadd_noise
from lensflow.simulate.colours import in_bands, scaled_fluxes
from lensflow.simulate.draw_base import DrawContext, Drawn, uniform
from lensflow.simulate.draw_galaxies import (
    draw_disc_edge_on,
    draw_disc_face_on,
    draw_elliptical,
    draw_spiral,
    field_galaxies,
)
from lensflow.simulate.draw_lenses import draw_lens
from lensflow.simulate.draw_lookalikes import (
    draw_blue_neighbours,
    draw_group,
    draw_merger,
    draw_ring,
)
from lensflow.simulate.draw_stars import draw_artefact, draw_star, extra_artefacts
from lensflow.simulate.field_counts import counted_field_galaxies
from lensflow.simulate.observe import Artefact, StarHalo
from lensflow.simulate.population import (
    DEFAULT_POPULATION,
    WIDE_DRAWERS,
    WIDE_VARIANTS,
    check_population,
)
from lensflow.simulate.psf_shapes import draw_psf_shapes
from lensflow.simulate.scene import (
    DEFAULT_CRITERIA,
    Component,
    LensCriteria,
    PointSource,
    Scene,
    render_scene,
    scene_rng,
    seed_tuple,
)
from lensflow.surveys import Survey, frozen, njy_to_ab, survey_profile

DRAWERS: dict[str, Callable[[DrawContext], Drawn]] = {
    "lens": draw_lens,
    "elliptical": draw_elliptical,
    "spiral": draw_spiral,
    "disc_face_on": draw_disc_face_on,
    "disc_edge_on": draw_disc_edge_on,
    "ring": draw_ring,
    "merger": draw_merger,
    "blue_neighbours": draw_blue_neighbours,
    "group": draw_group,
    "star": draw_star,
    "artefact": draw_artefact,
}
"""The drawer of each class."""


MOFFAT_CHANCE = 0.7
"""The chance that a cutout's PSF is a Moffat (else a Gaussian) profile."""


def check_survey(survey: Survey) -> None:
    """Refuse a profile the simulator cannot draw for: magnitudes are normalised in r."""
    if "r" not in survey.catalog_bands:
        raise SimulationError(
            f"survey {survey.name!r} has no r band (catalog bands {list(survey.catalog_bands)}): "
            "the simulator draws magnitudes in r and needs r among the catalog bands"
        )


def _seeing(rng: np.random.Generator, survey: Survey) -> frozendict[str, float]:
    """Seeing factors per catalog band: a common factor in the profile's seeing_range, times
    (1 + N(0, seeing_scatter)) per band, clipped to that range."""
    lo, hi = survey.seeing_range
    common = uniform(rng, (lo, hi))
    scatter = survey.seeing_scatter
    return frozen(
        {
            b: float(np.clip(common * (1.0 + rng.normal(0.0, scatter)), lo, hi))
            for b in survey.catalog_bands
        }
    )


Light = TypeVar("Light", Component, PointSource, Artefact)


def _in_survey_bands(items: Sequence[Light], survey: Survey) -> list[Light]:
    """Lights (components, points, star halos) with a flux in every catalog band of the survey."""
    out: list[Light] = []
    for item in items:
        if isinstance(item, Component | PointSource | StarHalo):
            flux = in_bands(item.flux, survey)
            if flux is not item.flux:
                item = replace(item, flux=flux)
        out.append(item)
    return out


def _system_mag(drawn: Drawn, bands: Sequence[str]) -> dict[str, float]:
    """AB magnitudes per band of what the catalog counts (lensed light magnified)."""
    mags = {}
    for band in bands:
        total = sum(
            c.flux.get(band, 0.0) * c.magnification for c in drawn.components if c.in_catalog
        )
        total += sum(p.flux.get(band, 0.0) for p in drawn.points if p.in_catalog)
        mags[band] = njy_to_ab(total)
    return mags


def _scaled_to_mag_r(drawn: Drawn, mag_r: float) -> None:
    """Scale the catalogued light of a drawn system (in place) to an r magnitude."""
    now = _system_mag(drawn, ["r"])["r"]
    factor = 10.0 ** (-0.4 * (mag_r - now))
    drawn.components = [
        replace(c, flux=scaled_fluxes(c.flux, factor)) if c.in_catalog else c
        for c in drawn.components
    ]
    drawn.points = [
        replace(p, flux=scaled_fluxes(p.flux, factor)) if p.in_catalog else p for p in drawn.points
    ]
    drawn.artefacts = [
        replace(a, flux=scaled_fluxes(a.flux, factor)) if isinstance(a, StarHalo) else a
        for a in drawn.artefacts
    ]


def draw_scene(
    kind: str,
    *,
    seed: Sequence[int] | int,
    survey: Survey | None = None,
    mag_r: float | None = None,
    criteria: LensCriteria = DEFAULT_CRITERIA,
    population: str = DEFAULT_POPULATION,
    variant: str | None = None,
) -> Scene:
    """Draw a scene of a class from a seed: parameters only (lenses: plus an acceptance render).

    mag_r fixes the r magnitude of the catalogued system (for a lens, lens plus magnified source;
    for an artefact, its flux in a 1 arcsec aperture). Lenses are redrawn until they meet
    `criteria`, deterministically from the seed; the floors are written into params. survey:
    the profile (default: lsst). population: "classic" or "wide"; variant: the wide class's
    variant to draw (None: by chance; see `population.WIDE_VARIANTS`).
    """
    survey = survey or survey_profile()
    check_survey(survey)
    wide = check_population(population) == "wide"
    if variant is not None and variant not in (WIDE_VARIANTS.get(kind, ()) if wide else ()):
        raise SimulationError(
            f"class {kind!r} of population {population!r} has no variant {variant!r}; "
            f"it has {list(WIDE_VARIANTS.get(kind, ())) if wide else []}"
        )
    seeds = seed_tuple(seed)
    rng = scene_rng(seeds, kind, 0)
    seeing = _seeing(rng, survey)
    psf_model = "moffat" if rng.uniform() < MOFFAT_CHANCE else "gaussian"
    half_pixel = 0.5 * survey.pixel_scale_arcsec
    x0, y0 = (float(v) for v in rng.uniform(-half_pixel, half_pixel, size=2))
    ctx = DrawContext(rng, survey, mag_r, criteria, seeing, psf_model, x0, y0)
    noise: frozendict[str, CoaddNoise] = frozendict()
    if wide:
        psf = draw_psf_shapes(rng, survey.bands)
        noise = frozendict({b: draw_coadd_noise(rng) for b in survey.bands})
        ctx = replace(ctx, psf=psf, population=population, variant=variant)
    drawn = (WIDE_DRAWERS if wide else DRAWERS)[kind](ctx)
    drawn.components = _in_survey_bands(drawn.components, survey)
    drawn.points = _in_survey_bands(drawn.points, survey)
    drawn.artefacts = _in_survey_bands(drawn.artefacts, survey)
    if mag_r is not None and drawn.scale_to_mag_r:
        _scaled_to_mag_r(drawn, mag_r)
    mag = drawn.mag if drawn.mag is not None else _system_mag(drawn, survey.catalog_bands)
    field = counted_field_galaxies(ctx) if wide else field_galaxies(ctx)
    components = drawn.components + _in_survey_bands(field, survey)
    artefacts = drawn.artefacts + _in_survey_bands(extra_artefacts(ctx), survey)
    size = drawn.size if drawn.size is not None else 0.0
    return Scene(
        kind=kind,
        is_lens=kind == "lens",
        seed=seeds,
        mag=frozen(mag),
        extended=drawn.extended,
        size_arcsec=float(size),
        params=frozen(drawn.params),
        components=tuple(components),
        points=tuple(drawn.points),
        lens=drawn.lens,
        seeing=seeing,
        psf_model=psf_model,
        artefacts=tuple(artefacts),
        psf_shapes=ctx.psf,
        noise=noise,
        population=population,
        variant=drawn.variant,
    )


def simulate_cutouts(
    kinds: Sequence[str],
    ids: npt.ArrayLike,
    *,
    seed: int,
    survey: Survey | None = None,
    criteria: LensCriteria = DEFAULT_CRITERIA,
    population: str = DEFAULT_POPULATION,
) -> tuple[list[Scene], npt.NDArray[np.float32]]:
    """Draw and render one scene per (kind, id), seeded by (seed, id): chunking-independent.

    Returns the scenes and images float32 (N, bands, n, n) in nJy (default survey: lsst;
    population: "classic" or "wide").
    """
    survey = survey or survey_profile()
    id_array = np.asarray(ids, dtype=np.int64).reshape(-1)
    if len(kinds) != id_array.size:
        raise SimulationError(f"{len(kinds)} kinds for {id_array.size} ids")
    n = survey.cutout_size
    images = np.empty((id_array.size, len(survey.bands), n, n), dtype=np.float32)
    scenes = []
    for k, (kind, ident) in enumerate(zip(kinds, id_array.tolist(), strict=True)):
        scene = draw_scene(
            kind, seed=(seed, ident), survey=survey, criteria=criteria, population=population
        )
        images[k] = render_scene(scene, survey=survey)
        scenes.append(scene)
    return scenes, images
