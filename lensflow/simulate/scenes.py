"""Scenes: lens systems and the non-lenses that fool lens finders, drawn from a seed and rendered.

`draw_scene` draws parameters only (a lens also renders its lensed source, noiselessly, for its
acceptance test; the templates are cached for the render that usually follows); `render_scene`
turns a Scene into observed cutouts (bands, n, n) in nJy, deterministically: the noise comes
from the scene's seed. Light components are rendered once as unit-flux templates
shared by all bands (colours are per component), convolved with each band's PSF.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import numpy.typing as npt

from lensflow.errors import SimulationError
from lensflow.simulate.observe import (
    Artefact,
    BadColumn,
    CosmicRay,
    SatelliteTrail,
    StarHalo,
    convolve,
    noise_sigma,
    observe_band,
    point_source_image,
    psf_kernel,
)
from lensflow.simulate.profiles import (
    SIE,
    ExternalShear,
    FloatArray,
    GaussianClumps,
    GaussianRing,
    LensModel,
    LightProfile,
    SersicArms,
    SersicEllipse,
    SersicLane,
    TidalArc,
    einstein_radius,
    ellipticity_to_q_phi,
    luminosity_distance,
    q_phi_to_ellipticity,
    render_adaptive,
)
from lensflow.simulate.survey import (
    LSST_LIKE,
    FrozenMapping,
    Survey,
    ab_to_njy,
    frozen,
    njy_to_ab,
)

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

NATURAL_MIX: Mapping[str, float] = FrozenMapping(
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

TRAINING_MIX: Mapping[str, float] = FrozenMapping(
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
    """A drawn cutout: class, truth and everything needed to render it again, bit for bit."""

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
    seeing: Mapping[str, float] = field(default_factory=FrozenMapping)
    psf_model: str = "moffat"
    artefacts: tuple[Artefact, ...] = ()

    def psf_fwhm(self, band: str, survey: Survey = LSST_LIKE) -> float:
        """This scene's PSF FWHM in a band (arcsec): the survey's times the drawn seeing."""
        return survey.psf_fwhm_arcsec[band] * self.seeing.get(band, 1.0)


# --- random helpers ---------------------------------------------------------------------------


def _class_index(kind: str) -> int:
    try:
        return CLASSES.index(kind)
    except ValueError:
        raise SimulationError(f"unknown class {kind!r}; known {list(CLASSES)}") from None


def _seed_tuple(seed: Sequence[int] | int) -> tuple[int, ...]:
    values = (int(seed),) if isinstance(seed, int | np.integer) else tuple(int(s) for s in seed)
    if not values or any(v < 0 for v in values):
        raise SimulationError(f"seed must be non-negative integers, got {seed!r}")
    return values


def _rng(seed: tuple[int, ...], kind: str, stream: int) -> np.random.Generator:
    sequence = np.random.SeedSequence(entropy=list(seed), spawn_key=(_class_index(kind), stream))
    return np.random.default_rng(sequence)


def _count_law(rng: np.random.Generator, lo: float, hi: float, slope: float = 0.3) -> float:
    """A magnitude from N(<m) ~ 10^(slope m) between lo and hi."""
    a, b = 10.0 ** (slope * lo), 10.0 ** (slope * hi)
    return math.log10(a + (b - a) * rng.uniform()) / slope


def _size(rng: np.random.Generator, mag: float, at18: float, slope: float = 0.14) -> float:
    """Half-light radius (arcsec) that shrinks with magnitude, log-normal scatter 0.12 dex."""
    return float(at18 * 10.0 ** (-slope * (mag - 18.0) + rng.normal(0.0, 0.12)))


def _ellipticity(q: float, phi: float) -> tuple[float, float]:
    return q_phi_to_ellipticity(min(max(q, 0.05), 1.0), phi)


_RED_Z = np.array([0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 1.5])
_RED_GR = np.array([0.72, 1.1, 1.6, 1.85, 1.95, 2.0, 2.0])
_RED_RI = np.array([0.36, 0.45, 0.6, 0.95, 1.2, 1.3, 1.4])
_RED_IZ = np.array([0.25, 0.3, 0.35, 0.45, 0.65, 0.8, 0.9])
_K_R = np.array([0.0, 0.25, 0.7, 1.2, 1.7, 2.1, 2.6])


def _red_colours(rng: np.random.Generator, z: float) -> tuple[float, float, float]:
    """(g-r, r-i, i-z) of an early-type galaxy at redshift z, with 0.05 mag scatter."""
    return (
        float(np.interp(z, _RED_Z, _RED_GR) + rng.normal(0.0, 0.05)),
        float(np.interp(z, _RED_Z, _RED_RI) + rng.normal(0.0, 0.05)),
        float(np.interp(z, _RED_Z, _RED_IZ) + rng.normal(0.0, 0.05)),
    )


def _blue_colours(rng: np.random.Generator, bluer: float = 0.0) -> tuple[float, float, float]:
    """(g-r, r-i, i-z) of a star-forming galaxy or knot (bluer > 0: bluer still)."""
    return (
        float(rng.uniform(-0.1, 0.45) - bluer),
        float(rng.uniform(-0.15, 0.35) - 0.5 * bluer),
        float(rng.uniform(-0.15, 0.3)),
    )


def _disc_colours(rng: np.random.Generator) -> tuple[float, float, float]:
    """(g-r, r-i, i-z) of a nearby disc."""
    return (
        float(rng.uniform(0.35, 0.8)),
        float(rng.uniform(0.15, 0.45)),
        float(rng.uniform(0.05, 0.3)),
    )


def _star_colours(rng: np.random.Generator) -> tuple[float, float, float]:
    """(g-r, r-i, i-z) along the stellar locus (F to M dwarfs)."""
    gr = float(rng.uniform(0.15, 1.55))
    ri = 0.40 * gr - 0.05 if gr < 1.3 else 0.47 + 2.5 * (gr - 1.3)
    ri += float(rng.normal(0.0, 0.04))
    iz = 0.45 * ri + float(rng.normal(0.0, 0.03))
    return gr, ri, iz


def _fluxes(flux_r: float, colours: tuple[float, float, float]) -> FrozenMapping:
    """Per-band fluxes (nJy) of an r flux and colours (g-r, r-i, i-z)."""
    gr, ri, iz = colours
    offsets = {"g": gr, "r": 0.0, "i": -ri, "z": -ri - iz}
    return FrozenMapping({b: flux_r * 10.0 ** (-0.4 * m) for b, m in offsets.items()})


def _scaled(flux: Mapping[str, float], factor: float) -> FrozenMapping:
    return FrozenMapping({b: v * factor for b, v in flux.items()})


# --- rendering --------------------------------------------------------------------------------


TEMPLATE_ACCURACY: Mapping[str, float] = FrozenMapping({"lensed": 3.0, "unlensed": 2.0})
"""Adaptive supersampling accuracy (sub-samples per local resolution scale) of the templates."""


@functools.lru_cache(maxsize=128)
def _templates(
    profiles: tuple[LightProfile, ...], lens: LensModel | None, n: int, pixel_scale: float
) -> FloatArray:
    """Unit-flux pixel templates (L, n, n) of light profiles, lensed when lens is given.

    Total fluxes stay within a few 1e-3 of a converged integration (benchmarks/bench_simulate).
    """
    accuracy = TEMPLATE_ACCURACY["lensed" if lens is not None else "unlensed"]
    out = render_adaptive(
        profiles, n=n, pixel_scale=pixel_scale, lens=lens, dtype=np.float32, accuracy=accuracy
    )
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
        out[idx] = _templates(profiles, lens if lensed else None, n, scale)
    return out


def _psf_kernels(scene: Scene, survey: Survey) -> FloatArray:
    return np.stack(
        [
            psf_kernel(scene.psf_model, scene.psf_fwhm(b, survey), survey.pixel_scale_arcsec)
            for b in survey.bands
        ]
    )


def _signal(
    components: Sequence[Component],
    points: Sequence[PointSource],
    scene: Scene,
    survey: Survey,
) -> FloatArray:
    """Noiseless PSF-convolved images (bands, n, n) of some of a scene's light, nJy per pixel."""
    n, scale = survey.cutout_size, survey.pixel_scale_arcsec
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
                fwhm = scene.psf_fwhm(band, survey)
                out[k] += flux * point_source_image(
                    scene.psf_model, fwhm, point.x, point.y, n=n, pixel_scale=scale
                )
    return out


def noiseless_image(scene: Scene, *, survey: Survey = LSST_LIKE) -> FloatArray:
    """The scene's light through the PSF (bands, n, n), nJy per pixel: no noise, no artefacts."""
    return _signal(scene.components, scene.points, scene, survey)


def render_scene(scene: Scene, *, survey: Survey = LSST_LIKE) -> npt.NDArray[np.float32]:
    """Observed cutouts float32 (bands, n, n) in nJy: PSF, noise, artefacts, saturation."""
    signal = noiseless_image(scene, survey=survey)
    rng = _rng(scene.seed, scene.kind, 1)
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
        )
    return out


# --- drawing ----------------------------------------------------------------------------------


@dataclass
class _Ctx:
    rng: np.random.Generator
    survey: Survey
    mag_r: float | None
    criteria: LensCriteria
    seeing: FrozenMapping
    psf_model: str
    x0: float
    y0: float

    def fwhm(self, band: str) -> float:
        return self.survey.psf_fwhm_arcsec[band] * self.seeing[band]


@dataclass
class _Drawn:
    components: list[Component]
    points: list[PointSource] = field(default_factory=list)
    artefacts: list[Artefact] = field(default_factory=list)
    lens: LensModel | None = None
    params: dict[str, float] = field(default_factory=dict)
    extended: bool = True
    size: float | None = None
    scale_to_mag_r: bool = True
    mag: dict[str, float] | None = None


def _sersic(
    ctx: _Ctx,
    *,
    r_sersic: float,
    n_sersic: float,
    q: float,
    phi: float | None = None,
    dx: float = 0.0,
    dy: float = 0.0,
) -> SersicEllipse:
    phi = float(ctx.rng.uniform(0.0, math.pi)) if phi is None else phi
    e1, e2 = _ellipticity(q, phi)
    return SersicEllipse.from_flux(1.0, r_sersic, n_sersic, e1, e2, ctx.x0 + dx, ctx.y0 + dy)


def _on_ellipse(
    disc: SersicEllipse, rho: FloatArray, theta: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """Sky positions of circularised polar coordinates (rho, theta) of an elliptical profile."""
    q, phi = ellipticity_to_q_phi(disc.e1, disc.e2)
    xp = rho * np.cos(theta) / math.sqrt(q)
    yp = rho * np.sin(theta) * math.sqrt(q)
    c, s = math.cos(phi), math.sin(phi)
    return disc.center_x + c * xp - s * yp, disc.center_y + s * xp + c * yp


def _clumps(
    rng: np.random.Generator,
    xs: FloatArray,
    ys: FloatArray,
    sigma: tuple[float, float],
) -> GaussianClumps:
    k = len(xs)
    weights = rng.dirichlet(np.ones(k) * 2.0)
    return GaussianClumps(
        x=tuple(float(v) for v in xs),
        y=tuple(float(v) for v in ys),
        sigma=tuple(float(v) for v in rng.uniform(*sigma, size=k)),
        flux=tuple(float(w) for w in weights),
    )


def _draw_elliptical(ctx: _Ctx) -> _Drawn:
    rng = ctx.rng
    mag = ctx.mag_r if ctx.mag_r is not None else _count_law(rng, 17.5, 23.0)
    z = float(np.clip(0.08 + 0.12 * (mag - 17.0) + rng.normal(0.0, 0.08), 0.03, 1.2))
    r_e = min(_size(rng, mag, 1.6), 4.0)
    profile = _sersic(
        ctx, r_sersic=r_e, n_sersic=float(rng.uniform(3.0, 6.0)), q=float(rng.uniform(0.5, 1.0))
    )
    flux = _fluxes(ab_to_njy(mag), _red_colours(rng, z))
    return _Drawn([Component(profile, flux)], size=r_e)


def _bulge_disc(
    ctx: _Ctx, mag: float, *, q: float, bulge_fraction: float, r_disc: float
) -> tuple[SersicEllipse, SersicEllipse, float, float]:
    rng = ctx.rng
    phi = float(rng.uniform(0.0, math.pi))
    disc = _sersic(ctx, r_sersic=r_disc, n_sersic=float(rng.uniform(0.8, 1.2)), q=q, phi=phi)
    bulge = _sersic(
        ctx,
        r_sersic=r_disc * float(rng.uniform(0.12, 0.3)),
        n_sersic=float(rng.uniform(2.0, 4.0)),
        q=min(1.0, q + float(rng.uniform(0.2, 0.5))),
        phi=phi,
    )
    total = ab_to_njy(mag)
    return bulge, disc, bulge_fraction * total, (1.0 - bulge_fraction) * total


def _draw_spiral(ctx: _Ctx) -> _Drawn:
    rng = ctx.rng
    mag = ctx.mag_r if ctx.mag_r is not None else _count_law(rng, 17.0, 22.5)
    z = float(np.clip(0.05 + 0.08 * (mag - 17.0) + rng.normal(0.0, 0.05), 0.02, 0.8))
    r_disc = min(_size(rng, mag, 2.6), 5.0)
    q = float(rng.uniform(0.35, 1.0))
    bulge, disc, f_bulge, f_disc = _bulge_disc(
        ctx, mag, q=q, bulge_fraction=float(rng.uniform(0.05, 0.4)), r_disc=r_disc
    )
    n_arms = 2 if rng.uniform() < 0.7 else int(rng.integers(3, 5))
    pitch = float(rng.uniform(0.2, 0.45))
    phase = float(rng.uniform(0.0, 2.0 * math.pi))
    arms = SersicArms(
        disc,
        n_arms=n_arms,
        pitch=pitch,
        contrast=float(rng.uniform(1.5, 4.0)),
        phase=phase,
        inner=bulge.r_sersic * 2.0,
    )
    f_arms = float(rng.uniform(0.35, 0.65))
    f_knots = float(rng.uniform(0.03, 0.12))
    k = int(rng.integers(4, 12))
    rho = disc.r_sersic * rng.uniform(0.5, 2.5, size=k)
    arm = rng.integers(0, n_arms, size=k)
    theta = np.log(rho / disc.r_sersic) / math.tan(pitch) + phase + 2.0 * math.pi * arm / n_arms
    kx, ky = _on_ellipse(disc, rho, theta)
    knots = _clumps(rng, kx, ky, (0.04, 0.12))
    comps = [
        Component(bulge, _fluxes(f_bulge, _red_colours(rng, z))),
        Component(disc, _fluxes(f_disc * (1 - f_arms - f_knots), _disc_colours(rng))),
        Component(arms, _fluxes(f_disc * f_arms, _blue_colours(rng, 0.1))),
        Component(knots, _fluxes(f_disc * f_knots, _blue_colours(rng, 0.3))),
    ]
    return _Drawn(comps, size=r_disc)


def _draw_disc_face_on(ctx: _Ctx) -> _Drawn:
    rng = ctx.rng
    mag = ctx.mag_r if ctx.mag_r is not None else _count_law(rng, 17.5, 23.0)
    r_disc = min(_size(rng, mag, 2.2), 5.0)
    q = float(rng.uniform(0.75, 1.0))
    bulge, disc, f_bulge, f_disc = _bulge_disc(
        ctx, mag, q=q, bulge_fraction=float(rng.uniform(0.0, 0.15)), r_disc=r_disc
    )
    k = int(rng.integers(3, 12))
    rho = disc.r_sersic * np.sqrt(rng.uniform(0.05, 4.0, size=k))
    kx, ky = _on_ellipse(disc, rho, rng.uniform(0.0, 2.0 * math.pi, size=k))
    f_knots = float(rng.uniform(0.05, 0.25))
    comps = [
        Component(bulge, _fluxes(max(f_bulge, 1e-3 * f_disc), _red_colours(rng, 0.1))),
        Component(disc, _fluxes(f_disc * (1.0 - f_knots), _disc_colours(rng))),
        Component(
            _clumps(rng, kx, ky, (0.05, 0.15)), _fluxes(f_disc * f_knots, _blue_colours(rng, 0.2))
        ),
    ]
    if rng.uniform() < 0.5:
        weak = SersicArms(
            disc,
            n_arms=int(rng.integers(2, 5)),
            pitch=float(rng.uniform(0.25, 0.5)),
            contrast=float(rng.uniform(0.3, 1.2)),
            phase=float(rng.uniform(0, 2 * math.pi)),
            inner=0.3 * r_disc,
        )
        share = float(rng.uniform(0.2, 0.5))
        disc_flux = comps[1].flux
        comps[1] = replace(comps[1], flux=_scaled(disc_flux, 1.0 - share))
        comps.append(Component(weak, _scaled(disc_flux, share)))
    return _Drawn(comps, size=r_disc)


_LANE_DEPTH = {"g": 1.0, "r": 0.8, "i": 0.62, "z": 0.5}


def _draw_disc_edge_on(ctx: _Ctx) -> _Drawn:
    rng = ctx.rng
    mag = ctx.mag_r if ctx.mag_r is not None else _count_law(rng, 17.5, 23.0)
    r_disc = min(_size(rng, mag, 2.6), 5.0)
    q = float(rng.uniform(0.1, 0.25))
    bulge, disc, f_bulge, f_disc = _bulge_disc(
        ctx, mag, q=q, bulge_fraction=float(rng.uniform(0.02, 0.3)), r_disc=r_disc
    )
    bulge = replace(bulge, e1=0.4 * bulge.e1, e2=0.4 * bulge.e2)
    comps = [
        Component(bulge, _fluxes(f_bulge, _red_colours(rng, 0.15))),
        Component(disc, _fluxes(f_disc, _disc_colours(rng))),
    ]
    if rng.uniform() < 0.7:
        width = r_disc * math.sqrt(q) * float(rng.uniform(0.15, 0.35))
        lane = SersicLane(disc, width)
        depth = float(rng.uniform(0.3, 0.85))
        ratio = lane.total_flux() / disc.total_flux()
        flux = FrozenMapping(
            {b: -depth * _LANE_DEPTH[b] * ratio * v for b, v in comps[1].flux.items()}
        )
        comps.append(Component(lane, flux))
    return _Drawn(comps, size=r_disc)


def _draw_ring(ctx: _Ctx) -> _Drawn:
    rng = ctx.rng
    mag = ctx.mag_r if ctx.mag_r is not None else _count_law(rng, 18.0, 22.5)
    z = float(np.clip(0.1 + 0.1 * (mag - 17.0), 0.05, 0.9))
    core = _sersic(
        ctx,
        r_sersic=float(rng.uniform(0.25, 0.8)),
        n_sersic=float(rng.uniform(2.0, 4.0)),
        q=float(rng.uniform(0.6, 1.0)),
    )
    radius = float(rng.uniform(0.9, 3.0))
    q = float(rng.uniform(0.5, 1.0))
    e1, e2 = _ellipticity(q, float(rng.uniform(0.0, math.pi)))
    ring = GaussianRing(
        1.0,
        radius,
        float(rng.uniform(0.08, 0.3)) * radius**0.5,
        e1,
        e2,
        ctx.x0,
        ctx.y0,
        lopsided=float(rng.uniform(0.0, 0.8)),
        angle=float(rng.uniform(0.0, 2.0 * math.pi)),
    )
    total = ab_to_njy(mag)
    f_ring = float(rng.uniform(0.3, 0.7))
    red_ring = rng.uniform() < 0.2
    ring_colours = _red_colours(rng, z) if red_ring else _blue_colours(rng, 0.1)
    comps = [
        Component(core, _fluxes((1.0 - f_ring) * total, _red_colours(rng, z))),
        Component(ring, _fluxes(0.8 * f_ring * total, ring_colours)),
    ]
    k = int(rng.integers(0, 9))
    if k:
        e_sie = SersicEllipse(1.0, radius, 1.0, e1, e2, ctx.x0, ctx.y0)
        kx, ky = _on_ellipse(e_sie, np.full(k, radius), rng.uniform(0.0, 2.0 * math.pi, size=k))
        comps.append(
            Component(
                _clumps(rng, kx, ky, (0.05, 0.12)),
                _fluxes(0.2 * f_ring * total, _blue_colours(rng, 0.3)),
            )
        )
    else:
        comps[1] = replace(comps[1], flux=_scaled(comps[1].flux, 1.25))
    return _Drawn(comps, size=radius)


def _draw_merger(ctx: _Ctx) -> _Drawn:
    rng = ctx.rng
    mag = ctx.mag_r if ctx.mag_r is not None else _count_law(rng, 18.0, 22.5)
    total = ab_to_njy(mag)
    sep = float(rng.uniform(0.8, 3.0))
    angle = float(rng.uniform(0.0, 2.0 * math.pi))
    ratio = float(rng.uniform(0.2, 1.0))
    f1 = 1.0 / (1.0 + ratio)
    tails = rng.uniform() < 0.7
    f_tails = float(rng.uniform(0.08, 0.3)) if tails else 0.0
    z = float(np.clip(0.1 + 0.1 * (mag - 17.0), 0.05, 0.9))
    comps: list[Component] = []
    sizes = []
    for k, frac in enumerate((f1, 1.0 - f1)):
        d = (0.0, 0.0) if k == 0 else (sep * math.cos(angle), sep * math.sin(angle))
        r_e = float(rng.uniform(0.3, 1.2)) * (1.0 if k == 0 else math.sqrt(ratio))
        profile = _sersic(
            ctx,
            r_sersic=r_e,
            n_sersic=float(rng.uniform(1.0, 4.0)),
            q=float(rng.uniform(0.4, 1.0)),
            dx=d[0],
            dy=d[1],
        )
        colours = _red_colours(rng, z) if rng.uniform() < 0.5 else _blue_colours(rng)
        comps.append(Component(profile, _fluxes(frac * (1.0 - f_tails) * total, colours)))
        sizes.append(r_e)
    if tails:
        mx, my = ctx.x0 + 0.5 * sep * math.cos(angle), ctx.y0 + 0.5 * sep * math.sin(angle)
        for _ in range(int(rng.integers(1, 3))):
            arc = TidalArc(
                1.0,
                float(rng.uniform(1.2, 4.0)),
                float(rng.uniform(0.1, 0.35)),
                float(rng.uniform(0.0, 2.0 * math.pi)),
                float(rng.uniform(0.35, 1.1)),
                mx,
                my,
            )
            comps.append(Component(arc, _fluxes(0.5 * f_tails * total, _blue_colours(rng))))
    return _Drawn(comps, size=0.5 * sep + max(sizes))


def _draw_blue_neighbours(ctx: _Ctx) -> _Drawn:
    rng = ctx.rng
    mag = ctx.mag_r if ctx.mag_r is not None else _count_law(rng, 18.0, 22.0)
    z = float(rng.uniform(0.2, 0.8))
    r_e = min(_size(rng, mag, 1.6), 3.0)
    central = _sersic(
        ctx, r_sersic=r_e, n_sersic=float(rng.uniform(3.0, 5.5)), q=float(rng.uniform(0.55, 1.0))
    )
    k = int(rng.integers(1, 5))
    comps = []
    total_neigh = 0.0
    fluxes = []
    for _ in range(k):
        dm = float(rng.uniform(1.5, 4.0))
        f = ab_to_njy(mag + dm)
        total_neigh += f
        fluxes.append(f)
    own = max(ab_to_njy(mag) - total_neigh, 0.3 * ab_to_njy(mag))
    comps.append(Component(central, _fluxes(own, _red_colours(rng, z))))
    far = 0.0
    for f in fluxes:
        r = float(rng.uniform(0.8, 3.0))
        a = float(rng.uniform(0.0, 2.0 * math.pi))
        far = max(far, r)
        nb = _sersic(
            ctx,
            r_sersic=float(rng.uniform(0.1, 0.35)),
            n_sersic=float(rng.uniform(0.5, 1.5)),
            q=float(rng.uniform(0.3, 1.0)),
            dx=r * math.cos(a),
            dy=r * math.sin(a),
        )
        comps.append(Component(nb, _fluxes(f, _blue_colours(rng))))
    return _Drawn(comps, size=math.sqrt(r_e**2 + 0.3 * far**2))


def _draw_group(ctx: _Ctx) -> _Drawn:
    rng = ctx.rng
    mag = ctx.mag_r if ctx.mag_r is not None else _count_law(rng, 17.5, 21.5)
    z = float(np.clip(0.08 + 0.12 * (mag - 17.0), 0.05, 0.9))
    r_e = min(_size(rng, mag, 1.8), 4.0)
    central = _sersic(
        ctx, r_sersic=r_e, n_sersic=float(rng.uniform(3.5, 6.0)), q=float(rng.uniform(0.6, 1.0))
    )
    comps = [Component(central, _fluxes(ab_to_njy(mag), _red_colours(rng, z)))]
    for _ in range(int(rng.integers(2, 7))):
        m = mag + float(rng.uniform(0.5, 3.0))
        r = float(np.sqrt(rng.uniform(1.5**2, 6.5**2)))
        a = float(rng.uniform(0.0, 2.0 * math.pi))
        red = rng.uniform() < 0.8
        member = _sersic(
            ctx,
            r_sersic=min(_size(rng, m, 1.4), 2.5),
            n_sersic=float(rng.uniform(2.5, 5.0) if red else rng.uniform(0.8, 1.5)),
            q=float(rng.uniform(0.4, 1.0)),
            dx=r * math.cos(a),
            dy=r * math.sin(a),
        )
        colours = _red_colours(rng, z) if red else _blue_colours(rng)
        comps.append(Component(member, _fluxes(ab_to_njy(m), colours), in_catalog=False))
    return _Drawn(comps, size=r_e)


def _bright_star_halo(ctx: _Ctx, x: float, y: float, flux: Mapping[str, float]) -> StarHalo:
    rng = ctx.rng
    a = float(rng.uniform(0.0, 2.0 * math.pi))
    d = float(rng.uniform(1.0, 4.0))
    return StarHalo(
        x=x,
        y=y,
        flux=frozen(flux),
        aureole_fraction=float(rng.uniform(0.01, 0.05)),
        spike_fraction=float(rng.uniform(0.003, 0.02)),
        spike_angle=float(rng.uniform(0.0, 0.5 * math.pi)),
        ghost_fraction=float(rng.uniform(0.0005, 0.003)),
        ghost_dx=d * math.cos(a),
        ghost_dy=d * math.sin(a),
        ghost_radius=float(rng.uniform(1.5, 4.0)),
    )


def _draw_star(ctx: _Ctx) -> _Drawn:
    rng = ctx.rng
    mag = ctx.mag_r if ctx.mag_r is not None else _count_law(rng, 14.5, 23.0, slope=0.2)
    flux = _fluxes(ab_to_njy(mag), _star_colours(rng))
    points = [PointSource(ctx.x0, ctx.y0, flux)]
    artefacts: list[Artefact] = []
    if rng.uniform() < 0.2:
        sep = float(rng.uniform(0.7, 4.0))
        a = float(rng.uniform(0.0, 2.0 * math.pi))
        m2 = mag + float(rng.uniform(0.0, 3.0))
        points.append(
            PointSource(
                ctx.x0 + sep * math.cos(a),
                ctx.y0 + sep * math.sin(a),
                _fluxes(ab_to_njy(m2), _star_colours(rng)),
                in_catalog=sep < 1.5,
            )
        )
    if mag < 17.5:
        artefacts.append(_bright_star_halo(ctx, ctx.x0, ctx.y0, flux))
    return _Drawn([], points=points, artefacts=artefacts, extended=False, size=0.0)


_UNIT_AMPLITUDE = 1000.0


def _random_artefact(ctx: _Ctx, kind: str, band: str, central: bool) -> Artefact:
    """One artefact of a kind, through the centre when central, with unit-ish amplitude."""
    rng = ctx.rng
    half = 0.5 * ctx.survey.cutout_size * ctx.survey.pixel_scale_arcsec
    if central:
        x, y = ctx.x0 + float(rng.normal(0.0, 0.1)), ctx.y0 + float(rng.normal(0.0, 0.1))
    else:
        x, y = (float(v) for v in rng.uniform(-half, half, size=2))
    angle = float(rng.uniform(0.0, math.pi))
    unit = _UNIT_AMPLITUDE
    if kind == "cosmic_ray":
        return CosmicRay(band, x, y, float(rng.uniform(0.2, 2.5)), angle, unit)
    if kind == "satellite_trail":
        return SatelliteTrail(band, x, y, angle, unit)
    if kind == "bad_column":
        n = ctx.survey.cutout_size
        col = n // 2 - 1 + int(rng.integers(0, 2)) if central else int(rng.integers(0, n))
        dead = (not central) and rng.uniform() < 0.5
        start = int(rng.integers(0, n // 2)) if rng.uniform() < 0.5 else 0
        return BadColumn(band, col, unit, dead=dead, start=start)
    d = float(rng.uniform(7.0, 12.0))
    a = float(rng.uniform(0.0, 2.0 * math.pi))
    star_flux = _fluxes(unit, _star_colours(rng))
    halo = _bright_star_halo(ctx, x + d * math.cos(a), y + d * math.sin(a), star_flux)
    if central:
        halo = replace(
            halo,
            ghost_dx=-d * math.cos(a),
            ghost_dy=-d * math.sin(a),
            ghost_fraction=float(rng.uniform(0.002, 0.01)),
        )
    return halo


def _with_amplitude(artefact: Artefact, factor: float) -> Artefact:
    if isinstance(artefact, CosmicRay):
        return replace(artefact, flux=artefact.flux * factor)
    if isinstance(artefact, SatelliteTrail):
        return replace(artefact, flux_per_arcsec=artefact.flux_per_arcsec * factor)
    if isinstance(artefact, BadColumn):
        return replace(artefact, level=artefact.level * factor)
    if isinstance(artefact, StarHalo):
        return replace(artefact, flux=_scaled(artefact.flux, factor))
    raise SimulationError(f"cannot scale artefact {artefact!r}")


def _aperture_flux(ctx: _Ctx, artefact: Artefact, band: str, radius: float = 1.0) -> float:
    """Flux of an artefact (nJy) inside a circular aperture about the cutout centre."""
    n, scale = ctx.survey.cutout_size, ctx.survey.pixel_scale_arcsec
    image = artefact.draw(
        np.zeros((n, n)), band=band, pixel_scale=scale, fwhm=ctx.fwhm(band), psf_model=ctx.psf_model
    )
    c = (np.arange(n) - 0.5 * (n - 1)) * scale
    inside = (c[None, :] - ctx.x0) ** 2 + (c[:, None] - ctx.y0) ** 2 <= radius**2
    return float(image[inside].sum())


_ARTEFACT_KINDS = ("cosmic_ray", "satellite_trail", "bad_column", "star_halo")


def _draw_artefact(ctx: _Ctx) -> _Drawn:
    rng = ctx.rng
    kind = str(rng.choice(_ARTEFACT_KINDS, p=[0.3, 0.25, 0.2, 0.25]))
    bands = ctx.survey.bands
    band = "r" if ctx.mag_r is not None and "r" in bands else str(rng.choice(bands))
    artefact = _random_artefact(ctx, kind, band, central=True)
    mag = ctx.mag_r if ctx.mag_r is not None else float(rng.uniform(21.0, 24.5))
    ref_band = band if kind != "star_halo" else ("r" if "r" in bands else bands[0])
    unit = _aperture_flux(ctx, artefact, ref_band)
    artefact = _with_amplitude(artefact, ab_to_njy(mag) / max(unit, 1e-12))
    mags = {
        b: njy_to_ab(_aperture_flux(ctx, artefact, b)) if b in bands else math.inf
        for b in ctx.survey.catalog_bands
    }
    if isinstance(artefact, StarHalo) and "z" in ctx.survey.catalog_bands:
        # the z band has no image here: carry the star's i - z colour over to the aperture
        mags["z"] = mags.get("i", math.inf) - 2.5 * math.log10(
            artefact.flux["z"] / artefact.flux["i"]
        )
    size = {"cosmic_ray": 0.0, "satellite_trail": 0.5, "bad_column": 0.5}.get(kind, 2.0)
    return _Drawn(
        [],
        artefacts=[artefact],
        extended=kind != "cosmic_ray",
        size=size,
        scale_to_mag_r=False,
        mag=mags,
    )


# --- lenses -----------------------------------------------------------------------------------


def _arc_snr(
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


def _faber_jackson_mag_r(rng: np.random.Generator, sigma_v: float, z: float) -> float:
    absolute = -22.3 - 10.0 * math.log10(sigma_v / 250.0) + float(rng.normal(0.0, 0.35))
    modulus = 5.0 * math.log10(luminosity_distance(z) * 1e5)
    return absolute + modulus + float(np.interp(z, _RED_Z, _K_R))


def _draw_lens(ctx: _Ctx) -> _Drawn:
    rng, survey, crit = ctx.rng, ctx.survey, ctx.criteria
    fwhm_min = min(ctx.fwhm(b) for b in survey.bands)
    for draw in range(1, crit.max_draws + 1):
        z_l = 0.2 + 0.8 * float(rng.beta(2.0, 3.0))
        z_s = float(rng.uniform(1.0, 3.0))
        sigma_v = 200.0 + 200.0 * float(rng.beta(1.5, 2.5))
        theta_e = einstein_radius(sigma_v, z_l, z_s)
        if not 0.6 <= theta_e <= 3.0 or theta_e < crit.min_theta_e_over_fwhm * fwhm_min:
            continue
        q_m = float(rng.uniform(0.5, 1.0))
        phi_m = float(rng.uniform(0.0, math.pi))
        e1, e2 = _ellipticity(q_m, phi_m)
        gamma = float(rng.uniform(0.0, 0.1))
        shear_phi = float(rng.uniform(0.0, math.pi))
        g1, g2 = gamma * math.cos(2.0 * shear_phi), gamma * math.sin(2.0 * shear_phi)
        lens = LensModel(
            (SIE(theta_e, e1, e2, ctx.x0, ctx.y0), ExternalShear(g1, g2, ctx.x0, ctx.y0))
        )
        # lens light: red Sersic aligned with the mass (with scatter)
        q_l = float(np.clip(q_m + rng.normal(0.0, 0.08), 0.4, 1.0))
        phi_l = phi_m + float(rng.normal(0.0, math.radians(10.0)))
        r_l = float(
            np.clip(
                0.9 * (sigma_v / 250.0) ** 1.2 * (0.5 / z_l) ** 0.7 * 10.0 ** rng.normal(0.0, 0.12),
                0.3,
                3.0,
            )
        )
        n_l = float(rng.uniform(3.0, 5.5))
        lens_light = _sersic(ctx, r_sersic=r_l, n_sersic=n_l, q=q_l, phi=phi_l)
        # source: Sersic plus star-forming clumps, inside the caustic region mostly
        beta = 0.8 * theta_e * math.sqrt(float(rng.uniform()))
        beta_angle = float(rng.uniform(0.0, 2.0 * math.pi))
        sx, sy = ctx.x0 + beta * math.cos(beta_angle), ctx.y0 + beta * math.sin(beta_angle)
        r_s = 10.0 ** float(rng.uniform(math.log10(0.08), math.log10(0.5)))
        n_s = float(rng.uniform(0.5, 2.0))
        q_s = float(rng.uniform(0.3, 1.0))
        es1, es2 = _ellipticity(q_s, float(rng.uniform(0.0, math.pi)))
        source = SersicEllipse.from_flux(1.0, r_s, n_s, es1, es2, sx, sy)
        n_clumps = int(rng.integers(0, 6))
        f_clumps = float(rng.uniform(0.1, 0.45)) if n_clumps else 0.0
        lensed: list[LightProfile] = [source]
        if n_clumps:
            off_x = rng.normal(0.0, r_s / math.sqrt(q_s), size=n_clumps)
            off_y = rng.normal(0.0, r_s * math.sqrt(q_s), size=n_clumps)
            _, phi_s = ellipticity_to_q_phi(es1, es2)
            c, s = math.cos(phi_s), math.sin(phi_s)
            lensed.append(
                _clumps(rng, sx + c * off_x - s * off_y, sy + s * off_x + c * off_y, (0.02, 0.07))
            )
        templates = _templates(tuple(lensed), lens, survey.cutout_size, survey.pixel_scale_arcsec)
        mus = [float(t.sum()) for t in templates]
        mu = (1.0 - f_clumps) * mus[0] + (f_clumps * mus[1] if n_clumps else 0.0)
        if mu < crit.min_magnification:
            continue
        # fluxes
        source_colours = _blue_colours(rng)
        clump_colours = _blue_colours(rng, 0.15)
        if ctx.mag_r is None:
            lens_mag = max(_faber_jackson_mag_r(rng, sigma_v, z_l), 17.0)
            source_mag = _count_law(rng, 21.0, 25.0, slope=0.2)
        else:
            total = ab_to_njy(ctx.mag_r)
            share = float(rng.uniform(0.05, 0.5))
            lens_mag = njy_to_ab((1.0 - share) * total)
            source_mag = njy_to_ab(share * total / mu)
        f_src = ab_to_njy(source_mag)
        comps = [
            Component(lens_light, _fluxes(ab_to_njy(lens_mag), _red_colours(rng, z_l))),
            Component(
                source,
                _fluxes((1.0 - f_clumps) * f_src, source_colours),
                lensed=True,
                magnification=mus[0],
            ),
        ]
        if n_clumps:
            comps.append(
                Component(
                    lensed[1],
                    _fluxes(f_clumps * f_src, clump_colours),
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
        arcs = _signal(comps[1:], [], probe, survey)
        light = _signal(comps[:1], [], probe, survey)
        snr, _ = _arc_snr(arcs, light, survey)
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
        return _Drawn(comps, lens=lens, params=params, size=size, scale_to_mag_r=False)
    raise SimulationError(
        f"no lens met {crit} in {crit.max_draws} draws"
        + (f" at mag_r {ctx.mag_r}: try a brighter system" if ctx.mag_r is not None else "")
    )


_DRAWERS: dict[str, Callable[[_Ctx], _Drawn]] = {
    "lens": _draw_lens,
    "elliptical": _draw_elliptical,
    "spiral": _draw_spiral,
    "disc_face_on": _draw_disc_face_on,
    "disc_edge_on": _draw_disc_edge_on,
    "ring": _draw_ring,
    "merger": _draw_merger,
    "blue_neighbours": _draw_blue_neighbours,
    "group": _draw_group,
    "star": _draw_star,
    "artefact": _draw_artefact,
}


def _background_galaxies(ctx: _Ctx) -> list[Component]:
    """Faint field galaxies scattered over the cutout (not within 2 arcsec of the centre)."""
    rng = ctx.rng
    half = 0.5 * ctx.survey.cutout_size * ctx.survey.pixel_scale_arcsec
    comps = []
    for _ in range(int(rng.poisson(1.5))):
        x, y = (float(v) for v in rng.uniform(-half, half, size=2))
        if math.hypot(x, y) < 2.0:
            continue
        mag = _count_law(rng, 23.0, 26.5)
        profile = SersicEllipse.from_flux(
            1.0,
            float(rng.uniform(0.1, 0.5)),
            float(rng.uniform(0.5, 2.5)),
            *_ellipticity(float(rng.uniform(0.3, 1.0)), float(rng.uniform(0.0, math.pi))),
            ctx.x0 + x,
            ctx.y0 + y,
        )
        colours = (
            _red_colours(rng, float(rng.uniform(0.3, 1.0)))
            if rng.uniform() < 0.3
            else (_blue_colours(rng))
        )
        comps.append(Component(profile, _fluxes(ab_to_njy(mag), colours), in_catalog=False))
    return comps


_EXTRA_ARTEFACTS = {
    "cosmic_ray": 0.03,
    "satellite_trail": 0.01,
    "bad_column": 0.01,
    "star_halo": 0.02,
}
"""Chance of each artefact anywhere in a cutout of any class."""


def _artefact_amplitude(ctx: _Ctx, kind: str, band: str) -> float:
    """A typical amplitude of an artefact kind: CR flux, trail nJy/arcsec, column nJy/pixel,
    bright-star flux (nJy)."""
    rng = ctx.rng
    if kind == "cosmic_ray":
        return float(10.0 ** rng.uniform(2.5, 4.3))
    if kind == "satellite_trail":
        return float(10.0 ** rng.uniform(1.3, 2.8))
    if kind == "bad_column":
        return float(rng.uniform(3.0, 30.0)) * ctx.survey.sky_sigma_njy[band]
    return ab_to_njy(float(rng.uniform(10.5, 14.5)))


def _extra_artefacts(ctx: _Ctx) -> list[Artefact]:
    """Occasional artefacts anywhere in the cutout, whatever the class."""
    rng = ctx.rng
    out: list[Artefact] = []
    for kind, p in _EXTRA_ARTEFACTS.items():
        if rng.uniform() < p:
            band = str(rng.choice(ctx.survey.bands))
            artefact = _random_artefact(ctx, kind, band, central=False)
            level = _artefact_amplitude(ctx, kind, band)
            out.append(_with_amplitude(artefact, level / _UNIT_AMPLITUDE))
    return out


def _system_mag(drawn: _Drawn, bands: Sequence[str]) -> dict[str, float]:
    mags = {}
    for band in bands:
        total = sum(
            c.flux.get(band, 0.0) * c.magnification for c in drawn.components if c.in_catalog
        )
        total += sum(p.flux.get(band, 0.0) for p in drawn.points if p.in_catalog)
        mags[band] = njy_to_ab(total)
    return mags


def draw_scene(
    kind: str,
    *,
    seed: Sequence[int] | int,
    survey: Survey = LSST_LIKE,
    mag_r: float | None = None,
    criteria: LensCriteria = DEFAULT_CRITERIA,
) -> Scene:
    """Draw a scene of a class from a seed: parameters only (lenses: plus an acceptance render).

    mag_r fixes the r magnitude of the catalogued system (for a lens, lens plus magnified source;
    for an artefact, its flux in a 1 arcsec aperture). Lenses are redrawn until they meet
    `criteria`, deterministically from the seed; the floors are written into params.
    """
    seeds = _seed_tuple(seed)
    rng = _rng(seeds, kind, 0)
    common = float(rng.uniform(0.85, 1.15))
    seeing = FrozenMapping(
        {
            b: float(np.clip(common * (1.0 + rng.normal(0.0, 0.03)), 0.85, 1.15))
            for b in survey.catalog_bands
        }
    )
    psf_model = "moffat" if rng.uniform() < 0.7 else "gaussian"
    half_pixel = 0.5 * survey.pixel_scale_arcsec
    x0, y0 = (float(v) for v in rng.uniform(-half_pixel, half_pixel, size=2))
    ctx = _Ctx(rng, survey, mag_r, criteria, seeing, psf_model, x0, y0)
    drawn = _DRAWERS[kind](ctx)
    if mag_r is not None and drawn.scale_to_mag_r:
        now = _system_mag(drawn, ["r"])["r"]
        factor = 10.0 ** (-0.4 * (mag_r - now))
        drawn.components = [
            replace(c, flux=_scaled(c.flux, factor)) if c.in_catalog else c
            for c in drawn.components
        ]
        drawn.points = [
            replace(p, flux=_scaled(p.flux, factor)) if p.in_catalog else p for p in drawn.points
        ]
        drawn.artefacts = [
            replace(a, flux=_scaled(a.flux, factor)) if isinstance(a, StarHalo) else a
            for a in drawn.artefacts
        ]
    mag = drawn.mag if drawn.mag is not None else _system_mag(drawn, survey.catalog_bands)
    components = drawn.components + _background_galaxies(ctx)
    artefacts = drawn.artefacts + _extra_artefacts(ctx)
    size = drawn.size if drawn.size is not None else 0.0
    return Scene(
        kind=kind,
        is_lens=kind == "lens",
        seed=seeds,
        mag=FrozenMapping(mag),
        extended=drawn.extended,
        size_arcsec=float(size),
        params=FrozenMapping(drawn.params),
        components=tuple(components),
        points=tuple(drawn.points),
        lens=drawn.lens,
        seeing=seeing,
        psf_model=psf_model,
        artefacts=tuple(artefacts),
    )


def simulate_cutouts(
    kinds: Sequence[str],
    ids: npt.ArrayLike,
    *,
    seed: int,
    survey: Survey = LSST_LIKE,
    criteria: LensCriteria = DEFAULT_CRITERIA,
) -> tuple[list[Scene], npt.NDArray[np.float32]]:
    """Draw and render one scene per (kind, id), seeded by (seed, id): chunking-independent.

    Returns the scenes and images float32 (N, bands, n, n) in nJy.
    """
    id_array = np.asarray(ids, dtype=np.int64).reshape(-1)
    if len(kinds) != id_array.size:
        raise SimulationError(f"{len(kinds)} kinds for {id_array.size} ids")
    n = survey.cutout_size
    images = np.empty((id_array.size, len(survey.bands), n, n), dtype=np.float32)
    scenes = []
    for k, (kind, ident) in enumerate(zip(kinds, id_array.tolist(), strict=True)):
        scene = draw_scene(kind, seed=(seed, ident), survey=survey, criteria=criteria)
        images[k] = render_scene(scene, survey=survey)
        scenes.append(scene)
    return scenes, images


def observe_magnitudes(
    scene: Scene, *, rng: np.random.Generator, survey: Survey = LSST_LIKE
) -> tuple[dict[str, float], dict[str, float]]:
    """Catalog magnitudes and 1-sigma errors per catalog band, as an aperture would measure them.

    Aperture radius = PSF FWHM + the system's half-light radius; noise from the sky sigma over
    the aperture's pixels and the source's Poisson noise, plus a 0.005 mag calibration term.
    A source measured below 1 sigma gets nan.
    """
    mags: dict[str, float] = {}
    errors: dict[str, float] = {}
    for band in survey.catalog_bands:
        flux = ab_to_njy(scene.mag.get(band, math.inf))
        radius = scene.psf_fwhm(band, survey) + scene.size_arcsec
        n_pix = math.pi * radius**2 / survey.pixel_scale_arcsec**2
        sigma = math.sqrt(
            n_pix * survey.sky_sigma_njy[band] ** 2 + max(flux, 0.0) / survey.gain(band)
        )
        calib = float(rng.normal(0.0, 0.005))
        measured = flux * 10.0 ** (-0.4 * calib) + float(rng.normal(0.0, sigma))
        if measured < sigma:
            mags[band], errors[band] = math.nan, math.nan
            continue
        mags[band] = njy_to_ab(measured)
        errors[band] = math.hypot(2.5 / math.log(10.0) * sigma / measured, 0.005)
    return mags, errors
