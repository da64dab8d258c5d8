"""Injection sets: simulated lensed sources painted onto real deflector cutouts of any store.

`make_injection_set(STORE, OUT)` measures every cutout of the store (inject_deflectors), keeps
the deflectors a cut chooses (lensflow's cut grammar over mag_<band>, apmag_<band>, z, ...,
default DEFAULT_WHERE), and paints lens k onto deflector order[k mod M] (the seeded order of
the M chosen; the next ones in that order when a deflector yields no lens meeting the
criteria), seeded (seed, k), so the set does not depend on the chunking or the cluster. Lens k
gets the new id base + k (base above every id of the store) and the labels keep its
deflector's id; every cutout of the store is kept as a non-lens, bit for bit (the deflectors
too, unless drop_deflectors), labelled with the catalog's class or "store". OUT holds
cutouts.zarr (the store's root attributes plus an `injection` record) and labels.parquet.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
import zarr

from lensflow.cutouts import create_store, list_groups, read_cutouts, write_group
from lensflow.errors import SimulationError
from lensflow.labels import write_labels
from lensflow.simulate.inject_deflectors import (
    DEFAULT_WHERE,
    Deflector,
    FaberJackson,
    deflector_from_row,
    deflector_table,
    measure_group,
    select_deflectors,
)
from lensflow.simulate.inject_paint import Imaging, InjectionPrior, paint_lens
from lensflow.simulate.inject_store import (
    INJECT_PARAMS,
    Row,
    check_inputs,
    copy_group,
    injection_schema,
    non_lens_rows,
    store_attributes,
    store_imaging,
)
from lensflow.simulate.scene import DEFAULT_CRITERIA, LensCriteria
from lensflow.surveys import Survey, ab_to_njy, njy_to_ab, survey_profile

if TYPE_CHECKING:
    from distributed import Client

logger = logging.getLogger(__name__)

DEFLECTORS_TRIED = 10
"""Deflectors an injection tries in turn before it is given up."""


class InjectionSet(NamedTuple):
    """Where an injection set was written and what it holds; photometry: "labels" or
    "aperture" (where the deflectors' magnitudes came from); gain: "store" or "profile NAME"."""

    store: Path
    labels: Path
    n_lenses: int
    n_non_lenses: int
    n_deflectors: int
    photometry: str
    gain: str


@dataclass(frozen=True)
class InjectionPlan:
    """Everything an injection chunk needs: the source store, the imaging, the chosen
    deflectors in their seeded order with their magnitudes per band, the laws and floors, the
    seed and the first new id."""

    store: Path
    imaging: Imaging
    deflectors: tuple[Deflector, ...]
    mags: dict[int, dict[str, float]]
    seed: int
    base_id: int
    criteria: LensCriteria
    prior: InjectionPrior
    relation: FaberJackson
    noise: bool


def injection_rng(seed: int, k: int) -> np.random.Generator:
    """The random stream of injection k."""
    return np.random.default_rng(np.random.SeedSequence([seed, k], spawn_key=(0x696E6A,)))


def inject_chunk(out: Path, group: str, ks: Sequence[int], *, plan: InjectionPlan) -> list[Row]:
    """Paint injections ks, write them as a group of the out store; their label rows (a task)."""
    cache: dict[int, np.ndarray] = {}
    rows: list[Row] = []
    images: list[np.ndarray] = []
    m = len(plan.deflectors)
    for k in ks:
        rng = injection_rng(plan.seed, k)
        painted, tried = None, 0
        while painted is None and tried < min(DEFLECTORS_TRIED, m):
            deflector = plan.deflectors[(k + tried) % m]
            tried += 1
            if deflector.id not in cache:
                got = read_cutouts(plan.store, deflector.group, np.array([deflector.id]))
                cache[deflector.id] = got.images[0]
            painted = paint_lens(
                cache[deflector.id],
                deflector,
                rng=rng,
                imaging=plan.imaging,
                criteria=plan.criteria,
                prior=plan.prior,
                relation=plan.relation,
                noise=plan.noise,
            )
        if painted is None:
            logger.warning("injection %d: none of %d deflectors met the criteria", k, tried)
            continue
        params = {**painted.params, "deflectors_tried": float(tried)}
        row: Row = {
            "id": plan.base_id + int(k),
            "is_lens": True,
            "class": "lens",
            "deflector_id": deflector.id,
        }
        for band in plan.imaging.bands:
            mag = plan.mags[deflector.id][band]
            light = ab_to_njy(mag) if math.isfinite(mag) else 0.0
            row[f"mag_{band}"] = njy_to_ab(light + painted.arc_flux[band])
            row[f"arc_flux_{band}"] = painted.arc_flux[band]
        rows.append(row | {name: float(params[name]) for name in INJECT_PARAMS})
        images.append(painted.image)
    if rows:
        ids = np.array([r["id"] for r in rows], dtype=np.int64)
        write_group(Path(out), group, ids=ids, images=np.stack(images))
    return rows


def _run(
    client: Client | None, function: Any, jobs: Sequence[tuple[Any, ...]], **kw: Any
) -> Iterator[Any]:
    """Results of function(*job, **kw) per job, as they finish (on the cluster when given)."""
    if client is None:
        for job in jobs:
            yield function(*job, **kw)
        return
    from distributed import as_completed

    futures = client.map(function, *zip(*jobs, strict=True), pure=False, **kw) if jobs else []
    for future in as_completed(futures):
        yield future.result()
        future.release()


def make_injection_set(
    store: Path,
    out: Path,
    *,
    n_lenses: int,
    seed: int,
    labels: Path | None = None,
    where: str = DEFAULT_WHERE,
    survey: Survey | None = None,
    psf_model: str = "moffat",
    noise: bool = True,
    drop_deflectors: bool = False,
    criteria: LensCriteria = DEFAULT_CRITERIA,
    prior: InjectionPrior | None = None,
    relation: FaberJackson | None = None,
    client: Client | None = None,
    chunk_size: int = 64,
    overwrite: bool = False,
    progress: bool = True,
) -> InjectionSet:
    """Paint n_lenses lensed sources onto deflectors of `store`; write OUT/cutouts.zarr and
    OUT/labels.parquet (see the module docstring). labels: a catalog of the store's ids (mag_,
    z, class, is_lens); survey: the profile for the gain (unless the store's attrs carry a
    `gain` per band) and for bands the colour laws lack (default lsst); noise: the arcs' own
    Poisson noise (False: the arcs are added noiselessly)."""
    from rich.progress import Progress

    survey, store, out = survey or survey_profile(), Path(store), Path(out)
    info, catalog = check_inputs(
        store, out, labels=labels, where=where, survey=survey, overwrite=overwrite
    )
    if n_lenses < 1 or chunk_size < 1:
        raise SimulationError(f"need n_lenses >= 1 and chunk_size >= 1 ({n_lenses}, {chunk_size})")
    imaging = store_imaging(store, info, survey, psf_model)
    target, label_path = out / "cutouts.zarr", out / "labels.parquet"
    groups = list_groups(store)
    with Progress(disable=not progress, transient=True) as bar:
        task = bar.add_task(f"measuring {len(groups)} groups", total=len(groups))
        measured = []
        jobs = [(store, g) for g in groups]
        shape_band = info.bands.index("r") if "r" in info.bands else len(info.bands) // 2
        for part in _run(
            client, measure_group, jobs, pixel_scale=imaging.pixel_scale, shape_band=shape_band
        ):
            measured.append(part)
            bar.advance(task)
        table = deflector_table(sorted(measured, key=lambda p: p.group), info.bands, catalog)
        chosen = select_deflectors(table, where)
        if chosen.num_rows == 0:
            raise SimulationError(
                f"{store}: no cutout passes the deflector selection {where!r} "
                f"({table.num_rows} measured); loosen --deflectors-where"
            )
        order = np.random.default_rng(np.random.SeedSequence([seed], spawn_key=(0x6F7264,)))
        picked = [int(i) for i in order.permutation(chosen.num_rows)]
        all_ids = table["id"].to_numpy()
        base_id = int(all_ids.max()) + 1 if all_ids.size else 0
        if base_id > np.iinfo(np.int64).max - n_lenses:
            raise SimulationError(f"{store}: ids reach the int64 limit; no room for new lens ids")
        plan = InjectionPlan(
            store=store,
            imaging=imaging,
            deflectors=tuple(deflector_from_row(chosen, i, info.bands) for i in picked),
            mags={
                int(chosen["id"][i].as_py()): {
                    b: float(chosen[f"mag_{b}"][i].as_py()) for b in info.bands
                }
                for i in picked
            },
            seed=seed,
            base_id=base_id,
            criteria=criteria,
            prior=prior or InjectionPrior(),
            relation=relation or FaberJackson(),
            noise=noise,
        )
        out.mkdir(parents=True, exist_ok=True)
        create_store(target, **store_attributes(info), overwrite=True)
        chunks = [
            (target, f"injected-{c:06d}", range(start, min(n_lenses, start + chunk_size)))
            for c, start in enumerate(range(0, n_lenses, chunk_size))
        ]
        task = bar.add_task(f"injecting {n_lenses} lenses", total=n_lenses)
        lens_rows: list[Row] = []
        for rows in _run(client, inject_chunk, chunks, plan=plan):
            lens_rows += rows
            bar.advance(task, len(rows))
        used = sorted({int(r["deflector_id"]) for r in lens_rows}) if drop_deflectors else []
        task = bar.add_task(f"copying {len(groups)} groups", total=len(groups))
        kept: list[int] = []
        for part_ids in _run(client, copy_group, [(store, target, g) for g in groups], drop=used):
            kept += part_ids
            bar.advance(task)
    write_labels(
        label_path,
        lens_rows + non_lens_rows(table, kept, info.bands),
        schema=injection_schema(info.bands),
    )
    photometry = "labels" if catalog is not None and "mag_r" in catalog.column_names else "aperture"
    record: dict[str, Any] = {
        "seed": seed,
        "source_store": str(store.resolve()),
        "where": where,
        "n_requested": n_lenses,
        "n_lenses": len(lens_rows),
        "n_deflectors": len(plan.deflectors),
        "photometry": photometry,
        "gain": imaging.gain_from,
        "psf_model": psf_model,
        "noise": noise,
        "drop_deflectors": drop_deflectors,
    }
    zarr.open_group(str(target), mode="r+").attrs["injection"] = record
    logger.info("injection set: %s -> %s", record, out)
    return InjectionSet(
        target,
        label_path,
        len(lens_rows),
        len(kept),
        len(plan.deflectors),
        photometry,
        imaging.gain_from,
    )


__all__ = [
    "DEFAULT_WHERE",
    "INJECT_PARAMS",
    "InjectionPlan",
    "InjectionSet",
    "check_inputs",
    "inject_chunk",
    "make_injection_set",
]
