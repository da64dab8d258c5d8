"""Load: one 2,000,000-row partition scanned by one worker held to a 1 GiB memory limit.

The partition is a real HATS layout (order 0, one leaf of 250,000-row row groups) with the
LSST column map; positions are drawn uniformly inside the pixel. Only a few hundred bright
galaxies pass the cut; the photometry gate's survivors get cutouts, all but every third, so
the funnel's counts (rows read, after cuts, after the gate, missing cutouts, candidates) are
each checked against a reference computed here with pyarrow.compute and plain ONNX Runtime.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from cdshealpix.nested import healpix_to_lonlat

from lensflow.catalog import inside_pixel
from lensflow.cluster import connect
from lensflow.config import ScanConfig
from lensflow.cutouts import create_store, partition_group, write_group
from lensflow.layout import healpix_29, leaf_path, write_catalog_metadata
from lensflow.photometry import photometry_features
from lensflow.registry import default_manifest_path, load_manifest
from lensflow.scan import run_scan
from lensflow.scan.state import Marker, read_markers
from lensflow.sky import HealpixPixel
from lensflow.surveys import survey_profile
from lensflow.testing import onnx_reference

pytestmark = pytest.mark.load

ROWS = 2_000_000
BRIGHT = 800  # galaxies bright enough for the cut; the rest are fainter than r = 23
PIXEL = HealpixPixel(0, 4)
MEMORY_LIMIT = "1GiB"
CUT = "rKronMag < 22.5 and rPSFMag - rKronMag > 0.05 and not isnan(gKronMag) and qualityFlag == 0"


def _reference_cut(table: pa.Table) -> pa.Table:
    """The scan's cut written directly in pyarrow.compute."""
    g, r, psf_r = (pc.field(c) for c in ("gKronMag", "rKronMag", "rPSFMag"))
    expression = (
        (r < 22.5) & (pc.subtract(psf_r, r) > 0.05) & ~pc.is_nan(g) & (pc.field("qualityFlag") == 0)
    )
    return table.filter(expression)


def _catalog_table(rng: np.random.Generator, rows: int = ROWS) -> pa.Table:
    """`rows` sources inside PIXEL, sorted by _healpix_29, under the LSST survey's column names."""
    cells = 4 ** (29 - PIXEL.order)
    drawn = PIXEL.pixel * cells + rng.integers(0, cells, rows, dtype=np.int64)
    lon, lat = healpix_to_lonlat(drawn.astype(np.uint64), 29)
    ra, dec = np.asarray(lon.deg, np.float64), np.asarray(lat.deg, np.float64)
    r = rng.uniform(23.0, 27.0, rows)
    bright = rng.choice(rows, BRIGHT, replace=False)
    r[bright] = rng.uniform(18.5, 22.5, BRIGHT)
    colours = {"g": rng.uniform(0.3, 2.0, rows), "i": -rng.uniform(0.2, 0.8, rows)}
    mags = {"g": r + colours["g"], "r": r, "i": r + colours["i"]}
    mags["z"] = mags["i"] - rng.uniform(0.1, 0.5, rows)
    mags["g"][bright[:40]] = np.nan  # not measured in g: the cut's isnan() drops them
    psf_minus_model = rng.uniform(0.0, 1.5, rows)  # below 0.05: point-like, cut
    size = rng.uniform(0.2, 2.0, rows)
    flags = np.zeros(rows, np.int16)
    flags[bright[40:80]] = 1  # flagged: cut
    columns: dict[str, np.ndarray] = {
        "objID": (np.int64(1) << 58) + np.arange(rows, dtype=np.int64),
        "raStack": ra,
        "decStack": dec,
    }
    for band in "griz":
        columns[f"{band}KronMag"] = mags[band].astype(np.float32)
        columns[f"{band}KronMagErr"] = np.full(rows, 0.05, np.float32)
        columns[f"{band}PSFMag"] = (mags[band] + psf_minus_model).astype(np.float32)
        columns[f"{band}MomentRadius"] = size.astype(np.float32)
    columns["extendedness"] = (psf_minus_model > 0.05).astype(np.float32)
    columns["qualityFlag"] = flags
    columns["_healpix_29"] = healpix_29(ra, dec)
    table = pa.table(columns)
    return table.take(pc.sort_indices(table["_healpix_29"]))


@dataclass(frozen=True)
class LargePixel:
    """The scanned partition: the scan's marker and the worker, with the reference counts."""

    marker: Marker
    failed: int
    rows_after_cuts: int
    rows_after_photometry: int
    with_cutouts: int
    imaged_ids: list[int]
    candidate_ids: list[int]  # the rows of the partition's candidate file
    worker_pids: tuple[list[int], list[int]]  # before and after the scan
    peak_rss_bytes: int


def _peak_rss() -> int:
    """This process's peak resident memory in bytes: VmHWM, the high-water mark of its own
    address space (getrusage's ru_maxrss would count the forking parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


@pytest.fixture(scope="module")
def large_pixel(tmp_path_factory: pytest.TempPathFactory) -> LargePixel:
    base = tmp_path_factory.mktemp("large_pixel")
    table = _catalog_table(np.random.default_rng(29))
    catalog = base / "catalog"
    leaf = leaf_path(catalog, PIXEL)
    leaf.parent.mkdir(parents=True)
    pq.write_table(table, leaf, row_group_size=250_000)
    write_catalog_metadata(
        catalog,
        name="large",
        pixels=[PIXEL],
        ra_column="raStack",
        dec_column="decStack",
        total_rows=ROWS,
    )
    del table

    cut = _reference_cut(pq.read_table(leaf))
    manifest = load_manifest(None)
    names = {"mag": "KronMag", "psfmag": "PSFMag", "size": "MomentRadius"}
    values = {}
    for feature in manifest.photometry.features:
        kind, band = feature.split("_")
        values[feature] = cut[f"{band}{names[kind]}"].to_numpy().astype(np.float32)
    features = photometry_features(values, manifest.photometry.features)
    model = default_manifest_path().parent / manifest.photometry.file
    gated = cut["objID"].to_numpy()[
        onnx_reference(model, features) >= manifest.photometry.threshold
    ]
    imaged = np.sort(np.delete(gated, np.s_[::3]))  # every third survivor has no cutout

    survey = survey_profile("lsst")
    store = base / "cutouts.zarr"
    create_store(store, **survey.store_attributes())
    size = survey.cutout_size
    images = np.random.default_rng(1).normal(0.0, 5.0, (imaged.size, len(survey.bands), size, size))
    write_group(store, partition_group(PIXEL), ids=imaged, images=images.astype(np.float32))

    bands = survey.catalog_bands
    columns = {"id": "objID", "ra": "raStack", "dec": "decStack"}
    for kind, template in [("mag", "KronMag"), ("magerr", "KronMagErr"), ("psfmag", "PSFMag")]:
        columns |= {f"{kind}_{b}": f"{b}{template}" for b in bands}
    columns |= {f"size_{b}": f"{b}MomentRadius" for b in bands}
    columns |= {"extendedness": "extendedness", "flags": "qualityFlag"}
    config = ScanConfig.model_validate(
        {
            "catalog": {"path": catalog, "columns": columns},
            "cuts": {"expression": CUT},
            "cutouts": {"path": store},
            "output": {"path": base / "scan"},
            "cluster": {
                "n_workers": 1,
                "threads_per_worker": 1,
                "memory_limit": MEMORY_LIMIT,
                "dashboard": False,
                "allowed_failures": 0,  # a worker killed for memory fails the pixel
            },
        }
    )
    with connect(config.cluster) as client:
        before = sorted(client.run(os.getpid).values())
        outcome = run_scan(config, client=client)
        after = sorted(client.run(os.getpid).values())
        [peak] = client.run(_peak_rss).values()
    [marker] = read_markers(config.output.path)
    written = pq.read_table(config.output.path / str(marker.output))
    return LargePixel(
        marker=marker,
        failed=outcome.failed,
        rows_after_cuts=cut.num_rows,
        rows_after_photometry=int(gated.size),
        with_cutouts=int(imaged.size),
        imaged_ids=imaged.tolist(),
        candidate_ids=sorted(written["id"].to_pylist()),
        worker_pids=(before, after),
        peak_rss_bytes=int(peak),
    )


def test_catalog_rows_lie_inside_their_pixel() -> None:
    """The generator's positions are inside the pixel by coordinates, as the scan checks."""
    table = _catalog_table(np.random.default_rng(3), rows=100_000)
    ra, dec = table["raStack"].to_numpy(), table["decStack"].to_numpy()
    assert inside_pixel(ra, dec, PIXEL).all()


def test_large_pixel_is_done_by_one_worker_under_the_limit(large_pixel: LargePixel) -> None:
    marker = large_pixel.marker
    assert large_pixel.failed == 0
    assert marker.status == "done", marker.error
    assert marker.attempts == 1
    before, after = large_pixel.worker_pids
    assert len(before) == 1 and before == after, "the worker was restarted (killed for memory?)"
    if sys.platform == "linux":  # VmHWM: the worker's own peak, below the nanny's 95 % line
        assert 0 < large_pixel.peak_rss_bytes < 0.95 * 2**30, large_pixel.peak_rss_bytes


def test_large_pixel_funnel_counts_match_the_reference(large_pixel: LargePixel) -> None:
    marker = large_pixel.marker
    assert marker.rows_read == ROWS
    assert 300 <= large_pixel.rows_after_cuts <= BRIGHT
    assert marker.rows_after_cuts == large_pixel.rows_after_cuts
    assert large_pixel.rows_after_photometry > 0
    assert marker.rows_after_photometry == large_pixel.rows_after_photometry
    missing = large_pixel.rows_after_photometry - large_pixel.with_cutouts
    assert missing > 0
    assert marker.rejected == {"missing_cutout": missing}
    assert large_pixel.candidate_ids == large_pixel.imaged_ids  # scored: those with cutouts
