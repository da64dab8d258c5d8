"""A mock sky of a survey profile: a HATS catalog, its Zarr cutouts, the lens truth, a scan config.

The profile (default lsst, the LSST-like mock survey) gives the image and catalog bands, the
catalog's own column names, the cutout store's attributes and the scan config's column map and
cut. Sources fill a ~5 degree field with clustered positions (so partitions come at mixed
orders), magnitudes from number-count laws, classes from the sky's natural mix, and `n_lenses`
lens systems. Catalog photometry is measured from the same scenes the cutouts show, and their
morphology (PSF magnitudes, sizes, extendedness) on those scenes' pixels. The imaging
store holds cutouts of galaxies (and of whatever the catalog measures as extended) brighter than
`cutout_mag_limit` (r) and of every lens, as a survey's cutout service covers its galaxy sample; a scan counts any row without a cutout. With
`tiles`, a compact field's coadd patches (tiles.py) take the store's place.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import tomli_w
from hats.pixel_math import partition_stats
from hats.pixel_math.spatial_index import SPATIAL_INDEX_COLUMN, spatial_index_to_healpix

from lensflow.cutouts import create_store, partition_group, write_group
from lensflow.errors import SimulationError
from lensflow.io import write_parquet
from lensflow.layout import healpix_29, leaf_path, write_catalog_metadata
from lensflow.registry import default_manifest_path
from lensflow.simulate import tiles as mock_tiles
from lensflow.sky import HealpixPixel
from lensflow.surveys import BAND_TEMPLATES, Survey, survey_profile

if TYPE_CHECKING:
    from distributed import Client

    from lensflow.simulate.scene import Scene

logger = logging.getLogger(__name__)

FIELD_CENTRE_DEG = (150.0, 2.0)
FIELD_RADIUS_DEG = 2.5
ID_OFFSET = 1 << 60
"""Ids start above 2**53, so an id that passed through float64 would show it."""


class MockSky(NamedTuple):
    root: Path
    catalog: Path
    cutouts: Path
    truth: Path
    config: Path
    pixels: list[HealpixPixel]
    lens_ids: np.ndarray


def _positions(
    rng: np.random.Generator, n: int, radius: float = FIELD_RADIUS_DEG
) -> tuple[np.ndarray, np.ndarray]:
    """Clustered positions within `radius` deg: half uniform, half in a few Gaussian clumps."""
    ra0, dec0 = FIELD_CENTRE_DEG
    n_clumped = n // 2
    centres = rng.uniform(-0.7, 0.7, size=(6, 2)) * radius
    widths = rng.uniform(0.05, 0.3, size=6) * (radius / FIELD_RADIUS_DEG)
    which = rng.integers(0, 6, size=n_clumped)
    clumped = centres[which] + rng.normal(size=(n_clumped, 2)) * widths[which, None]
    r = radius * np.sqrt(rng.uniform(size=n - n_clumped))
    angle = rng.uniform(0, 2 * np.pi, size=n - n_clumped)
    uniform = np.stack([r * np.cos(angle), r * np.sin(angle)], axis=1)
    offsets = np.concatenate([clumped, uniform])
    dec = dec0 + offsets[:, 1]
    ra = (ra0 + offsets[:, 0] / np.cos(np.radians(dec))) % 360.0
    return ra, dec


def _magnitudes_r(rng: np.random.Generator, kinds: np.ndarray) -> np.ndarray:
    """r magnitudes from number counts: dN/dm ~ 10**(0.35 m) for galaxies, flatter for stars."""
    mags = np.empty(kinds.size)
    for slope, lo, hi, mask in (
        (0.35, 17.0, 25.5, kinds != "star"),
        (0.15, 15.5, 25.0, kinds == "star"),
    ):
        u = rng.uniform(size=int(mask.sum()))
        a, b = 10 ** (slope * lo), 10 ** (slope * hi)
        mags[mask] = np.log10(a + u * (b - a)) / slope
    return mags


def _source_scene(kind: str, mag_r: float, object_id: int, seed: int, survey: Survey) -> Scene:
    """A source's scene, seeded (seed, id); a lens keeps its own magnitude."""
    from lensflow.simulate import draw_scene

    r = None if kind == "lens" else float(mag_r)
    return draw_scene(str(kind), seed=(seed, int(object_id)), survey=survey, mag_r=r)


def _catalog_rows(
    kinds: np.ndarray, mags_r: np.ndarray, ids: np.ndarray, seed: int, survey: Survey
) -> pd.DataFrame:
    """Draw each source's scene and measure its catalog row (mag_, magerr_, psf_mag_, size_
    per catalog band, extendedness; `observe_catalog`)."""
    from lensflow.simulate.photometry import observe_catalog

    rows = []
    for kind, mag_r, object_id in zip(kinds, mags_r, ids, strict=True):
        scene = _source_scene(kind, mag_r, object_id, seed, survey)
        rng = np.random.default_rng((seed, int(object_id), 1))
        entry = observe_catalog(scene, rng=rng, survey=survey)
        row = {"kind": scene.kind, "is_lens": scene.is_lens, "size": scene.size_arcsec}
        for band in survey.catalog_bands:
            row[f"mag_{band}"] = entry.mags[band]
            row[f"magerr_{band}"] = entry.errors[band]
            row[f"psf_mag_{band}"] = entry.psf_mags[band]
            row[f"size_{band}"] = entry.sizes[band]
        row["extendedness"] = entry.extendedness
        row["extended"] = scene.extended
        row["true_mag_r"] = scene.mag["r"]
        row["params"] = dict(scene.params)
        rows.append(row)
    return pd.DataFrame(rows)


CATALOG_CHUNK = 1_000


def _simulate_catalog(
    client: Client,
    kinds: np.ndarray,
    mags_r: np.ndarray,
    ids: np.ndarray,
    seed: int,
    survey: Survey,
) -> pd.DataFrame:
    """Catalog rows of every source, in chunks of CATALOG_CHUNK run as Dask tasks."""
    from distributed import wait

    starts = range(0, ids.size, CATALOG_CHUNK)
    futures = [
        client.submit(
            _catalog_rows,
            kinds[a : a + CATALOG_CHUNK],
            mags_r[a : a + CATALOG_CHUNK],
            ids[a : a + CATALOG_CHUNK],
            seed,
            survey,
            key=f"mock-catalog-{survey.name}-{seed}-{a}",
            pure=False,
        )
        for a in starts
    ]
    wait(futures)
    parts: list[pd.DataFrame] = client.gather(futures)
    return pd.concat(parts, ignore_index=True)


def _render_partition(
    store: Path,
    group: str,
    ids: np.ndarray,
    kinds: np.ndarray,
    mags_r: np.ndarray,
    seed: int,
    survey: Survey,
) -> int:
    """Render and write one partition's cutouts (a Dask task)."""
    from lensflow.simulate import render_scene

    size = survey.cutout_size
    images = np.empty((ids.size, len(survey.bands), size, size), dtype=np.float32)
    for k, (object_id, kind, mag_r) in enumerate(zip(ids, kinds, mags_r, strict=True)):
        images[k] = render_scene(_source_scene(kind, mag_r, object_id, seed, survey), survey=survey)
    write_group(store, group, ids=ids, images=images)
    return int(ids.size)


def make_mock_sky(
    out: Path,
    *,
    n_sources: int,
    n_lenses: int,
    seed: int,
    cutout_mag_limit: float = 23.0,
    survey: Survey | None = None,
    workers: int | None = None,
    client: Client | None = None,
    tiles: bool = False,
) -> MockSky:
    """Write a mock sky under `out` (catalog/, cutouts.zarr, truth.parquet, scan.toml).

    survey: the profile (default: lsst). Catalog photometry and cutouts are simulated as Dask
    tasks, on `client` or on a local cluster of `workers` processes started for the purpose.
    tiles: instead of the Zarr store, coadd patches of one tract (coadds/, see tiles.py) of a
    field a few arcmin across, and a scan config whose [images] section names them.
    """
    from lensflow.simulate import NATURAL_MIX, check_survey

    survey = survey or survey_profile()
    check_survey(survey)
    if client is None:
        from lensflow.cluster import connect
        from lensflow.config import ClusterConfig

        with connect(ClusterConfig(n_workers=workers, dashboard=False)) as local:
            return make_mock_sky(
                out,
                n_sources=n_sources,
                n_lenses=n_lenses,
                seed=seed,
                cutout_mag_limit=cutout_mag_limit,
                survey=survey,
                client=local,
                tiles=tiles,
            )
    if n_sources <= 0 or not 0 <= n_lenses <= n_sources:
        raise SimulationError(
            f"need 0 <= lenses ({n_lenses}) <= sources ({n_sources}), sources > 0"
        )
    out = Path(out)
    catalog_dir, store, truth_path = out / "catalog", out / "cutouts.zarr", out / "truth.parquet"
    if catalog_dir.exists() or store.exists() or (out / mock_tiles.COADDS).exists():
        raise SimulationError(f"{out} already holds a mock sky; choose a new folder")
    rng = np.random.default_rng(seed)
    classes = np.array(list(NATURAL_MIX))
    weights = np.array(list(NATURAL_MIX.values()), dtype=float)
    kinds = rng.choice(classes, size=n_sources, p=weights / weights.sum()).astype(object)
    kinds[rng.choice(n_sources, size=n_lenses, replace=False)] = "lens"
    ids = ID_OFFSET + np.sort(rng.choice(1 << 40, size=n_sources, replace=False)).astype(np.int64)
    if tiles:
        ra, dec = _positions(rng, n_sources, radius=mock_tiles.field_radius_deg(n_sources))
        tract = mock_tiles.make_tract(ra, dec, centre=FIELD_CENTRE_DEG, survey=survey)
        ra, dec = mock_tiles.snap(tract, ra, dec)
    else:
        ra, dec = _positions(rng, n_sources)
    mags_r = _magnitudes_r(rng, kinds)

    rows = _simulate_catalog(client, kinds, mags_r, ids, seed, survey)
    frame = _catalog_frame(rows, ids, ra, dec, survey)
    frame[SPATIAL_INDEX_COLUMN] = healpix_29(ra, dec)
    pixels = _write_catalog(frame, catalog_dir, survey)

    if tiles:
        imaged = np.ones(n_sources, dtype=bool)
        sources = (kinds, mags_r, ids, ra, dec)
        mock_tiles.write_tiles(out, client, tract, _source_scene, sources, seed, survey)
    else:
        create_store(store, **survey.store_attributes())
        # the cutout service covers what the catalog calls extended (measured), and every galaxy
        extended = rows["extended"].to_numpy() | (rows["extendedness"].to_numpy() > 0)
        imaged = rows["is_lens"].to_numpy() | (
            extended & (rows["true_mag_r"].to_numpy() < cutout_mag_limit)
        )
        _render_cutouts(client, store, frame, kinds, mags_r, imaged, pixels, seed, survey)

    truth = pd.DataFrame(
        {
            "id": ids,
            "class": rows["kind"].astype(str),
            "is_lens": rows["is_lens"].astype(bool),
            "has_cutout": imaged,
            "true_mag_r": rows["true_mag_r"],
        }
    )
    params = pd.DataFrame(list(rows["params"])).add_prefix("lens_")
    truth = pd.concat([truth, params], axis=1)
    write_parquet(truth_path, pa.Table.from_pandas(truth, preserve_index=False))
    config_path = _write_config(out, survey, tiles=tiles)
    lens_ids = ids[rows["is_lens"].to_numpy()]
    logger.info(
        "mock sky: %d sources, %d lenses, %d cutouts", n_sources, lens_ids.size, int(imaged.sum())
    )
    return MockSky(out, catalog_dir, store, truth_path, config_path, pixels, lens_ids)


def _catalog_frame(
    rows: pd.DataFrame, ids: np.ndarray, ra: np.ndarray, dec: np.ndarray, survey: Survey
) -> pd.DataFrame:
    """The catalog's columns under the survey's own names: id, ra, dec, then per band the
    magnitudes, their errors, the PSF magnitudes and the sizes, then the measured extendedness
    and a flag (set for sources brighter than r = 16.5, as a survey flags saturated ones)."""
    names, bands = survey.columns, survey.catalog_bands
    per_band = {
        names.band(template, b): rows[f"{template}_{b}"].to_numpy()
        for template in BAND_TEMPLATES
        for b in bands
    }
    return pd.DataFrame(
        {
            names.id: ids,
            names.ra: ra,
            names.dec: dec,
            **per_band,
            names.extendedness: rows["extendedness"].to_numpy().astype(np.float32),
            names.flags: np.where(rows["mag_r"].to_numpy() < 16.5, 1, 0).astype(np.int16),
        }
    )


def _write_catalog(frame: pd.DataFrame, root: Path, survey: Survey) -> list[HealpixPixel]:
    """Partition rows at mixed orders as hats-import would and write the HATS layout."""
    highest = 9
    ra_column, dec_column = survey.columns.ra, survey.columns.dec
    histogram = partition_stats.generate_histogram(
        frame, highest_order=highest, ra_column=ra_column, dec_column=dec_column
    )
    threshold = max(200, len(frame) // 10, int(histogram.max()))
    alignment = partition_stats.generate_alignment(
        histogram,
        highest_order=highest,
        lowest_order=2,
        threshold=threshold,
        drop_empty_siblings=True,
    )
    fine = spatial_index_to_healpix(frame[SPATIAL_INDEX_COLUMN].to_numpy(), target_order=highest)
    destination = [alignment[p] for p in fine]
    frame = frame.assign(
        _order=[d[0] for d in destination], _pixel=[d[1] for d in destination]
    ).sort_values(SPATIAL_INDEX_COLUMN)
    pixels = []
    for (order, number), part in frame.groupby(["_order", "_pixel"], sort=True):
        pixel = HealpixPixel(int(order), int(number))  # type: ignore[call-overload]
        table = pa.Table.from_pandas(part.drop(columns=["_order", "_pixel"]), preserve_index=False)
        write_parquet(leaf_path(root, pixel), table)
        pixels.append(pixel)
    write_catalog_metadata(
        root,
        name="mock_sky",
        pixels=pixels,
        ra_column=ra_column,
        dec_column=dec_column,
        total_rows=len(frame),
    )
    return pixels


def _render_cutouts(
    client: Client,
    store: Path,
    frame: pd.DataFrame,
    kinds: np.ndarray,
    mags_r: np.ndarray,
    imaged: np.ndarray,
    pixels: list[HealpixPixel],
    seed: int,
    survey: Survey,
) -> None:
    """Render every partition's cutouts as one Dask task each."""
    index = frame[SPATIAL_INDEX_COLUMN].to_numpy()
    ids_all = frame[survey.columns.id].to_numpy()
    jobs = []
    for pixel in pixels:
        in_pixel = spatial_index_to_healpix(index, target_order=pixel.order) == pixel.pixel
        rows = np.flatnonzero(in_pixel & imaged)
        jobs.append((partition_group(pixel), ids_all[rows], kinds[rows], mags_r[rows]))
    _submit_renders(client, store, jobs, seed, survey)


def _submit_renders(
    client: Client,
    store: Path,
    jobs: list[tuple[str, np.ndarray, np.ndarray, np.ndarray]],
    seed: int,
    survey: Survey,
) -> None:
    from distributed import as_completed
    from rich.progress import Progress

    futures = [
        client.submit(
            _render_partition,
            store,
            group,
            ids,
            kinds,
            mags,
            seed,
            survey,
            key=f"render-{survey.name}-{group}",
            pure=False,
        )
        for group, ids, kinds, mags in jobs
    ]
    with Progress(transient=True) as bar:
        task = bar.add_task("rendering cutouts", total=sum(j[1].size for j in jobs))
        for future in as_completed(futures):
            bar.advance(task, future.result())


def _write_config(out: Path, survey: Survey, *, tiles: bool = False) -> Path:
    """The scan config for this sky, with the catalog's own column names: extended galaxies
    brighter than r = 22.5, measured in the first catalog band, not flagged; with `tiles`, an
    [images] section naming the patches; [models] where models/<survey>/ holds the survey's."""
    names, bands = survey.columns, survey.catalog_bands
    mag_r, psf_r = names.band("mag", "r"), names.band("psf_mag", "r")
    config = {
        "catalog": {
            "path": "catalog",
            "columns": {
                "id": names.id,
                "ra": names.ra,
                "dec": names.dec,
                **{f"mag_{b}": names.band("mag", b) for b in bands},
                **{f"magerr_{b}": names.band("magerr", b) for b in bands},
                **{f"psfmag_{b}": names.band("psf_mag", b) for b in bands},
                **{f"size_{b}": names.band("size", b) for b in bands},
                "extendedness": names.extendedness,
                "flags": names.flags,
            },
        },
        "cuts": {
            "expression": f"{mag_r} < 22.5 and {psf_r} - {mag_r} > 0.05 and "
            f"not isnan({names.band('mag', bands[0])}) and {names.flags} == 0",
        },
        "cutouts": {"path": "cutouts.zarr"},
        "output": {"path": "scan"},
    }
    if tiles:
        config["images"] = mock_tiles.images_section(survey)
    models = default_manifest_path().parent / survey.name / "manifest.toml"
    if models.is_file():
        config["models"] = {"manifest": str(models.resolve())}
    path = out / "scan.toml"
    path.write_text(tomli_w.dumps(config))
    return path
