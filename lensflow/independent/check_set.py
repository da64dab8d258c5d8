"""The independent check set: labelled cutouts rendered by lenstronomy, in the training-set format.

Object k of a set has id k and its own random streams (`object_rngs(seed, k)`); the classes are
planned from the seed before any chunking (lenses, then the non-lens classes in equal shares,
shuffled), so a set is the same bit for bit whatever the chunk size, the number of Dask workers
or the order in which chunks finish. Each chunk writes its own group ("chunk-000012") of the
cutout store; the labels (id, is_lens, class, size, magnitudes, lens parameters) are written
once at the end.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from lensflow.errors import SimulationError
from lensflow.independent.lenses import DETECTABLE, LENS_PARAMS, Detectability
from lensflow.independent.population import Scene
from lensflow.independent.scenes import (
    DOMAIN,
    NON_LENS_CLASSES,
    make_cutout,
    scene_magnitudes,
    scene_size,
)
from lensflow.independent.seds import check_bands
from lensflow.labels import label_schema, write_labels
from lensflow.surveys import Survey, survey_profile

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)

LabelRow = dict[str, Any]

DEFAULT_CHUNK = 128
"""Cutouts per chunk (one task, one group of the store)."""


class CheckSet(NamedTuple):
    """Where a check set was written and what it holds."""

    store: Path
    labels: Path
    n_lenses: int
    n_non_lenses: int


def check_label_schema(survey: Survey) -> pa.Schema:
    """The labels schema of a survey's check sets (its catalog bands, LENS_PARAMS)."""
    return label_schema(bands=survey.catalog_bands, lens_params=LENS_PARAMS)


def label_row(ident: int, scene: Scene, survey: Survey) -> LabelRow:
    """One labels row of a scene (see check_label_schema); lens parameters null for non-lenses
    and where one does not apply (a quasar's image count for an extended source)."""
    row: LabelRow = {
        "id": int(ident),
        "is_lens": bool(scene.is_lens),
        "class": scene.kind,
        "size_arcsec": scene_size(scene),
    }
    for band, mag in scene_magnitudes(scene, survey).items():
        row[f"mag_{band}"] = float(mag) if math.isfinite(mag) else None
    for name in LENS_PARAMS:
        value = float(scene.params[name]) if scene.is_lens else math.nan
        row[name] = value if math.isfinite(value) else None
    return row


def plan_classes(n_lenses: int, n_non_lenses: int, *, seed: int) -> list[str]:
    """The class of each id 0..N-1: n_lenses lenses and the non-lens classes in equal shares
    (the first classes one more where N does not divide), shuffled by the seed."""
    if n_lenses < 0 or n_non_lenses < 0 or n_lenses + n_non_lenses == 0:
        raise SimulationError(
            f"need --lenses >= 0 and --non-lenses >= 0, not both 0 ({n_lenses}, {n_non_lenses})"
        )
    kinds = ["lens"] * n_lenses
    kinds += [NON_LENS_CLASSES[k % len(NON_LENS_CLASSES)] for k in range(n_non_lenses)]
    rng = np.random.default_rng(np.random.SeedSequence(entropy=seed, spawn_key=(DOMAIN,)))
    return [kinds[i] for i in rng.permutation(len(kinds))]


def simulate_chunk(
    store: Path,
    group: str,
    kinds: Sequence[str],
    ids: npt.ArrayLike,
    *,
    seed: int,
    survey: Survey,
    criterion: Detectability = DETECTABLE,
) -> list[LabelRow]:
    """Draw and render one chunk, write it as a group of the store, return its rows (a task)."""
    from lensflow.cutouts import write_group

    id_array = np.asarray(ids, dtype=np.int64)
    rows, images = [], []
    for kind, ident in zip(kinds, id_array.tolist(), strict=True):
        scene, image = make_cutout(kind, seed=seed, ident=ident, survey=survey, criterion=criterion)
        rows.append(label_row(ident, scene, survey))
        images.append(image)
    write_group(Path(store), group, ids=id_array, images=np.stack(images))
    return rows


def check_output(out: Path) -> None:
    """Refuse a folder that already holds a cutout store or labels (a set is never replaced
    unless asked)."""
    out = Path(out)
    if (out / "cutouts.zarr").exists() or (out / "labels.parquet").exists():
        raise SimulationError(
            f"{out} already holds a cutout set; choose a new folder or remove that one first"
        )


def make_check_set(
    out: Path,
    *,
    n_lenses: int,
    n_non_lenses: int,
    seed: int,
    survey: Survey | None = None,
    client: Client | None = None,
    chunk_size: int = DEFAULT_CHUNK,
    criterion: Detectability = DETECTABLE,
    overwrite: bool = False,
    progress: bool = True,
) -> CheckSet:
    """Render a labelled check set into out/cutouts.zarr and out/labels.parquet.

    With a Dask client, chunks of `chunk_size` ids run as tasks (each writes its group);
    otherwise they run here. The result does not depend on the chunking or the cluster.
    survey: the profile (default: lsst); the store's attributes and the labels' bands are its.
    """
    from rich.progress import Progress

    from lensflow.cutouts import create_store

    survey = survey or survey_profile()
    check_bands(survey)
    if chunk_size < 1:
        raise SimulationError(f"chunk_size must be >= 1, got {chunk_size}")
    kinds = plan_classes(n_lenses, n_non_lenses, seed=seed)
    out = Path(out)
    store, labels = out / "cutouts.zarr", out / "labels.parquet"
    if not overwrite:
        check_output(out)
    out.mkdir(parents=True, exist_ok=True)
    create_store(store, **survey.store_attributes(), overwrite=True)
    ids = np.arange(len(kinds), dtype=np.int64)
    starts = range(0, len(kinds), chunk_size)
    chunks = [
        (f"chunk-{c:06d}", kinds[s : s + chunk_size], ids[s : s + chunk_size])
        for c, s in enumerate(starts)
    ]
    rows: list[LabelRow] = []
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"rendering {len(kinds)} cutouts", total=len(kinds))
        if client is None:
            for group, chunk_kinds, chunk_ids in chunks:
                rows += simulate_chunk(
                    store,
                    group,
                    chunk_kinds,
                    chunk_ids,
                    seed=seed,
                    survey=survey,
                    criterion=criterion,
                )
                bar.advance(task, len(chunk_ids))
        else:
            from dask.base import tokenize
            from distributed import as_completed

            token = tokenize(str(store.resolve()), seed, survey, criterion, kinds, chunk_size)
            futures = client.map(
                simulate_chunk,
                [store] * len(chunks),
                [c[0] for c in chunks],
                [c[1] for c in chunks],
                [c[2] for c in chunks],
                seed=seed,
                survey=survey,
                criterion=criterion,
                key=[f"check-chunk-{token}-{c:06d}" for c in range(len(chunks))],
            )
            for future in as_completed(futures):
                part = future.result()
                rows += part
                bar.advance(task, len(part))
                future.release()
    write_labels(labels, rows, schema=check_label_schema(survey))
    logger.info("check set: %d lenses + %d non-lenses -> %s", n_lenses, n_non_lenses, out)
    return CheckSet(store=store, labels=labels, n_lenses=n_lenses, n_non_lenses=n_non_lenses)
