"""Simulated catalogs for the photometry gate: the rows of lens systems and of the galaxies
that pass the catalog cuts, measured as a survey's catalog measures them.

Magnitudes come from `observe_photometry`; when the gate reads morphology, each kept row's PSF
magnitudes, sizes and extendedness are measured on its pixels (`observe_morphology`), by a pool
of processes when asked (the measurement is deterministic per scene, so the rows are the same
whatever the number of processes). Torch-free.
"""

from __future__ import annotations

import multiprocessing
from collections import deque
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from lensflow.errors import TrainingError
from lensflow.surveys import Survey
from lensflow.train.config import CatalogCuts

if TYPE_CHECKING:
    from lensflow.simulate.photometry import Photometry
    from lensflow.simulate.scene import Scene


@dataclass(frozen=True)
class Catalog:
    """Simulated catalog rows that passed the cuts.

    mags float32 (N, bands) AB in the survey's catalog bands (`bands`, in that order) as the
    catalog measures them; errors float32 (N, bands) their 1-sigma errors; is_lens bool (N,);
    classes str (N,). drawn / passed: how many of each class were drawn and kept by the cuts.
    With morphology measured: psf_mags float32 (N, bands) AB, sizes float32 (N, bands) arcsec
    and extendedness float32 (N,) (1 extended, 0 point-like; nan where unmeasured); else None.
    """

    bands: tuple[str, ...]
    mags: np.ndarray
    errors: np.ndarray
    is_lens: np.ndarray
    classes: np.ndarray
    drawn: Mapping[str, int]
    passed: Mapping[str, int]
    psf_mags: np.ndarray | None = None
    sizes: np.ndarray | None = None
    extendedness: np.ndarray | None = None

    def column(self, name: str) -> np.ndarray:
        """One column float32 (N,) by its column-map name: mag_<band>, magerr_<band>,
        psfmag_<band>, size_<band> or extendedness."""
        if name == "extendedness":
            return self._measured(self.extendedness, name)
        key, _, band = name.partition("_")
        per_band = {
            "mag": self.mags,
            "magerr": self.errors,
            "psfmag": self.psf_mags,
            "size": self.sizes,
        }
        if key not in per_band or band not in self.bands:
            raise TrainingError(
                f"no catalog column {name!r}: columns are <key>_<band> with key in "
                f"{sorted(per_band)} and band in {list(self.bands)}, or extendedness"
            )
        return self._measured(per_band[key], name)[:, self.bands.index(band)]

    def inputs(self, names: Sequence[str]) -> np.ndarray:
        """Columns float32 (N, len(names)) in the order named (`column`)."""
        if not names:
            return np.empty((self.is_lens.size, 0), dtype=np.float32)
        return np.stack([self.column(name) for name in names], axis=1).astype(np.float32)

    def _measured(self, values: np.ndarray | None, name: str) -> np.ndarray:
        if values is None:
            raise TrainingError(f"{name}: this catalog was simulated without morphology")
        return values


def passes_cuts(mags: Mapping[str, float], extended: bool, cuts: CatalogCuts) -> bool:
    """Whether a measured source passes the catalog cuts (every band in mags measured, r range,
    extent)."""
    if not all(np.isfinite(v) for v in mags.values()):
        return False
    if cuts.extended and not extended:
        return False
    return cuts.min_mag_r <= mags["r"] < cuts.max_mag_r


MorphologyRow = tuple[list[float], list[float], float]
"""A row's PSF magnitudes and sizes per catalog band, and its extendedness."""

MORPHOLOGY_CHUNK = 256
"""Rows per morphology task when several processes measure them."""


def _morphology_rows(
    scenes: Sequence[Scene], photometry: Sequence[Photometry], survey: Survey
) -> list[MorphologyRow]:
    """Measure each scene's morphology (a process pool's task)."""
    from lensflow.simulate.photometry import observe_morphology

    rows: list[MorphologyRow] = []
    for scene, measured in zip(scenes, photometry, strict=True):
        entry = observe_morphology(scene, measured, survey=survey)
        bands = survey.catalog_bands
        psf = [float(entry.psf_mags[b]) for b in bands]
        rows.append((psf, [float(entry.sizes[b]) for b in bands], float(entry.extendedness)))
    return rows


class _Morphologies:
    """Morphology of the kept rows, measured here or, with workers > 1, by a pool of spawned
    processes in chunks (at most 2 x workers chunks in flight); rows come back in order."""

    def __init__(self, survey: Survey, workers: int) -> None:
        self.survey = survey
        self.workers = workers
        self.rows: list[MorphologyRow] = []
        self.pending: tuple[list[Scene], list[Photometry]] = ([], [])
        self.futures: deque[Future[list[MorphologyRow]]] = deque()
        self.pool: ProcessPoolExecutor | None = None
        if workers > 1:
            context = multiprocessing.get_context("spawn")
            self.pool = ProcessPoolExecutor(workers, mp_context=context)

    def add(self, scene: Scene, photometry: Photometry) -> None:
        if self.pool is None:
            self.rows.extend(_morphology_rows([scene], [photometry], self.survey))
            return
        self.pending[0].append(scene)
        self.pending[1].append(photometry)
        if len(self.pending[0]) >= MORPHOLOGY_CHUNK:
            self._submit()

    def _submit(self) -> None:
        assert self.pool is not None
        if self.pending[0]:
            scenes, photometry = self.pending
            self.futures.append(self.pool.submit(_morphology_rows, scenes, photometry, self.survey))
            self.pending = ([], [])
        while len(self.futures) > 2 * self.workers:
            self.rows.extend(self.futures.popleft().result())

    def finish(self) -> list[MorphologyRow]:
        """Every row's morphology, in the order added; the pool is shut down."""
        if self.pool is not None:
            self._submit()
            while self.futures:
                self.rows.extend(self.futures.popleft().result())
            self.pool.shutdown()
        return self.rows


def simulate_catalog(
    *,
    n_lenses: int,
    n_non_lenses: int,
    seed: int,
    cuts: CatalogCuts,
    survey: Survey | None = None,
    max_draws: int = 50,
    morphology: bool = False,
    workers: int = 1,
) -> Catalog:
    """Catalog magnitudes of lens systems and of natural-mix non-lenses passing the cuts.

    Draws scenes one by one (seeded by (seed, class index, draw)) in the survey profile (default:
    lsst) at the simulator's own magnitude laws, measures them as a catalog would
    (observe_photometry, every catalog band) and keeps those passing the cuts, until each side
    has its count; gives up after max_draws x the count. With morphology, the kept rows' PSF
    magnitudes, sizes and extendedness are measured on their pixels (observe_morphology; its
    own noise stream, so the magnitudes are the same either way), by `workers` processes.
    """
    from lensflow.simulate import CLASSES, NATURAL_MIX, draw_scene, survey_profile
    from lensflow.simulate.photometry import observe_photometry

    survey = survey or survey_profile()
    bands = survey.catalog_bands

    rng = np.random.default_rng([seed, 0])
    contaminants = [c for c in NATURAL_MIX if c != "lens"]
    weights = np.array([NATURAL_MIX[c] for c in contaminants], dtype=np.float64)
    weights /= weights.sum()
    rows: list[list[float]] = []
    error_rows: list[list[float]] = []
    is_lens: list[bool] = []
    classes: list[str] = []
    drawn: dict[str, int] = {}
    passed: dict[str, int] = {}
    class_index = {name: i for i, name in enumerate(CLASSES)}
    measured = _Morphologies(survey, workers) if morphology else None
    try:
        for lens_side, wanted in ((True, n_lenses), (False, n_non_lenses)):
            kept = 0
            draws = 0
            while kept < wanted:
                if draws >= max_draws * wanted:
                    raise TrainingError(
                        f"only {kept} of {wanted} {'lenses' if lens_side else 'non-lenses'} "
                        f"passed the cuts {cuts} in {draws} draws"
                    )
                kind = "lens" if lens_side else str(rng.choice(contaminants, p=weights))
                scene = draw_scene(kind, seed=(seed, class_index[kind], draws), survey=survey)
                photometry = observe_photometry(scene, rng=rng, survey=survey)
                draws += 1
                drawn[kind] = drawn.get(kind, 0) + 1
                if not passes_cuts(photometry.mags, bool(scene.extended), cuts):
                    continue
                passed[kind] = passed.get(kind, 0) + 1
                rows.append([float(photometry.mags[b]) for b in bands])
                error_rows.append([float(photometry.errors[b]) for b in bands])
                is_lens.append(lens_side)
                classes.append(kind)
                if measured is not None:
                    measured.add(scene, photometry)
                kept += 1
        morphology_rows = measured.finish() if measured is not None else None
    finally:
        if measured is not None and measured.pool is not None:
            measured.pool.shutdown(cancel_futures=True)

    def table(values: list[list[float]]) -> np.ndarray:
        return np.asarray(values, dtype=np.float32).reshape(-1, len(bands))

    extra: dict[str, np.ndarray] = {}
    if morphology_rows is not None:
        extra = {
            "psf_mags": table([r[0] for r in morphology_rows]),
            "sizes": table([r[1] for r in morphology_rows]),
            "extendedness": np.asarray([r[2] for r in morphology_rows], dtype=np.float32),
        }
    return Catalog(
        bands=bands,
        mags=table(rows),
        errors=table(error_rows),
        is_lens=np.asarray(is_lens, dtype=bool),
        classes=np.asarray(classes, dtype=object),
        drawn=drawn,
        passed=passed,
        **extra,
    )
