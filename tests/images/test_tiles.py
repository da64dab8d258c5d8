"""Finding tiles, reading their headers, the footprint index and its reuse, locating rows."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from lensflow.config import ImagesConfig
from lensflow.errors import ImageError
from lensflow.images import locate, tile_index
from lensflow.images.projection import wcs_from_text
from tests.images import tan_wcs, write_tile, write_tract


def _config(folder: Path, **changes: object) -> ImagesConfig:
    raw = {"tiles": str(folder / "calexp-{band}-*.fits.fz"), "bands": ["g", "r"], "size": 16}
    return ImagesConfig.model_validate({**raw, **changes})


def test_index_reads_each_tile(tmp_path: Path) -> None:
    tract = write_tract(tmp_path / "tract")
    index = tile_index(_config(tract.folder), path=tmp_path / "tiles.parquet")
    assert len(index) == 8 and index.usable.all()
    assert sorted(set(index.band)) == ["g", "r"]
    assert (index.hdu == 1).all() and (index.mask_hdu == 2).all()  # CompImageHDUs
    assert (index.ny == 80).all() and (index.nx == 80).all()
    assert len(set(index.projection)) == 1  # one tract, one projection
    first = int(np.flatnonzero(index.path == str(tract.file("g", 0, 0)))[0])
    wcs = wcs_from_text(index.wcs_text[first])
    ra, dec = wcs.pixel_to_world_values(-0.5, -0.5)
    assert index.corner_ra[first, 0] == pytest.approx(ra) and index.corner_dec[
        first, 0
    ] == pytest.approx(dec)


def test_locate_finds_the_deepest_tile_and_pixel(tmp_path: Path) -> None:
    tract = write_tract(tmp_path / "tract")
    index = tile_index(_config(tract.folder), path=tmp_path / "tiles.parquet")
    gx = np.array([5.2, 71.0, 140.1, 300.0])  # patch (0,0) only, the overlap, patch (1,*), outside
    gy = np.array([6.3, 40.0, 100.4, 20.0])
    ra, dec = tract.wcs.pixel_to_world_values(gx, gy)
    tiles = np.flatnonzero(index.band == "g")
    found, x, y = locate(index, tiles, ra, dec, wcs_of=lambda t: wcs_from_text(index.wcs_text[t]))
    assert found[3] == -1 and np.isnan(x[3])
    for k in range(3):
        x0, y0 = next(
            o
            for (i, j), o in tract.origins.items()
            if str(tract.file("g", i, j)) == index.path[found[k]]
        )
        assert x[k] + x0 == pytest.approx(gx[k], abs=1e-6) and y[k] + y0 == pytest.approx(
            gy[k], abs=1e-6
        )
    # in the overlap (x 70-80 of patch 0, 0-10 of patch 1) the row is deeper inside patch 0
    assert "calexp-g-0," in index.path[found[1]]


def test_index_is_reused_until_a_tile_changes(tmp_path: Path) -> None:
    tract = write_tract(tmp_path / "tract")
    config, path = _config(tract.folder), tmp_path / "tiles.parquet"
    first = tile_index(config, path=path)
    written = path.stat().st_ino, path.stat().st_mtime_ns
    again = tile_index(config, path=path)
    assert (path.stat().st_ino, path.stat().st_mtime_ns) == written
    assert again.signature == first.signature and (again.path == first.path).all()
    changed = tract.file("r", 1, 1)
    stat = changed.stat()
    os.utime(changed, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    rebuilt = tile_index(config, path=path)
    assert rebuilt.signature != first.signature
    assert (path.stat().st_ino, path.stat().st_mtime_ns) != written
    write_tile(
        tract.folder / "calexp-g-9,9.fits.fz", np.zeros((8, 8)), tan_wcs(151.0, 2.0, crpix=(4, 4))
    )
    assert len(tile_index(config, path=path)) == 9


def test_hdu_by_extname_and_bad_tiles_have_reasons(tmp_path: Path) -> None:
    folder = tmp_path / "tiles"
    wcs = tan_wcs(10.0, -5.0, crpix=(16.5, 16.5))
    write_tile(folder / "calexp-g-good.fits.fz", np.ones((32, 32)), wcs)
    no_wcs = write_tile(folder / "calexp-g-nowcs.fits", np.ones((32, 32)), wcs, compressed=False)
    with_header = (
        no_wcs.read_bytes().replace(b"RA---TAN", b"PIXEL   ").replace(b"DEC--TAN", b"PIXEL   ")
    )
    no_wcs.write_bytes(with_header)
    truncated = write_tile(folder / "calexp-g-cut.fits.fz", np.ones((32, 32)), wcs)
    truncated.write_bytes(truncated.read_bytes()[: truncated.stat().st_size // 2 + 100])
    (folder / "calexp-g-junk.fits.fz").write_bytes(b"not a FITS file at all" * 200)
    config = ImagesConfig(tiles=str(folder / "calexp-{band}-*"), bands=["g"], hdu="IMAGE")
    index = tile_index(config, path=tmp_path / "tiles.parquet")
    reasons = {Path(p).name: r for p, r in zip(index.path, index.reason, strict=True)}
    assert reasons == {
        "calexp-g-good.fits.fz": "",
        "calexp-g-nowcs.fits": "no_celestial_wcs",
        "calexp-g-cut.fits.fz": "truncated",
        "calexp-g-junk.fits.fz": "unreadable",
    }
    assert index.hdu[list(reasons).index("calexp-g-good.fits.fz")] == 1
    assert set(index.bad_tiles()) == {p for p in index.path if not p.endswith("good.fits.fz")}
    missing = ImagesConfig(tiles=str(folder / "calexp-{band}-good*"), bands=["g"], hdu="VARIANCE")
    bad = tile_index(missing, path=tmp_path / "other.parquet")
    assert list(bad.reason) == ["missing_hdu"] and "VARIANCE" in bad.error[0]


def test_no_tiles_for_a_band_is_refused(tmp_path: Path) -> None:
    tract = write_tract(tmp_path / "tract", bands=("g",))
    with pytest.raises(ImageError, match="band 'r'"):
        tile_index(_config(tract.folder), path=tmp_path / "tiles.parquet")
