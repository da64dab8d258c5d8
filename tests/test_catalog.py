"""Reading HATS catalogs written by hats-import and lsdb, and refusing malformed ones."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hats.pixel_math.spatial_index import spatial_index_to_healpix

from lensflow.catalog import inside_pixel, open_catalog, partition_files, read_partition
from lensflow.cuts import parse_cuts
from lensflow.errors import CatalogError, MissingColumnError, PixelError, SchemaError
from lensflow.sky import HealpixPixel, PlainPixel
from lensflow.testing import survey_frame

pytestmark = pytest.mark.bad_input

COLUMNS = ["objID", "raStack", "decStack", "rKronMag"]


@pytest.fixture
def catalog_copy(imported_catalog: Path, tmp_path: Path) -> Path:
    """A private copy of the hats-import catalog, to damage."""
    return Path(shutil.copytree(imported_catalog, tmp_path / "survey"))


def test_reads_what_hats_import_writes(imported_catalog: Path) -> None:
    catalog = open_catalog(imported_catalog)
    assert len(catalog.pixels) > 2
    assert len({p.order for p in catalog.pixels}) > 1, "fixture should have mixed orders"
    total = sum(
        read_partition(p, catalog=catalog, columns=COLUMNS).rows_read for p in catalog.pixels
    )
    assert total == 4_000


def test_cut_is_applied_in_the_read(imported_catalog: Path) -> None:
    catalog = open_catalog(imported_catalog)
    cut = parse_cuts("rKronMag < 21.5 and rPSFMag - rKronMag > 0.05 and not isnan(gKronMag)")
    expected = survey_frame(4_000, seed=3)
    expected = expected[
        (expected.rKronMag < 21.5)
        & (expected.rPSFMag - expected.rKronMag > 0.05)
        & ~expected.gKronMag.isna()
    ]
    got = np.concatenate(
        [
            read_partition(p, catalog=catalog, columns=COLUMNS, cut=cut).table["objID"].to_numpy()
            for p in catalog.pixels
        ]
    )
    assert np.array_equal(np.sort(got), np.sort(expected.objID.to_numpy()))


def test_ids_keep_every_bit(imported_catalog: Path) -> None:
    catalog = open_catalog(imported_catalog)
    ids = np.concatenate(
        [
            read_partition(p, catalog=catalog, columns=["objID"]).table["objID"].to_numpy()
            for p in catalog.pixels
        ]
    )
    assert ids.dtype == np.int64
    assert np.array_equal(np.sort(ids), survey_frame(4_000, seed=3).objID.to_numpy())
    assert ids.min() > 2**53


def test_unknown_column_is_named(imported_catalog: Path) -> None:
    catalog = open_catalog(imported_catalog)
    with pytest.raises(MissingColumnError, match="r_mga"):
        read_partition(catalog.pixels[0], catalog=catalog, columns=["r_mga"])


def test_unknown_pixel_is_refused(imported_catalog: Path) -> None:
    catalog = open_catalog(imported_catalog)
    with pytest.raises(PixelError, match="not a partition"):
        read_partition(HealpixPixel(9, 12345), catalog=catalog, columns=COLUMNS)


def test_corrupt_file_fails_only_its_pixel(catalog_copy: Path) -> None:
    catalog = open_catalog(catalog_copy)
    bad, good = catalog.pixels[0], catalog.pixels[1]
    [file] = partition_files(catalog, bad)
    file.write_bytes(b"PAR1 this is not parquet at all" * 10)
    with pytest.raises(CatalogError, match=rf"pixel {bad.order}/{bad.pixel}.*{file.name}"):
        read_partition(bad, catalog=catalog, columns=COLUMNS)
    assert read_partition(good, catalog=catalog, columns=COLUMNS).rows_read > 0


def test_truncated_file_is_named(catalog_copy: Path) -> None:
    catalog = open_catalog(catalog_copy)
    pixel = catalog.pixels[0]
    [file] = partition_files(catalog, pixel)
    data = file.read_bytes()
    file.write_bytes(data[: len(data) // 2])
    with pytest.raises(CatalogError, match=str(file.name)):
        read_partition(pixel, catalog=catalog, columns=COLUMNS)


def test_drifted_type_is_refused(catalog_copy: Path) -> None:
    catalog = open_catalog(catalog_copy)
    pixel = catalog.pixels[0]
    [file] = partition_files(catalog, pixel)
    table = pq.read_table(file)
    index = table.schema.get_field_index("rKronMag")
    table = table.set_column(index, "rKronMag", table["rKronMag"].cast(pa.float32()))
    pq.write_table(table, file)
    with pytest.raises(SchemaError, match=r"rKronMag.*float"):
        read_partition(pixel, catalog=catalog, columns=COLUMNS)


def test_dropped_column_is_refused(catalog_copy: Path) -> None:
    catalog = open_catalog(catalog_copy)
    pixel = catalog.pixels[1]
    [file] = partition_files(catalog, pixel)
    pq.write_table(pq.read_table(file).drop_columns(["rKronMag"]), file)
    with pytest.raises(MissingColumnError, match=rf"{file.name}.*rKronMag"):
        read_partition(pixel, catalog=catalog, columns=COLUMNS)


def test_duplicate_column_is_refused(catalog_copy: Path) -> None:
    catalog = open_catalog(catalog_copy)
    pixel = catalog.pixels[0]
    [file] = partition_files(catalog, pixel)
    table = pq.read_table(file)
    table = table.append_column("rKronMag", table["rKronMag"])
    pq.write_table(table, file)
    with pytest.raises(SchemaError, match=r"rKronMag.*2 times"):
        read_partition(pixel, catalog=catalog, columns=COLUMNS)


def test_listed_pixel_without_file(catalog_copy: Path) -> None:
    catalog = open_catalog(catalog_copy)
    pixel = catalog.pixels[-1]
    [file] = partition_files(catalog, pixel)
    file.unlink()
    with pytest.raises(CatalogError, match="does not exist"):
        read_partition(pixel, catalog=catalog, columns=COLUMNS)


def test_rows_outside_their_pixel(catalog_copy: Path) -> None:
    catalog = open_catalog(catalog_copy)
    first, second = catalog.pixels[0], catalog.pixels[1]
    [file_a] = partition_files(catalog, first)
    [file_b] = partition_files(catalog, second)
    stolen = pq.read_table(file_b).slice(0, 3)
    pq.write_table(pa.concat_tables([pq.read_table(file_a), stolen]), file_a)
    with pytest.raises(CatalogError, match=r"3 rows .* outside the pixel"):
        read_partition(first, catalog=catalog, columns=COLUMNS)


def test_overlapping_pixels_are_refused(catalog_copy: Path) -> None:
    catalog = open_catalog(catalog_copy)
    deepest = max(catalog.pixels, key=lambda p: p.order)
    parent = HealpixPixel(deepest.order - 1, deepest.pixel >> 2)
    info = catalog_copy / "partition_info.csv"
    info.write_text(info.read_text().rstrip("\n") + f"\n{parent.order},{parent.pixel}\n")
    with pytest.raises(CatalogError, match="overlap"):
        open_catalog(catalog_copy)


def test_stray_files_are_listed(catalog_copy: Path) -> None:
    (catalog_copy / "dataset" / "Norder=1" / "stray.parquet").parent.mkdir(
        exist_ok=True, parents=True
    )
    (catalog_copy / "dataset" / "Norder=1" / "stray.parquet").write_bytes(b"x")
    catalog = open_catalog(catalog_copy)
    assert [p.name for p in catalog.stray_files] == ["stray.parquet"]


def test_not_a_catalog(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="not a HATS catalog"):
        open_catalog(tmp_path)


def test_opens_an_lsdb_collection(tmp_path: Path) -> None:
    lsdb = pytest.importorskip("lsdb")
    frame = survey_frame(1_500, seed=11)
    lsdb.from_dataframe(
        frame, ra_column="raStack", dec_column="decStack", partition_rows=400, margin_threshold=10.0
    ).to_hats(
        tmp_path / "collection", catalog_name="survey", as_collection=True, progress_bar=False
    )
    assert (tmp_path / "collection" / "collection.properties").exists()
    catalog = open_catalog(tmp_path / "collection")
    ids = np.concatenate(
        [
            read_partition(p, catalog=catalog, columns=["objID"]).table["objID"].to_numpy()
            for p in catalog.pixels
        ]
    )
    assert np.array_equal(np.sort(ids), frame.objID.to_numpy())


def test_spatial_index_maps_to_pixels(imported_catalog: Path) -> None:
    catalog = open_catalog(imported_catalog)
    for pixel in catalog.pixels:
        table = read_partition(pixel, catalog=catalog, columns=["objID"]).table
        assert np.all(
            spatial_index_to_healpix(table["_healpix_29"].to_numpy(), target_order=pixel.order)
            == pixel.pixel
        )


def test_nan_rows_survive_a_cut_that_keeps_them(imported_catalog: Path) -> None:
    """Missing magnitudes (NaN or null) are kept by a cut that asks for them."""
    catalog = open_catalog(imported_catalog)
    cut = parse_cuts("isnan(gKronMag) or isnull(gKronMag)")
    kept = sum(
        read_partition(p, catalog=catalog, columns=["objID"], cut=cut).table.num_rows
        for p in catalog.pixels
    )
    assert kept == int(survey_frame(4_000, seed=3).gKronMag.isna().sum()) == 80


def test_rows_lie_in_their_pixel_by_coordinates(imported_catalog: Path) -> None:
    """Every row hats-import placed is inside its pixel by ra/dec, boundary rows included."""
    catalog = open_catalog(imported_catalog)
    moved = 0
    for pixel in catalog.pixels:
        table = read_partition(pixel, catalog=catalog, columns=["raStack", "decStack"]).table
        ra = table["raStack"].to_numpy().astype(np.float64)
        dec = table["decStack"].to_numpy().astype(np.float64)
        assert inside_pixel(ra, dec, pixel).all()
        far = inside_pixel((ra + 180.0) % 360.0, -dec, pixel)
        assert not far.any()
        moved += len(ra)
    assert moved == 4_000
    assert inside_pixel(np.empty(0), np.empty(0), catalog.pixels[0]).shape == (0,)


def test_leaf_paths_are_those_hats_names(tmp_path: Path) -> None:
    from hats.io.paths import pixel_catalog_file

    from lensflow.catalog import CatalogHandle
    from lensflow.layout import leaf_path

    pixels = [(0, 0), (3, 767), (5, 9_999), (5, 10_000), (8, 786_431), (29, 12 * 4**29 - 1)]
    for order, npix in pixels:
        pixel = HealpixPixel(order, npix)
        for suffix in (".parquet", "/"):
            handle = CatalogHandle(path=tmp_path, npix_suffix=suffix, schema=pa.schema([]))
            hats_path = pixel_catalog_file(tmp_path, pixel, npix_suffix=suffix)
            assert str(handle.file_of(PlainPixel(order, npix))) == str(hats_path).rstrip("/")
        assert leaf_path(tmp_path, pixel) == Path(str(pixel_catalog_file(tmp_path, pixel)))


def test_the_spatial_index_is_the_one_hats_computes() -> None:
    """Random positions, and HEALPix pixel corners (on boundaries at every order)."""
    from cdshealpix.nested import vertices
    from hats.pixel_math.spatial_index import compute_spatial_index

    from lensflow.sky import coarsen, spatial_index

    rng = np.random.default_rng(11)
    ra = np.concatenate([rng.uniform(-360.0, 720.0, 20_000), [0.0, 90.0, 180.0, 360.0]])
    dec = np.concatenate([np.degrees(np.arcsin(rng.uniform(-1, 1, 20_000))), [90.0, -90.0, 0, 0]])
    lon, lat = vertices(np.arange(12 * 4**3, dtype=np.uint64), 3)
    ra = np.concatenate([ra, np.asarray(lon.deg).ravel()])
    dec = np.concatenate([dec, np.asarray(lat.deg).ravel()])
    index = spatial_index(ra, dec)
    assert index.dtype == np.int64
    np.testing.assert_array_equal(index, compute_spatial_index(ra, dec))
    for order in (0, 1, 5, 12, 29):
        np.testing.assert_array_equal(
            coarsen(index, order=order), spatial_index_to_healpix(index, target_order=order)
        )


def test_a_handle_reads_what_the_catalog_reads(imported_catalog: Path) -> None:
    """What a worker gets (the schema of the columns read, a plain pixel, the compiled cut)
    reads the same rows as the catalog itself, and carries no pixel list or other columns."""
    from lensflow.catalog import RowFilter

    catalog = open_catalog(imported_catalog)
    cut = parse_cuts("rKronMag < 21.5 and not isnan(gKronMag)")
    handle = catalog.handle([*COLUMNS, *cut.columns])
    assert set(handle.schema.names) == {*COLUMNS, "gKronMag", "_healpix_29"}
    assert len(handle.schema.names) < len(catalog.schema.names)
    kept = 0
    for pixel in catalog.pixels:
        full = read_partition(pixel, catalog=catalog, columns=COLUMNS, cut=cut)
        plain = PlainPixel(pixel.order, pixel.pixel)
        light = read_partition(plain, catalog=handle, columns=COLUMNS, cut=RowFilter.of(cut))
        assert light.table.equals(full.table) and light.rows_read == full.rows_read
        kept += light.table.num_rows
    assert 0 < kept < 4_000
