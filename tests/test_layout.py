"""The HATS layout lensflow writes: the spatial index, leaf paths, metadata hats and lsdb read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from hats.pixel_math.healpix_shim import radec2pix
from hats.pixel_math.spatial_index import compute_spatial_index, spatial_index_to_healpix

from lensflow.catalog import open_catalog, read_partition
from lensflow.io import write_parquet
from lensflow.layout import healpix_29, leaf_path, write_catalog_metadata
from lensflow.sky import HealpixPixel


def _positions(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Positions over the whole sphere, poles and RA wrap included (deg)."""
    rng = np.random.default_rng(seed)
    ra = np.concatenate([rng.uniform(0.0, 360.0, n), [0.0, 359.999999, 180.0, 45.0]])
    dec = np.concatenate(
        [np.degrees(np.arcsin(rng.uniform(-1.0, 1.0, n))), [0.0, -89.9999, 90.0, -90.0]]
    )
    return ra, dec


def test_healpix_29_is_hats_spatial_index() -> None:
    ra, dec = _positions(2_000, seed=0)
    index = healpix_29(ra, dec)
    assert index.dtype == np.int64 and index.shape == ra.shape
    np.testing.assert_array_equal(index, compute_spatial_index(ra, dec))
    np.testing.assert_array_equal(index, radec2pix(29, ra, dec))
    for order in (0, 3, 9):
        np.testing.assert_array_equal(
            spatial_index_to_healpix(index, target_order=order), radec2pix(order, ra, dec)
        )
        np.testing.assert_array_equal(index >> (2 * (29 - order)), radec2pix(order, ra, dec))


@pytest.mark.parametrize(
    ("order", "pixel", "folder"),
    [(0, 11, 0), (5, 9_999, 0), (5, 12_345, 10_000), (9, 3_000_000, 3_000_000)],
)
def test_leaf_path_is_norder_dir_npix(order: int, pixel: int, folder: int) -> None:
    root = Path("/surveys/catalog")
    assert leaf_path(root, HealpixPixel(order, pixel)) == (
        root / "dataset" / f"Norder={order}" / f"Dir={folder}" / f"Npix={pixel}.parquet"
    )


def test_a_written_catalog_opens_in_hats_lsdb_and_lensflow(tmp_path: Path) -> None:
    ra, dec = _positions(1_000, seed=1)
    index = healpix_29(ra, dec)
    ids = np.arange(ra.size, dtype=np.int64) + (1 << 55)
    owner = spatial_index_to_healpix(index, target_order=1)
    pixels = [HealpixPixel(1, int(p)) for p in np.unique(owner)]
    root = tmp_path / "catalog"
    for pixel in pixels:
        rows = np.flatnonzero(owner == pixel.pixel)
        rows = rows[np.argsort(index[rows])]
        table = pa.table(
            {"id": ids[rows], "ra": ra[rows], "dec": dec[rows], "_healpix_29": index[rows]}
        )
        write_parquet(leaf_path(root, pixel), table)
    total = write_catalog_metadata(
        root, name="written", pixels=pixels, ra_column="ra", dec_column="dec"
    )
    assert total == ra.size, "no total given: the leaves' rows, counted from their footers"

    import hats

    opened = hats.read_hats(root)
    assert sorted(opened.get_healpix_pixels()) == sorted(pixels)
    assert opened.catalog_info.total_rows == ra.size
    assert opened.catalog_info.catalog_name == "written"
    assert (root / "dataset" / "_metadata").is_file()
    catalog = open_catalog(root)
    read = [read_partition(p, catalog=catalog, columns=["id"]) for p in catalog.pixels]
    assert sum(r.rows_read for r in read) == ra.size
    lsdb = pytest.importorskip("lsdb")
    frame = lsdb.read_hats(root).compute()
    assert sorted(frame["id"].tolist()) == ids.tolist()
