"""Stamps: exact copies inside a tile and across a tract's patches, resampling across bricks,
and every row that cannot be cut reported by id and reason."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from astropy.io import fits

from lensflow.config import ImagesConfig
from lensflow.images import REASONS, Stamps, cut_stamps, tile_index
from lensflow.units import unit_factor
from tests.images import Tract, write_bricks, write_tract


def _cut(
    tract_or_folder: Tract | Path, gx: list[float], gy: list[float], tmp: Path, **changes: object
) -> tuple[Stamps, np.ndarray]:
    """Cut stamps at tract pixels (gx, gy); ids are 100 + row number."""
    assert isinstance(tract_or_folder, Tract)
    tract = tract_or_folder
    raw = {"tiles": str(tract.folder / "calexp-{band}-*.fits.fz"), "bands": ["g", "r"], "size": 16}
    config = ImagesConfig.model_validate({**raw, **changes})
    index = tile_index(config, path=tmp / "tiles.parquet")
    ra, dec = tract.wcs.pixel_to_world_values(np.array(gx), np.array(gy))
    ids = np.arange(100, 100 + len(gx), dtype=np.int64)
    return cut_stamps(ids, ra, dec, index=index, config=config), ids


def _tract_window(tract: Tract, band: str, gx: float, gy: float, size: int) -> np.ndarray:
    ix, iy = int(np.floor(gx + 0.5)), int(np.floor(gy + 0.5))
    y0, x0 = iy - size // 2, ix - size // 2
    return tract.pixels[band][y0 : y0 + size, x0 : x0 + size]


def test_interior_stamp_equals_the_tile_times_the_unit(tmp_path: Path) -> None:
    tract = write_tract(tmp_path / "tract")
    stamps, ids = _cut(tract, [30.2, 50.6], [33.7, 20.4], tmp_path, unit="nanomaggy")
    assert stamps.ids.tolist() == ids.tolist()
    assert stamps.images.shape == (2, 2, 16, 16) and stamps.images.dtype == np.float32
    with fits.open(tract.file("r", 0, 0)) as hdul:
        tile = hdul["IMAGE"].data
    expected = (tile[34 - 8 : 34 + 8, 30 - 8 : 30 + 8].astype(np.float64) * 3631.0).astype(
        np.float32
    )
    np.testing.assert_array_equal(stamps.images[0, 1], expected)
    assert unit_factor("nanomaggy") == 3631.0


@pytest.mark.parametrize(
    ("size", "layout"), [(16, "rows"), (15, "rows"), (16, "blocks"), (15, "plain")]
)
def test_stamp_across_patches_is_stitched_exactly(tmp_path: Path, size: int, layout: str) -> None:
    tract = write_tract(tmp_path / "tract", layout=layout)
    # the four-patch corner (patches overlap at tract x, y 70-79): no patch holds these stamps
    gx, gy = [75.3, 68.8, 81.0], [74.6, 40.2, 77.9]
    stamps, ids = _cut(tract, gx, gy, tmp_path, size=size)
    assert stamps.ids.tolist() == ids.tolist()
    for k in range(len(gx)):
        for b, band in enumerate(["g", "r"]):
            np.testing.assert_array_equal(
                stamps.images[k, b], _tract_window(tract, band, gx[k], gy[k], size)
            )


def test_resampled_stamp_across_bricks_keeps_flux_and_centroid(tmp_path: Path) -> None:
    side, flux = 120, 1000.0
    ra0, dec0 = 210.0, 50.0
    probe = write_bricks(tmp_path / "probe", [], side=side, centre=(ra0, dec0))
    east = probe.wcs[0]
    # sources 3-8 px beyond the east brick's edge (x = 119.5), rows 4-8 px inside it
    source_xy = [(side - 0.5 + 3.3, 20.2), (side - 0.5 + 5.7, 60.7), (side - 0.5 + 7.4, 99.6)]
    row_xy = [(side - 8.2, 21.4), (side - 6.4, 59.9), (side - 4.3, 100.3)]
    sources = [tuple(east.pixel_to_world_values(x, y)) for x, y in source_xy]
    bricks = write_bricks(tmp_path / "bricks", sources, side=side, centre=(ra0, dec0), flux=flux)
    config = ImagesConfig(
        tiles=str(tmp_path / "bricks" / "brick-*-image-{band}.fits.fz"), bands=["g"], size=33
    )
    index = tile_index(config, path=tmp_path / "tiles.parquet")
    assert len(set(index.projection)) == 2
    ra, dec = east.pixel_to_world_values(*np.array(row_xy).T)
    stamps = cut_stamps(np.arange(3), ra, dec, index=index, config=config)
    assert stamps.ids.tolist() == [0, 1, 2]
    yy, xx = np.indices((33, 33))
    for k, ((sx, sy), (rx, ry)) in enumerate(zip(source_xy, row_xy, strict=True)):
        image = stamps.images[k, 0].astype(np.float64)
        x0, y0 = np.floor(rx + 0.5) - 16, np.floor(ry + 0.5) - 16
        total = image.sum()
        cx, cy = (image * xx).sum() / total, (image * yy).sum() / total
        assert abs(total / flux - 1) < 0.01
        assert np.hypot(cx - (sx - x0), cy - (sy - y0)) < 0.1
        # the part inside the east brick is its own pixels, untouched
        inside = int(side - x0)
        with fits.open(bricks.files["g"][0]) as hdul:
            tile = hdul[1].data[int(y0) : int(y0) + 33, int(x0) : side]
        np.testing.assert_array_equal(stamps.images[k, 0][:, :inside], tile)


def test_rows_that_cannot_be_cut_are_reported_by_id(tmp_path: Path) -> None:
    tract = write_tract(tmp_path / "tract", masked=((40, 40, 4),), nan=((100, 30),))
    gx = [30.0, 2.0, 400.0, 45.2, 101.0, 60.0]
    gy = [30.0, 50.0, 20.0, 44.8, 33.0, 100.0]
    stamps, _ = _cut(tract, gx, gy, tmp_path)
    ra, dec = tract.wcs.pixel_to_world_values(np.array(gx), np.array(gy))
    assert set(stamps.rejected) == set(REASONS)
    assert stamps.ids.tolist() == [100, 105]
    got = {reason: ids.tolist() for reason, ids in stamps.rejected.items() if ids.size}
    assert got == {"edge": [101], "no_coverage": [102], "masked": [103], "non_finite": [104]}
    # a bit that is not counted leaves the row alone; a NaN position is bad coordinates
    stamps, _ = _cut(tract, [gx[3], float("nan")], [gy[3], 1.0], tmp_path, mask_bits=3)
    assert stamps.ids.tolist() == [100]
    with pytest.raises(ValueError, match="bits"):
        ImagesConfig(tiles="x", bands=["g"], mask_bits=0)
    assert stamps.rejected["bad_coordinates"].tolist() == [101]
    assert ra.shape == dec.shape == (6,)


@pytest.mark.filterwarnings("ignore::astropy.utils.exceptions.AstropyUserWarning")
def test_unreadable_tiles_are_reasons_not_tracebacks(tmp_path: Path) -> None:
    tract = write_tract(tmp_path / "tract")
    # patch (1, 1) of band r is cut short; patch (0, 1) of band g has corrupt compressed data of
    # the same size and mtime, so the index still takes it for readable
    cut = tract.file("r", 1, 1)
    cut.write_bytes(cut.read_bytes()[:-3000])
    corrupt = tract.file("g", 0, 1)
    stat = corrupt.stat()
    data = bytearray(corrupt.read_bytes())
    data[2880 * 2 + 200 : 2880 * 2 + 4000] = b"\x00" * 3800
    gx, gy = [140.0, 20.0, 30.0], [140.0, 120.0, 20.0]
    _cut(tract, gx, gy, tmp_path)  # index built with the good file
    corrupt.write_bytes(bytes(data))
    os.utime(corrupt, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    stamps, _ = _cut(tract, gx, gy, tmp_path)
    assert stamps.ids.tolist() == [102]
    assert stamps.rejected["unreadable_tile"].tolist() == [100, 101]
    assert set(stamps.tile_errors) == {str(cut), str(corrupt)}
    assert stamps.tile_errors[str(cut)].startswith("truncated")
    assert stamps.tile_errors[str(corrupt)].startswith("unreadable")
