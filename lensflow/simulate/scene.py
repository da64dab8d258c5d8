"""Scenes: what a drawn cutout is (class, truth, light, lens, PSF, artefacts) and its rendering.

The class labels and mixes, the lens acceptance criteria, the frozen Scene types and the seeding
of a scene's random streams live here; `render_scene` turns a Scene into observed cutouts
(bands, n, n) in nJy, deterministically: the noise comes from the scene's seed. Light
components are rendered once as unit-flux templates shared by all bands (colours are per
component), convolved with each band's PSF. Scenes are drawn by `lensflow.simulate.draw`.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from frozendict import frozendict

from lensflow.errors import SimulationError
from lensflow.simulate.coadd_noise import CoaddNoise
from lensflow.simulate.geometry import FloatArray
from lensflow.simulate.lensing import LensModel
from lensflow.simulate.light import LightProfile
from lensflow.simulate.observe import (
    Artefact,
    convolve,
    observe_band,
    point_source_image,
    psf_kernel,
)
from lensflow.simulate.psf_shapes import PSFShape, shaped_kernel, shaped_point_image
from lensflow.simulate.render import render_adaptive
from lensflow.surveys import Survey, frozen, survey_profile

CLASSES: tuple[str, ...] = (
    "lens",
    "elliptical",
    "spiral",
    "disc_face_on",
    "disc_edge_on",
    "ring",
    "merger",
    "blue_neighbours",
    "group",
    "star",
    "artefact",
)
"""Class labels: "lens" first, then the non-lens classes."""

NON_LENS_CLASSES: tuple[str, ...] = CLASSES[1:]

NATURAL_MIX: Mapping[str, float] = frozen(
    {
        "elliptical": 0.30,
        "spiral": 0.25,
        "disc_face_on": 0.12,
        "disc_edge_on": 0.08,
        "ring": 0.005,
        "merger": 0.03,
        "blue_neighbours": 0.03,
        "group": 0.04,
        "star": 0.135,
        "artefact": 0.01,
    }
)
"""Non-lens class frequencies roughly as on the sky (galaxy-dominated, few rings and mergers)."""

TRAINING_MIX: Mapping[str, float] = frozen(
    {
        "elliptical": 0.14,
        "spiral": 0.14,
        "disc_face_on": 0.06,
        "disc_edge_on": 0.10,
        "ring": 0.12,
        "merger": 0.10,
        "blue_neighbours": 0.14,
        "group": 0.08,
        "star": 0.06,
        "artefact": 0.06,
    }
)
"""Non-lens mix for training: the classes that look like lenses boosted."""

LENS_PARAMS: tuple[str, ...] = (
    "theta_e",
    "sigma_v",
    "z_lens",
    "z_source",
    "lens_x",
    "lens_y",
    "lens_q",
    "lens_phi",
    "lens_e1",
    "lens_e2",
    "gamma_ext",
    "gamma_ext1",
    "gamma_ext2",
    "shear_phi",
    "lens_light_q",
    "lens_light_phi",
    "lens_r_sersic",
    "lens_n_sersic",
    "lens_mag_r",
    "source_x",
    "source_y",
    "source_r_sersic",
    "source_n_sersic",
    "source_q",
    "source_n_clumps",
    "source_mag_r",
    "magnification",
    "arc_snr",
    "psf_fwhm_min",
    "min_magnification",
    "min_arc_snr",
    "min_theta_e_over_fwhm",
    "draws",
)
"""Keys of a lens scene's params, in order (every lens has all of them)."""


@dataclass(frozen=True)
class LensCriteria:
    """When a drawn lens counts as a lens: the image must show lensing.

    The source's total (extended) magnification, the best band's arc signal-to-noise, and
    theta_E over the sharpest image band's PSF FWHM must reach these floors.
    """

    min_magnification: float = 3.0
    min_arc_snr: float = 30.0
    min_theta_e_over_fwhm: float = 0.75
    max_draws: int = 500


DEFAULT_CRITERIA = LensCriteria()


@dataclass(frozen=True)
class Component:
    """A light component: a profile (its own total flux is only a normalisation), the true
    total flux per catalog band in nJy (before lensing), and how it is seen."""

    profile: LightProfile
    flux: Mapping[str, float]
    lensed: bool = False
    in_catalog: bool = True
    magnification: float = 1.0


@dataclass(frozen=True)
class PointSource:
    """An unresolved source (a star) at (x, y) arcsec; flux per catalog band in nJy."""

    x: float
    y: float
    flux: Mapping[str, float]
    in_catalog: bool = True


@dataclass(frozen=True)
class Scene:
    """A drawn cutout: class, truth and everything needed to render it again, bit for bit.

    psf_shapes and noise (the wide population's) give a band its PSF shape and its coadd's
    correlated noise; a band without them has the round psf_model PSF and white noise.
    population names the simulator's population, variant the class's sub-kind (wide).
    """

    kind: str
    is_lens: bool
    seed: tuple[int, ...]
    mag: Mapping[str, float]
    extended: bool
    size_arcsec: float
    params: Mapping[str, float]
    components: tuple[Component, ...] = ()
    points: tuple[PointSource, ...] = ()
    lens: LensModel | None = None
    seeing: Mapping[str, float] = field(default_factory=frozendict)
    psf_model: str = "moffat"
    artefacts: tuple[Artefact, ...] = ()
    psf_shapes: Mapping[str, PSFShape] = field(default_factory=frozendict)
    noise: Mapping[str, CoaddNoise] = field(default_factory=frozendict)
    population: str = "classic"
    variant: str = ""

    def psf_fwhm(self, band: str, survey: Survey | None = None) -> float:
        """This scene's PSF FWHM in a band (arcsec): the survey's (default lsst) times the drawn
        seeing."""
        survey = survey or survey_profile()
        return survey.psf_fwhm_arcsec[band] * self.seeing.get(band, 1.0)


# --- seeds ------------------------------------------------------------------------------------


def class_index(kind: str) -> int:
    """Position of a class label in CLASSES (part of every scene's random-stream key)."""
    try:
        return CLASSES.index(kind)
    except ValueError:
        raise SimulationError(f"unknown class {kind!r}; known {list(CLASSES)}") from None


def seed_tuple(seed: Sequence[int] | int) -> tuple[int, ...]:
    """A seed as a tuple of non-negative integers."""
    values = (int(seed),) if isinstance(seed, int | np.integer) else tuple(int(s) for s in seed)
    if not values or any(v < 0 for v in values):
        raise SimulationError(f"seed must be non-negative integers, got {seed!r}")
    return values


def scene_rng(seed: tuple[int, ...], kind: str, stream: int) -> np.random.Generator:
    """The random stream of a scene: 0 draws its parameters, 1 its noise."""
    sequence = np.random.SeedSequence(entropy=list(seed), spawn_key=(class_index(kind), stream))
    return np.random.default_rng(sequence)


# --- rendering --------------------------------------------------------------------------------


TEMPLATE_ACCURACY: Mapping[str, float] = frozen({"lensed": 3.0, "unlensed": 2.0})
"""Adaptive supersampling accuracy (sub-samples per local resolution scale) of the templates."""


def template_render(
    profiles: Sequence[LightProfile], *, n: int, pixel_scale: float, lens: LensModel | None = None
) -> FloatArray:
    """Flux per pixel (L, n, n) of light profiles rendered as the templates are (float32, at
    TEMPLATE_ACCURACY), lensed when lens is given.

    Total fluxes stay within a few 1e-3 of a converged integration (benchmarks/bench_simulate).
    """
    accuracy = TEMPLATE_ACCURACY["lensed" if lens is not None else "unlensed"]
    return render_adaptive(
        profiles, n=n, pixel_scale=pixel_scale, lens=lens, dtype=np.float32, accuracy=accuracy
    )


@functools.lru_cache(maxsize=128)
def unit_templates(
    profiles: tuple[LightProfile, ...], lens: LensModel | None, n: int, pixel_scale: float
) -> FloatArray:
    """Unit-flux pixel templates (L, n, n) of light profiles, lensed when lens is given."""
    out = template_render(profiles, n=n, pixel_scale=pixel_scale, lens=lens)
    for k, profile in enumerate(profiles):
        out[k] /= profile.total_flux()
    out.setflags(write=False)
    return out


def _component_templates(
    components: Sequence[Component], lens: LensModel | None, survey: Survey
) -> FloatArray:
    """Templates (C, n, n) in the order of components (lensed ones through the lens)."""
    n, scale = survey.cutout_size, survey.pixel_scale_arcsec
    out = np.zeros((len(components), n, n))
    for lensed in (False, True):
        idx = [k for k, c in enumerate(components) if c.lensed == lensed]
        if not idx:
            continue
        if lensed and lens is None:
            raise SimulationError("a lensed component needs a lens")
        profiles = tuple(components[k].profile for k in idx)
        out[idx] = unit_templates(profiles, lens if lensed else None, n, scale)
    return out


def _psf_kernels(scene: Scene, survey: Survey) -> FloatArray:
    """PSF kernels (bands, k, k) of the scene in each image band."""
    kernels = []
    for b in survey.bands:
        fwhm, shape = scene.psf_fwhm(b, survey), scene.psf_shapes.get(b)
        if shape is None:
            kernels.append(psf_kernel(scene.psf_model, fwhm, survey.pixel_scale_arcsec))
        else:
            kernels.append(shaped_kernel(shape, fwhm, survey.pixel_scale_arcsec))
    return np.stack(kernels)


def point_image(scene: Scene, band: str, x: float, y: float, survey: Survey) -> FloatArray:
    """A unit-flux point source at (x, y) arcsec seen through the scene's PSF in a band, (n, n)."""
    n, scale = survey.cutout_size, survey.pixel_scale_arcsec
    fwhm, shape = scene.psf_fwhm(band, survey), scene.psf_shapes.get(band)
    if shape is None:
        return point_source_image(scene.psf_model, fwhm, x, y, n=n, pixel_scale=scale)
    return shaped_point_image(shape, fwhm, x, y, n=n, pixel_scale=scale)


def scene_signal(
    components: Sequence[Component],
    points: Sequence[PointSource],
    scene: Scene,
    survey: Survey,
) -> FloatArray:
    """Noiseless PSF-convolved images (bands, n, n) of some of a scene's light, nJy per pixel."""
    n = survey.cutout_size
    out = np.zeros((len(survey.bands), n, n))
    if components:
        templates = _component_templates(components, scene.lens, survey)
        fluxes = np.array([[c.flux.get(b, 0.0) for c in components] for b in survey.bands])
        pre = np.tensordot(fluxes, templates, axes=(1, 0))
        out += convolve(pre, _psf_kernels(scene, survey))
    for point in points:
        for k, band in enumerate(survey.bands):
            flux = point.flux.get(band, 0.0)
            if flux:
                out[k] += flux * point_image(scene, band, point.x, point.y, survey)
    return out


def noiseless_image(scene: Scene, *, survey: Survey | None = None) -> FloatArray:
    """The scene's light through the PSF (bands, n, n), nJy per pixel: no noise, no artefacts.

    survey: the profile the scene was drawn for (default: lsst).
    """
    return scene_signal(scene.components, scene.points, scene, survey or survey_profile())


def render_scene(scene: Scene, *, survey: Survey | None = None) -> npt.NDArray[np.float32]:
    """Observed cutouts float32 (bands, n, n) in nJy: PSF, noise, artefacts, saturation.

    survey: the profile the scene was drawn for (default: lsst).
    """
    survey = survey or survey_profile()
    signal = noiseless_image(scene, survey=survey)
    rng = scene_rng(scene.seed, scene.kind, 1)
    out = np.empty(signal.shape, dtype=np.float32)
    for k, band in enumerate(survey.bands):
        out[k] = observe_band(
            signal[k],
            band=band,
            sky_sigma=survey.sky_sigma_njy[band],
            gain=survey.gain(band),
            saturation=survey.saturation_njy,
            pixel_scale=survey.pixel_scale_arcsec,
            fwhm=scene.psf_fwhm(band, survey),
            psf_model=scene.psf_model,
            artefacts=scene.artefacts,
            rng=rng,
            noise=scene.noise.get(band),
        )
    return out
