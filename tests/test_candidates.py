"""Candidate tables: their schema and order, the HATS catalog they form, and their export."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from hats.pixel_math.spatial_index import spatial_index_to_healpix

from lensflow.candidates import (
    ExportFormat,
    candidate_schema,
    candidate_table,
    export_candidates,
    finish_candidate_catalog,
    rank,
    read_candidates,
    write_candidates,
)
from lensflow.catalog import open_catalog, read_partition
from lensflow.errors import LensflowError
from lensflow.io import file_digest
from lensflow.layout import healpix_29, leaf_path
from lensflow.sky import HealpixPixel

MEMBERS = ("resnet", "mobilenet")
ORDER = 3
VERSIONS = "photometry_mlp@0123456789ab,resnet@ba9876543210"
FINGERPRINT = "e" * 64


def _columns(rng: np.random.Generator, n: int) -> dict[str, np.ndarray]:
    """Candidate columns of n sources near (150, 2) deg, some sharing a position."""
    ra = rng.uniform(148.0, 152.0, n)
    dec = rng.uniform(0.0, 4.0, n)
    twins = rng.choice(n, n // 5, replace=False)
    ra[twins[1:]], dec[twins[1:]] = ra[twins[:-1]], dec[twins[:-1]]
    scores = {m: rng.uniform(0, 1, n).astype(np.float32) for m in MEMBERS}
    ensemble = np.mean(list(scores.values()), axis=0).astype(np.float32)
    ensemble[rng.choice(n, 6, replace=False)] = np.float32(0.75)  # ties, broken by id
    return {
        "ids": (1 << 60) + rng.permutation(n * 3)[:n].astype(np.int64),
        "ra": ra,
        "dec": dec,
        "healpix_29": healpix_29(ra, dec),
        "photometry_score": rng.uniform(0.1, 1, n).astype(np.float32),
        **{f"score_{m}": s for m, s in scores.items()},
        "ensemble_score": ensemble,
    }


def _table(columns: dict[str, np.ndarray], rows: np.ndarray | slice = slice(None)) -> pa.Table:
    return candidate_table(
        ids=columns["ids"][rows],
        ra=columns["ra"][rows],
        dec=columns["dec"][rows],
        healpix_29=columns["healpix_29"][rows],
        photometry_score=columns["photometry_score"][rows],
        member_scores={m: columns[f"score_{m}"][rows] for m in MEMBERS},
        ensemble_score=columns["ensemble_score"][rows],
        model_versions=VERSIONS,
        fingerprint=FINGERPRINT,
    )


@dataclass(frozen=True)
class Written:
    root: Path
    pixels: list[HealpixPixel]
    frame: pd.DataFrame  # every candidate written, in no particular order


@pytest.fixture
def written(tmp_path: Path) -> Written:
    """Candidate files of every order-3 pixel the sources fall in, as a scan writes them."""
    columns = _columns(np.random.default_rng(5), 400)
    owner = spatial_index_to_healpix(columns["healpix_29"], target_order=ORDER)
    root = tmp_path / "scan"
    pixels = [HealpixPixel(ORDER, int(p)) for p in np.unique(owner)]
    for pixel in pixels:
        write_candidates(_table(columns, owner == pixel.pixel), root=root, pixel=pixel)
    return Written(root, pixels, _table(columns).to_pandas())


def _expected_ranking(frame: pd.DataFrame, min_score: float) -> pd.DataFrame:
    kept = frame[frame["ensemble_score"] >= np.float32(min_score)]
    return kept.sort_values(["ensemble_score", "id"], ascending=[False, True]).reset_index(
        drop=True
    )


def test_rows_are_sorted_by_spatial_index_then_id() -> None:
    columns = _columns(np.random.default_rng(1), 200)
    table = _table(columns)
    index, ids = table["_healpix_29"].to_numpy(), table["id"].to_numpy()
    assert np.all((np.diff(index) > 0) | ((np.diff(index) == 0) & (np.diff(ids) > 0)))
    assert np.any(np.diff(index) == 0), "the sources should share some positions"
    by_id = dict(zip(columns["ids"].tolist(), columns["ensemble_score"].tolist(), strict=True))
    assert table["ensemble_score"].to_pylist() == [by_id[i] for i in ids.tolist()]
    ra_by_id = dict(zip(columns["ids"].tolist(), columns["ra"].tolist(), strict=True))
    assert table["ra"].to_pylist() == [ra_by_id[i] for i in ids.tolist()]
    assert set(table["model_versions"].to_pylist()) == {VERSIONS}
    assert set(table["config_fingerprint"].to_pylist()) == {FINGERPRINT}


def test_an_empty_partition_keeps_the_full_schema(tmp_path: Path) -> None:
    table = _table(_columns(np.random.default_rng(2), 10), np.zeros(10, dtype=bool))
    schema = candidate_schema(MEMBERS)
    assert table.num_rows == 0 and table.schema.equals(schema)
    assert schema.names == [
        "id",
        "ra",
        "dec",
        "_healpix_29",
        "photometry_score",
        "score_resnet",
        "score_mobilenet",
        "ensemble_score",
        "model_versions",
        "config_fingerprint",
    ]
    pixel = HealpixPixel(4, 1234)
    path, digest = write_candidates(table, root=tmp_path, pixel=pixel)
    assert path == leaf_path(tmp_path, pixel) and digest == file_digest(path)
    back = pq.read_table(path)
    assert back.num_rows == 0 and back.schema.equals(schema, check_metadata=False)


def test_a_calibrated_ensemble_adds_p_lens_after_the_ensemble_score(tmp_path: Path) -> None:
    columns = _columns(np.random.default_rng(3), 50)
    p_lens = (columns["ensemble_score"] ** 4).astype(np.float32)
    table = candidate_table(
        ids=columns["ids"],
        ra=columns["ra"],
        dec=columns["dec"],
        healpix_29=columns["healpix_29"],
        photometry_score=columns["photometry_score"],
        member_scores={m: columns[f"score_{m}"] for m in MEMBERS},
        ensemble_score=columns["ensemble_score"],
        model_versions=VERSIONS,
        fingerprint=FINGERPRINT,
        p_lens=p_lens,
    )
    schema = candidate_schema(MEMBERS, calibrated=True)
    assert table.schema.equals(schema)
    names = schema.names
    assert names.index("p_lens") == names.index("ensemble_score") + 1
    assert schema.field("p_lens").type == pa.float32()
    by_id = dict(zip(columns["ids"].tolist(), p_lens.tolist(), strict=True))
    assert table["p_lens"].to_pylist() == [by_id[i] for i in table["id"].to_pylist()]
    assert "p_lens" not in candidate_schema(MEMBERS).names
    pixel = HealpixPixel(4, 99)
    write_candidates(table, root=tmp_path, pixel=pixel)
    ranked = rank(read_candidates(tmp_path, [pixel]), min_score=0.5)
    scores, carried = ranked["ensemble_score"].to_numpy(), ranked["p_lens"].to_numpy()
    assert np.all(np.diff(scores) <= 0) and np.array_equal(carried, scores**4)


def test_finished_partitions_form_a_hats_catalog(written: Written) -> None:
    assert finish_candidate_catalog(written.root, written.pixels) == len(written.frame)
    catalog = open_catalog(written.root)
    assert catalog.pixels == tuple(sorted(written.pixels))
    assert (catalog.ra_column, catalog.dec_column) == ("ra", "dec")
    assert catalog.total_rows == len(written.frame)
    ids = np.concatenate(
        [
            read_partition(p, catalog=catalog, columns=["id"]).table["id"].to_numpy()
            for p in catalog.pixels
        ]
    )
    assert sorted(ids.tolist()) == sorted(written.frame["id"].tolist())


def test_no_finished_partition_writes_no_catalog(tmp_path: Path) -> None:
    assert finish_candidate_catalog(tmp_path, []) == 0
    assert not list(tmp_path.iterdir())
    with pytest.raises(LensflowError, match="no finished partitions to export"):
        read_candidates(tmp_path, [])


def test_rank_keeps_the_cut_best_first_ties_by_id(written: Written) -> None:
    table = read_candidates(written.root, written.pixels)
    assert table.num_rows == len(written.frame)
    ranked = rank(table, min_score=0.5).to_pandas()
    expected = _expected_ranking(written.frame, 0.5)
    assert ranked["id"].tolist() == expected["id"].tolist()
    tied = ranked[ranked["ensemble_score"] == np.float32(0.75)]
    assert len(tied) >= 2 and tied["id"].is_monotonic_increasing


Reader = Callable[[Path], pd.DataFrame]


def _read_parquet(path: Path) -> pd.DataFrame:
    frame: pd.DataFrame = pq.read_table(path).to_pandas()
    return frame


def _read_csv(path: Path) -> pd.DataFrame:
    frame: pd.DataFrame = pcsv.read_csv(path).to_pandas()
    return frame


def _read_fits(path: Path) -> pd.DataFrame:
    from astropy.io import fits
    from astropy.table import Table

    with fits.open(path) as hdus:
        assert hdus[1].header["EXTNAME"] == "CANDIDATES"
    table = Table.read(path, hdu="CANDIDATES")
    assert str(table["ra"].unit) == "deg" and str(table["dec"].unit) == "deg"
    frame: pd.DataFrame = table.to_pandas()
    return frame


def _read_hats(path: Path) -> pd.DataFrame:
    catalog = open_catalog(path)
    parts = []
    for pixel in catalog.pixels:
        part = pq.read_table(leaf_path(path, pixel)).to_pandas()
        owner = spatial_index_to_healpix(part["_healpix_29"].to_numpy(), target_order=pixel.order)
        assert np.all(owner == pixel.pixel), f"a row outside {pixel}"
        parts.append(part)
    frame = pd.concat(parts, ignore_index=True)
    ranked: pd.DataFrame = frame.sort_values(["ensemble_score", "id"], ascending=[False, True])
    return ranked


@pytest.mark.parametrize(
    ("fmt", "name", "read"),
    [
        ("parquet", "top.parquet", _read_parquet),
        ("csv", "top.csv", _read_csv),
        ("fits", "top.fits", _read_fits),
        ("hats", "top_hats", _read_hats),
    ],
)
def test_exports_round_trip_ranked(
    written: Written, tmp_path: Path, fmt: ExportFormat, name: str, read: Reader
) -> None:
    out = tmp_path / name
    rows = export_candidates(written.root, written.pixels, out, fmt=fmt, min_score=0.4)
    expected = _expected_ranking(written.frame, 0.4)
    assert rows == len(expected) > 0
    got = read(out).reset_index(drop=True)
    assert list(got.columns) == list(expected.columns)
    assert got["id"].astype(np.int64).tolist() == expected["id"].tolist(), "ids keep every bit"
    for column in ("ra", "dec", "photometry_score", "ensemble_score", "score_resnet"):
        np.testing.assert_allclose(got[column], expected[column], rtol=1e-6)
    assert got["model_versions"].astype(str).tolist() == [VERSIONS] * rows
    assert got["config_fingerprint"].astype(str).tolist() == [FINGERPRINT] * rows


def test_an_unknown_export_format_is_refused(written: Written, tmp_path: Path) -> None:
    with pytest.raises(LensflowError, match="unknown export format 'xlsx'"):
        export_candidates(
            written.root,
            written.pixels,
            tmp_path / "top.xlsx",
            fmt="xlsx",  # type: ignore[arg-type]
            min_score=0.0,
        )
    assert not (tmp_path / "top.xlsx").exists()


LENS_MODEL = ("theta_E", "theta_E_err", "e1", "e1_err")


@pytest.mark.parametrize(
    ("fmt", "name", "read"),
    [
        ("parquet", "top.parquet", _read_parquet),
        ("csv", "top.csv", _read_csv),
        ("fits", "top.fits", _read_fits),
        ("hats", "top_hats", _read_hats),
    ],
)
def test_lens_model_columns_are_null_where_not_modelled_and_export(
    tmp_path: Path, fmt: ExportFormat, name: str, read: Reader
) -> None:
    columns = _columns(np.random.default_rng(8), 120)
    modelled = columns["ensemble_score"] >= 0.5
    values = {c: np.where(modelled, 1.0 + k, np.nan) for k, c in enumerate(LENS_MODEL)}
    owner = spatial_index_to_healpix(columns["healpix_29"], target_order=ORDER)
    pixels = [HealpixPixel(ORDER, int(p)) for p in np.unique(owner)]
    root = tmp_path / "scan"
    for pixel in pixels:
        rows = owner == pixel.pixel
        table = candidate_table(
            ids=columns["ids"][rows],
            ra=columns["ra"][rows],
            dec=columns["dec"][rows],
            healpix_29=columns["healpix_29"][rows],
            photometry_score=columns["photometry_score"][rows],
            member_scores={m: columns[f"score_{m}"][rows] for m in MEMBERS},
            ensemble_score=columns["ensemble_score"][rows],
            model_versions=VERSIONS,
            fingerprint=FINGERPRINT,
            lens_model={c: v[rows] for c, v in values.items()},
        )
        assert table.schema.equals(candidate_schema(MEMBERS, lens_model=LENS_MODEL))
        assert table["theta_E"].null_count == int((~modelled[rows]).sum())
        write_candidates(table, root=root, pixel=pixel)
    names = candidate_schema(MEMBERS, lens_model=LENS_MODEL).names
    assert names.index("theta_E") == names.index("ensemble_score") + 1
    out = tmp_path / name
    rows_out = export_candidates(root, pixels, out, fmt=fmt, min_score=0.3)
    got = read(out).reset_index(drop=True)
    assert rows_out == len(got) > 0 and set(LENS_MODEL) <= set(got.columns)
    above = got["ensemble_score"].to_numpy() >= np.float32(0.5)
    assert above.any() and (~above).any()
    for k, column in enumerate(LENS_MODEL):
        value = got[column].astype(np.float64).to_numpy()
        assert np.all(value[above] == 1.0 + k) and np.isnan(value[~above]).all()
