"""Mock skies for the end-to-end and scaling benchmarks, made once and kept under work/.

`python -m benchmarks.skies 30000 300000 [--partitions 3000]` simulates the skies that are
missing (lensflow's mock-sky simulator, seed 42, lenses in the demo's proportion) and writes
the re-partitioned copies. The 150,000-source sky is the demo's (work/demo-seed42/sky), read
only. Each simulated sky records how long it took (simulated.json beside its scan.toml).
`python -m benchmarks.skies 1000000 --tiled --partitions 30 3000` instead lays copies of the
demo sky side by side (for cost scaling only: each copy repeats the demo's rows and cutouts).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import zarr
from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN, spatial_index_to_healpix

from lensflow.config import ScanConfig
from lensflow.cutouts import (
    create_store,
    list_groups,
    open_store,
    partition_group,
    read_cutouts,
    write_group,
)
from lensflow.layout import healpix_29, leaf_path, write_catalog_metadata
from lensflow.sky import HealpixPixel

ROOT = Path(__file__).resolve().parents[1]
SKIES = ROOT / "work" / "bench-skies"
DEMO_SKY = ROOT / "work" / "demo-seed42" / "sky"
DEMO_SOURCES = 150_000
DEMO_LENSES = 100
SEED = 42
HISTOGRAM_ORDER = 10
"""Finest order of the re-partitioning (order-10 pixels hold ~12 arcmin^2)."""
ID_OFFSET = 1 << 60  # the mock sky's ids start there
COPY_SHIFT = 41  # a tiled copy's ids: j << 41 above the originals (which are below 2**40)
TILE_STEP_DEG = 6.0  # RA between tiled copies of the ~5 degree field


def sky_folder(n_sources: int) -> Path:
    """Where the n-source sky lives (the demo's for 150,000)."""
    return DEMO_SKY if n_sources == DEMO_SOURCES else SKIES / f"sky-{n_sources}"


def simulated_sky(n_sources: int, *, workers: int = 2) -> Path:
    """The folder of an n-source mock sky (its scan.toml inside), simulated when missing."""
    folder = sky_folder(n_sources)
    if (folder / "scan.toml").is_file():
        return folder
    from lensflow.simulate.mock_sky import make_mock_sky

    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    lenses = max(1, round(n_sources * DEMO_LENSES / DEMO_SOURCES))
    load = os.getloadavg()
    start = time.perf_counter()
    sky = make_mock_sky(folder, n_sources=n_sources, n_lenses=lenses, seed=SEED, workers=workers)
    record = {
        "sources": n_sources,
        "lenses": lenses,
        "seed": SEED,
        "partitions": len(sky.pixels),
        "seconds": round(time.perf_counter() - start, 1),
        "workers": workers,
        "load_before": [round(x, 2) for x in load],
        "load_after": [round(x, 2) for x in os.getloadavg()],
    }
    (folder / "simulated.json").write_text(json.dumps(record, indent=1))
    return folder


def _partitioning(fine: np.ndarray, threshold: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, pixel) per row: each row in its lowest-order pixel holding <= threshold rows.

    `fine` is each row's pixel at HISTOGRAM_ORDER; a pixel never splits below that order (the
    rule hats-import's alignment follows, without its empty-sibling merging).
    """
    orders = np.full(fine.shape, HISTOGRAM_ORDER, dtype=np.int64)
    numbers = fine.astype(np.int64)
    open_rows = np.ones(fine.shape, dtype=bool)
    for order in range(HISTOGRAM_ORDER + 1):
        ancestor = fine >> (2 * (HISTOGRAM_ORDER - order))
        _, inverse, counts = np.unique(ancestor, return_inverse=True, return_counts=True)
        settle = open_rows & (counts[inverse] <= threshold)
        orders[settle], numbers[settle] = order, ancestor[settle]
        open_rows &= ~settle
    return orders, numbers


def _alignment(fine: np.ndarray, target: int) -> tuple[np.ndarray, np.ndarray]:
    """The partitioning whose number of partitions is nearest `target` (threshold bisected)."""
    low, high = 1, int(fine.size)
    best: tuple[int, tuple[np.ndarray, np.ndarray]] | None = None
    while low <= high:
        threshold = (low + high) // 2
        orders, numbers = _partitioning(fine, threshold)
        count = np.unique(orders * (1 << 40) + numbers).size
        if best is None or abs(count - target) < abs(best[0] - target):
            best = (count, (orders, numbers))
        if count > target:
            low = threshold + 1
        else:
            high = threshold - 1
    assert best is not None
    return best[1]


def _read_catalog(config: ScanConfig) -> pa.Table:
    files = sorted((Path(config.catalog.path) / "dataset").rglob("Npix=*.parquet"))
    return pa.concat_tables([pq.ParquetFile(f).read() for f in files])


def repartitioned_sky(n_sources: int, *, partitions: int) -> Path:
    """A copy of the n-source sky's catalog and cutouts in ~`partitions` partitions (made once).

    The rows and cutouts are the same; only the partitioning differs, as hats-import would
    choose it for a smaller partition size. The copy's scan.toml is the sky's own.
    """
    folder = SKIES / f"sky-{n_sources}-p{partitions}"
    if (folder / "scan.toml").is_file():
        return folder
    sky = simulated_sky(n_sources)
    config = ScanConfig.from_toml(sky / "scan.toml")
    _write_sky(folder, _read_catalog(config), config, partitions=partitions)
    shutil.copy(sky / "scan.toml", folder / "scan.toml")
    return folder


def tiled_sky(n_sources: int, *, partitions: int) -> Path:
    """n sources made of copies of the demo sky side by side in RA (made once).

    Copy j holds the demo's rows (the last copy a seeded subset) shifted by j x TILE_STEP_DEG
    in RA, with ids j x 2**41 above the originals and the originals' cutouts, so its scan does
    the demo's work again per row: a sky for cost scaling, not for science. ~`partitions`
    partitions.
    """
    folder = SKIES / f"tiled-{n_sources}-p{partitions}"
    if (folder / "scan.toml").is_file():
        return folder
    config = ScanConfig.from_toml(DEMO_SKY / "scan.toml")
    columns = config.catalog.columns
    demo = _read_catalog(config)
    rng = np.random.default_rng(SEED)
    copies = []
    for j in range(-(-n_sources // demo.num_rows)):
        take = min(demo.num_rows, n_sources - j * demo.num_rows)
        rows = np.sort(rng.choice(demo.num_rows, take, replace=False))
        part = demo.take(pa.array(rows)) if take < demo.num_rows else demo
        ra = (part[columns.ra].to_numpy() + j * TILE_STEP_DEG) % 360.0
        dec = part[columns.dec].to_numpy()
        ids = part[columns.id].to_numpy() + (j << COPY_SHIFT)
        for name, values in (
            (columns.ra, ra),
            (columns.dec, dec),
            (columns.id, ids),
            (SPATIAL_INDEX_COLUMN, healpix_29(ra, dec)),
        ):
            index = part.schema.get_field_index(name)
            part = part.set_column(
                index, name, pa.array(values, type=part.schema.field(index).type)
            )
        copies.append(part)
    _write_sky(folder, pa.concat_tables(copies), config, partitions=partitions)
    shutil.copy(DEMO_SKY / "scan.toml", folder / "scan.toml")
    return folder


def _write_sky(folder: Path, table: pa.Table, config: ScanConfig, *, partitions: int) -> None:
    """Partition `table` into ~`partitions` HATS partitions under folder, with its cutouts."""
    shutil.rmtree(folder, ignore_errors=True)
    columns = config.catalog.columns
    table = table.sort_by(SPATIAL_INDEX_COLUMN)
    index = table[SPATIAL_INDEX_COLUMN].to_numpy()
    fine = spatial_index_to_healpix(index, target_order=HISTOGRAM_ORDER)
    orders, numbers = _alignment(fine, partitions)
    catalog = folder / "catalog"
    pixels: list[HealpixPixel] = []
    members: dict[HealpixPixel, np.ndarray] = {}
    key = orders * (1 << 40) + numbers  # rows sorted by index: each partition is one run
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]])
    for start, stop in zip(starts, [*starts[1:], key.size], strict=True):
        pixel = HealpixPixel(int(orders[start]), int(numbers[start]))
        part = table.slice(start, stop - start)
        path = leaf_path(catalog, pixel)
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(part, path)
        pixels.append(pixel)
        members[pixel] = part[columns.id].to_numpy()
    write_catalog_metadata(
        catalog,
        name=folder.name,
        pixels=pixels,
        ra_column=columns.ra,
        dec_column=columns.dec,
        total_rows=table.num_rows,
    )
    _copy_cutouts(config.cutouts.path, folder / "cutouts.zarr", members)


def _copy_cutouts(source: Path, target: Path, members: dict[HealpixPixel, np.ndarray]) -> None:
    """Write each new partition's cutouts, read from whichever source groups hold them.

    An id j x 2**41 above a source id (a tiled copy) gets that source id's cutout.
    """
    info = open_store(source)
    create_store(
        target,
        bands=info.bands,
        pixel_scale_arcsec=info.pixel_scale_arcsec,
        psf_fwhm_arcsec=info.psf_fwhm_arcsec,
        cutout_size=info.cutout_size,
    )
    root: Any = zarr.open_group(str(source), mode="r")
    group_of: dict[int, str] = {}
    for group in list_groups(source):
        group_of.update(dict.fromkeys(np.asarray(root[group]["ids"][:]).tolist(), group))
    for pixel, ids in members.items():
        copy = (ids - ID_OFFSET) >> COPY_SHIFT
        wanted: dict[tuple[int, str], list[int]] = defaultdict(list)
        for j, i in zip(copy.tolist(), ids.tolist(), strict=True):
            original = i - (j << COPY_SHIFT)
            if original in group_of:
                wanted[j, group_of[original]].append(original)
        if not wanted:
            continue
        found_ids, images = [], []
        for (j, group), originals in wanted.items():
            read = read_cutouts(source, group, np.array(originals, dtype=np.int64))
            found_ids.append(read.ids + (j << COPY_SHIFT))
            images.append(read.images)
        write_group(
            target,
            partition_group(pixel),
            ids=np.concatenate(found_ids),
            images=np.concatenate(images),
        )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sources", type=int, nargs="+")
    parser.add_argument("--partitions", type=int, nargs="*", default=[])
    parser.add_argument("--tiled", action="store_true", help="tiled copies of the demo sky")
    args = parser.parse_args(argv)
    if args.tiled:
        for n in args.sources:
            for p in args.partitions:
                start = time.perf_counter()
                sky = tiled_sky(n, partitions=p)
                print(
                    f"{n:,} tiled, ~{p:,} partitions: {sky} ({time.perf_counter() - start:.0f} s)"
                )
        return
    for n in args.sources:
        start = time.perf_counter()
        sky = simulated_sky(n)
        print(f"{n:,} sources: {sky} ({time.perf_counter() - start:.0f} s)", flush=True)
        for p in args.partitions:
            start = time.perf_counter()
            copy = repartitioned_sky(n, partitions=p)
            print(f"  ~{p:,} partitions: {copy} ({time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
