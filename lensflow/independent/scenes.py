"""One check-set cutout from its class, seed and id: the draw, the render, its magnitudes.

Object `ident` of a set with seed `seed` draws its parameters from one stream and its noise
from another, both spawned from SeedSequence(seed, spawn_key=(DOMAIN, ident)), so a cutout does
not depend on which chunk or worker makes it. A scene draws, in order: the seeing, the main
object's sub-pixel centre, the class's object (a lens, or a non-lens drawer), the field.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

from lensflow.errors import SimulationError
from lensflow.independent.galaxies import field_galaxies
from lensflow.independent.lenses import DETECTABLE, Detectability, draw_lens
from lensflow.independent.lookalikes import DRAWERS
from lensflow.independent.population import Scene, draw_seeing
from lensflow.independent.render import render_scene
from lensflow.independent.seds import band_fluxes
from lensflow.surveys import Survey, frozen, njy_to_ab

CLASSES: tuple[str, ...] = ("lens", *DRAWERS)
"""Class labels of the check set: "lens" first, then the non-lens classes."""

NON_LENS_CLASSES: tuple[str, ...] = tuple(DRAWERS)

DOMAIN = 0x636865636B
"""Spawn key of the check set's streams ("check"), apart from any other simulator's."""


def object_rngs(seed: int, ident: int) -> tuple[np.random.Generator, np.random.Generator]:
    """The (parameters, noise) random streams of object `ident` of a set seeded `seed`."""
    root = np.random.SeedSequence(entropy=seed, spawn_key=(DOMAIN, ident))
    params, noise = root.spawn(2)
    return np.random.default_rng(params), np.random.default_rng(noise)


def draw_scene(
    kind: str,
    rng: np.random.Generator,
    *,
    survey: Survey,
    criterion: Detectability = DETECTABLE,
) -> Scene:
    """A scene of class `kind` drawn from rng (see the module docstring)."""
    if kind != "lens" and kind not in DRAWERS:
        raise SimulationError(f"unknown check-set class {kind!r}; known {list(CLASSES)}")
    seeing = draw_seeing(rng, survey)
    dx, dy = rng.uniform(-0.5, 0.5, size=2) * survey.pixel_scale_arcsec
    center = (float(dx), float(dy))
    if kind == "lens":
        lights, points, deflector, params = draw_lens(
            rng, survey=survey, seeing=seeing, center=center, criterion=criterion
        )
    else:
        lights, points, params = DRAWERS[kind](rng, survey, seeing, center)
        deflector = None
    lights += field_galaxies(rng, survey)
    return Scene(
        kind=kind,
        is_lens=kind == "lens",
        lights=tuple(lights),
        points=tuple(points),
        deflector=deflector,
        seeing=seeing,
        params=frozen(params),
    )


def make_cutout(
    kind: str,
    *,
    seed: int,
    ident: int,
    survey: Survey,
    criterion: Detectability = DETECTABLE,
) -> tuple[Scene, npt.NDArray[np.float32]]:
    """Object `ident` of class `kind`: its scene and observed cutout (bands, n, n) in nJy."""
    params_rng, noise_rng = object_rngs(seed, ident)
    scene = draw_scene(kind, params_rng, survey=survey, criterion=criterion)
    return scene, render_scene(scene, survey=survey, rng=noise_rng)


def scene_magnitudes(scene: Scene, survey: Survey) -> dict[str, float]:
    """AB magnitude per catalog band of the main object (lensed light as seen, field excluded)."""
    wavelengths = {b: survey.wavelength_nm[b] for b in survey.catalog_bands}
    total = dict.fromkeys(survey.catalog_bands, 0.0)
    for light in scene.lights:
        if light.central:
            for band, flux in band_fluxes(light.sed, light.mag_ref, wavelengths).items():
                total[band] += flux * light.magnification
    for points in scene.points:
        if points.central:
            for band, flux in band_fluxes(points.sed, points.mag_ref, wavelengths).items():
                total[band] += flux * sum(points.weights)
    return {band: njy_to_ab(flux) for band, flux in total.items()}


def scene_size(scene: Scene) -> float:
    """Flux-weighted rms radius (arcsec) of the main object about its centre, at REF_NM
    (lensed light at the Einstein radius, point sources at their positions)."""
    anchor = scene.lights[0].center if scene.lights else (0.0, 0.0)
    weights, squares = [], []
    for light in scene.lights:
        if not light.central:
            continue
        w = 10.0 ** (-0.4 * light.mag_ref) * light.magnification
        if light.lensed and scene.deflector is not None:
            d2 = scene.deflector.theta_e**2
        else:
            d2 = (light.center[0] - anchor[0]) ** 2 + (light.center[1] - anchor[1]) ** 2
        weights.append(w)
        squares.append(d2 + light.size**2)
    for points in scene.points:
        for x, y, m in zip(points.x, points.y, points.weights, strict=True):
            weights.append(10.0 ** (-0.4 * points.mag_ref) * m)
            squares.append((x - anchor[0]) ** 2 + (y - anchor[1]) ** 2)
    if not weights:
        return 0.0
    return math.sqrt(float(np.average(squares, weights=weights)))
