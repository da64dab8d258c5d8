"""Labelled training sets: simulated cutouts in a Zarr store and their labels in Parquet.

Object k of a set has id k and is seeded (seed, k), and the classes are assigned from the seed
before any chunking, so a set is the same bit for bit whatever the chunk size, the number of Dask
workers or the order in which chunks finish. Each chunk writes its own group ("chunk-000012").
"""

from __future__ import annotations

import logging
import math
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from lensflow.errors import SimulationError
from lensflow.io import canonical_hash
from lensflow.labels import label_schema, write_labels
from lensflow.simulate.draw import check_survey, simulate_cutouts
from lensflow.simulate.population import DEFAULT_POPULATION, check_population
from lensflow.simulate.scene import (
    DEFAULT_CRITERIA,
    LENS_PARAMS,
    NON_LENS_CLASSES,
    TRAINING_MIX,
    LensCriteria,
    Scene,
)
from lensflow.surveys import Survey, survey_profile

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)

LabelRow = dict[str, Any]

PARTS_FOLDER = "labels.parts"
"""Where a set being made keeps each finished chunk's label rows until labels.parquet is written."""
SET_TOKEN = "set_token"
"""The store attribute naming the spec a set was begun with (a resumed run must match it)."""


class TrainingSet(NamedTuple):
    """Where a training set was written and what it holds."""

    store: Path
    labels: Path
    n_lenses: int
    n_non_lenses: int


def survey_label_schema(survey: Survey) -> pa.Schema:
    """The labels schema of a survey's training sets (its catalog bands, LENS_PARAMS)."""
    return label_schema(bands=survey.catalog_bands, lens_params=LENS_PARAMS)


def label_row(ident: int, scene: Scene, survey: Survey) -> LabelRow:
    """One labels row of a scene (see survey_label_schema)."""
    row: LabelRow = {
        "id": int(ident),
        "is_lens": bool(scene.is_lens),
        "class": scene.kind,
        "size_arcsec": float(scene.size_arcsec),
    }
    for band in survey.catalog_bands:
        row[f"mag_{band}"] = float(scene.mag[band])
    for name in LENS_PARAMS:
        row[name] = float(scene.params[name]) if scene.is_lens else None
    return row


def _normalised_mix(mix: Mapping[str, float]) -> tuple[list[str], npt.NDArray[np.float64]]:
    unknown = sorted(set(mix) - set(NON_LENS_CLASSES))
    if unknown:
        raise SimulationError(
            f"mix names unknown non-lens classes {unknown}; known {list(NON_LENS_CLASSES)}"
        )
    names = [c for c in NON_LENS_CLASSES if mix.get(c, 0.0) > 0.0]
    weights = np.array([float(mix[c]) for c in names])
    if not names or not np.all(np.isfinite(weights)) or any(v < 0 for v in mix.values()):
        raise SimulationError(f"mix needs non-negative, finite weights with a positive sum: {mix}")
    return names, weights / weights.sum()


def plan_classes(
    n_lenses: int, n_non_lenses: int, *, seed: int, mix: Mapping[str, float] = TRAINING_MIX
) -> list[str]:
    """The class of each id 0..N-1: lenses and non-lenses (drawn from mix) shuffled by seed."""
    if n_lenses < 0 or n_non_lenses < 0 or n_lenses + n_non_lenses == 0:
        raise SimulationError(
            f"need n_lenses >= 0 and n_non_lenses >= 0, not both 0 ({n_lenses}, {n_non_lenses})"
        )
    rng = np.random.default_rng(np.random.SeedSequence([seed], spawn_key=(0x6D6978,)))
    kinds = ["lens"] * n_lenses
    if n_non_lenses:
        names, p = _normalised_mix(mix)
        kinds += [names[i] for i in rng.choice(len(names), size=n_non_lenses, p=p)]
    order = rng.permutation(len(kinds))
    return [kinds[i] for i in order]


def simulate_chunk(
    store: Path,
    group: str,
    kinds: Sequence[str],
    ids: npt.ArrayLike,
    *,
    seed: int,
    survey: Survey | None = None,
    criteria: LensCriteria = DEFAULT_CRITERIA,
    population: str = DEFAULT_POPULATION,
    parts: Path | None = None,
) -> list[LabelRow]:
    """Simulate one chunk, write it as a group of the store, return its label rows (a task).

    survey: the profile (default: lsst); population: the simulator's ("classic" or "wide").
    parts: a folder for the chunk's label rows (GROUP.parquet, written before the group), so an
    interrupted set resumes at the chunks it has not made.
    """
    from lensflow.cutouts import write_group

    survey = survey or survey_profile()
    id_array = np.asarray(ids, dtype=np.int64)
    scenes, images = simulate_cutouts(
        kinds, id_array, seed=seed, survey=survey, criteria=criteria, population=population
    )
    rows = [label_row(int(i), s, survey) for i, s in zip(id_array.tolist(), scenes, strict=True)]
    if parts is not None:
        write_labels(parts / f"{group}.parquet", rows, schema=survey_label_schema(survey))
    write_group(Path(store), group, ids=id_array, images=images)
    return rows


def _set_token(store: Path) -> str | None:
    """The spec token of a store an earlier run began (None: no such store)."""
    import zarr

    try:
        return str(zarr.open_group(str(store), mode="r").attrs.get(SET_TOKEN))
    except (FileNotFoundError, ValueError, KeyError):
        return None


def _finished_chunks(
    store: Path, parts: Path, chunks: list[tuple[str, list[str], npt.NDArray[np.int64]]]
) -> tuple[list[LabelRow], list[tuple[str, list[str], npt.NDArray[np.int64]]]]:
    """Label rows of the chunks an interrupted run made (group and label part both in place, the
    group's ids those planned), and the chunks still to make."""
    import pyarrow.parquet as pq

    from lensflow.cutouts import list_groups, read_group_ids

    made = set(list_groups(store))
    rows: list[LabelRow] = []
    todo = []
    for chunk in chunks:
        group, _, ids = chunk
        part = parts / f"{group}.parquet"
        if group in made and part.is_file() and np.array_equal(read_group_ids(store, group), ids):
            rows += pq.read_table(part).to_pylist()
        else:
            todo.append(chunk)
    return rows, todo


def make_training_set(
    out: Path,
    *,
    n_lenses: int,
    n_non_lenses: int,
    seed: int,
    survey: Survey | None = None,
    mix: Mapping[str, float] | None = None,
    client: Client | None = None,
    chunk_size: int = 512,
    criteria: LensCriteria = DEFAULT_CRITERIA,
    overwrite: bool = False,
    progress: bool = True,
    population: str = DEFAULT_POPULATION,
) -> TrainingSet:
    """Simulate a labelled set into out/cutouts.zarr and out/labels.parquet.

    Non-lens classes follow `mix` (default TRAINING_MIX, the confusing classes boosted). With a
    Dask client, chunks of `chunk_size` ids run as tasks (each writes its group); otherwise they
    run here. The result does not depend on the chunking or the cluster. survey: the profile
    (default: lsst); the store's attributes and the labels' bands are its. population: the
    simulator's ("classic" or "wide"), recorded in the store's attribute "population".
    """
    import zarr

    from lensflow.cutouts import create_store

    survey = survey or survey_profile()
    check_survey(survey)
    check_population(population)
    if chunk_size < 1:
        raise SimulationError(f"chunk_size must be >= 1, got {chunk_size}")
    kinds = plan_classes(
        n_lenses, n_non_lenses, seed=seed, mix=TRAINING_MIX if mix is None else mix
    )
    out = Path(out)
    store, labels, parts = out / "cutouts.zarr", out / "labels.parquet", out / PARTS_FOLDER
    token = canonical_hash(
        {
            "kinds": kinds,
            "seed": seed,
            "chunk_size": chunk_size,
            "criteria": repr(criteria),
            "survey": repr(survey),
            "population": population,
        }
    )
    resuming = not labels.exists() and _set_token(store) == token
    if not overwrite and not resuming and (store.exists() or labels.exists()):
        raise SimulationError(
            f"{out} already holds a training set; pass overwrite=True or choose a new folder"
        )
    out.mkdir(parents=True, exist_ok=True)
    if not resuming:
        shutil.rmtree(parts, ignore_errors=True)
        create_store(store, **survey.store_attributes(), overwrite=True)
        zarr.open_group(str(store), mode="r+").attrs.update(
            {"population": population, SET_TOKEN: token}
        )
    ids = np.arange(len(kinds), dtype=np.int64)
    n_chunks = math.ceil(len(kinds) / chunk_size)
    every = [
        (
            f"chunk-{c:06d}",
            kinds[c * chunk_size : (c + 1) * chunk_size],
            ids[c * chunk_size : (c + 1) * chunk_size],
        )
        for c in range(n_chunks)
    ]
    rows, chunks = _finished_chunks(store, parts, every) if resuming else ([], every)
    if resuming:
        logger.info(
            "resuming %s: %d of %d chunks already made", out, n_chunks - len(chunks), n_chunks
        )
    n_chunks = len(chunks)
    from rich.progress import Progress

    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"simulating {len(kinds)} cutouts", total=len(kinds))
        bar.advance(task, len(rows))
        if client is None:
            for group, chunk_kinds, chunk_ids in chunks:
                rows += simulate_chunk(
                    store,
                    group,
                    chunk_kinds,
                    chunk_ids,
                    seed=seed,
                    survey=survey,
                    criteria=criteria,
                    population=population,
                    parts=parts,
                )
                bar.advance(task, len(chunk_ids))
        else:
            from dask.base import tokenize
            from distributed import as_completed

            token = tokenize(str(store.resolve()), token)
            futures = client.map(
                simulate_chunk,
                [store] * n_chunks,
                [c[0] for c in chunks],
                [c[1] for c in chunks],
                [c[2] for c in chunks],
                seed=seed,
                survey=survey,
                criteria=criteria,
                population=population,
                parts=parts,
                key=[f"simulate-chunk-{token}-{c[0]}" for c in chunks],
            )
            for future in as_completed(futures):
                part = future.result()
                rows += part
                bar.advance(task, len(part))
                future.release()
    write_labels(labels, rows, schema=survey_label_schema(survey))
    shutil.rmtree(parts, ignore_errors=True)
    logger.info("training set: %d lenses + %d non-lenses -> %s", n_lenses, n_non_lenses, out)
    return TrainingSet(store=store, labels=labels, n_lenses=n_lenses, n_non_lenses=n_non_lenses)
