"""Candidate tables: one Parquet file per partition in a HATS catalog, and their export.

Every row that reached the ensemble is kept, with each member's score and the ensemble score,
so a threshold can be changed after the scan. A partition with no survivors still gets its
file, empty, with the full schema. Columns:

    id int64, ra, dec float64 (deg), _healpix_29 int64, photometry_score float32,
    score_<member> float32 (each member's probability),
    ensemble_score float32 (the manifest's fitted combination, else the members' mean),
    p_lens float32 (only when the manifest has a calibration: the probability of a lens at
        the scan's prior lens rate, [ensemble] prior_lens_rate, default 1e-4),
    <parameter>, <parameter>_err float64 (only when the scan runs the lens-modelling networks:
        theta_E, theta_E_err, e1, e1_err, ... in the manifest's units; null for rows whose
        ensemble_score is below [modelling] min_score),
    model_versions, config_fingerprint string.

Export ranks by ensemble_score (p_lens is a monotone function of it) and carries p_lens along.
Its format follows the output's suffix (`export_format`); an existing output is replaced only
with overwrite, and a HATS export folder is built beside the old one and swapped in whole, so
no partition of an older export is ever left beside the new ones.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lensflow.errors import ConfigError, OutputError, ScanStateError
from lensflow.io import write_atomic, write_folder_atomic, write_parquet
from lensflow.layout import leaf_path, write_catalog_metadata
from lensflow.sky import SPATIAL_INDEX_COLUMN, PixelLike

if TYPE_CHECKING:
    from lensflow.sky import HealpixPixel

logger = logging.getLogger(__name__)

ExportFormat = Literal["parquet", "fits", "csv", "hats"]
EXPORT_FORMATS: tuple[str, ...] = ("parquet", "fits", "csv", "hats")
SUFFIXES: dict[str, ExportFormat] = {
    ".parquet": "parquet",
    ".pq": "parquet",
    ".fits": "fits",
    ".fit": "fits",
    ".csv": "csv",
    ".hats": "hats",
    "": "hats",
}
"""Output suffixes and the format each means; no suffix is a HATS catalog folder."""
CATALOG_NAME = "lensflow_candidates"


def export_format(out: Path, fmt: str | None = None) -> ExportFormat:
    """The export format of `out`: from its suffix, or `fmt` where both agree (ConfigError).

    A HATS catalog is a folder of any name not ending in a table's suffix.
    """
    suffix = Path(out).suffix.lower()
    known = ", ".join(f"{k} ({v})" for k, v in SUFFIXES.items() if k)
    if fmt is not None and fmt not in EXPORT_FORMATS:
        raise ConfigError(
            f"unknown export format {fmt!r}; choose one of {', '.join(EXPORT_FORMATS)}"
        )
    implied = SUFFIXES.get(suffix)
    if fmt is None:
        if implied is None:
            raise ConfigError(
                f"{out}: unknown suffix {suffix!r}; name the file {known}, or give a folder "
                "without a suffix (or --format hats) for a HATS catalog"
            )
        return implied
    if fmt == "hats":
        if implied is not None and implied != "hats":
            raise ConfigError(
                f"{out}: the suffix {suffix} means {implied}, not --format hats; name the HATS "
                "folder without a table's suffix"
            )
        return "hats"
    if implied is None or implied != fmt:
        raise ConfigError(
            f"{out}: --format {fmt} but the suffix {suffix or '(none)'} means "
            f"{implied or 'no known format'}; name the file with the format's suffix ({known})"
        )
    return implied


def candidate_schema(
    members: Sequence[str], *, calibrated: bool = False, lens_model: Sequence[str] = ()
) -> pa.Schema:
    """The candidate table's columns for an ensemble with these member names.

    calibrated: the manifest has a calibration, so the table holds p_lens; lens_model: the
    modelling columns (theta_E, theta_E_err, ...), float64 each.
    """
    fields = [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("ra", pa.float64()),
        pa.field("dec", pa.float64()),
        pa.field(SPATIAL_INDEX_COLUMN, pa.int64()),
        pa.field("photometry_score", pa.float32()),
        *[pa.field(f"score_{name}", pa.float32()) for name in members],
        pa.field("ensemble_score", pa.float32()),
        *([pa.field("p_lens", pa.float32())] if calibrated else []),
        *[pa.field(name, pa.float64()) for name in lens_model],
        pa.field("model_versions", pa.string()),
        pa.field("config_fingerprint", pa.string()),
    ]
    return pa.schema(fields)


def candidate_table(
    *,
    ids: np.ndarray,
    ra: np.ndarray,
    dec: np.ndarray,
    healpix_29: np.ndarray,
    photometry_score: np.ndarray,
    member_scores: Mapping[str, np.ndarray],
    ensemble_score: np.ndarray,
    model_versions: str,
    fingerprint: str,
    p_lens: np.ndarray | None = None,
    lens_model: Mapping[str, np.ndarray] | None = None,
) -> pa.Table:
    """Assemble a partition's candidates, sorted by spatial index (the HATS order).

    p_lens (N,): calibrated lens probabilities, a column only when given; lens_model: column
    name -> float64 (N,) lens-model parameters and sigmas, NaN (stored as null) where not modelled.
    """
    lens_model = {} if lens_model is None else dict(lens_model)
    members = list(member_scores)
    n = len(ids)
    columns: dict[str, pa.Array] = {
        "id": pa.array(ids, pa.int64()),
        "ra": pa.array(ra, pa.float64()),
        "dec": pa.array(dec, pa.float64()),
        SPATIAL_INDEX_COLUMN: pa.array(healpix_29, pa.int64()),
        "photometry_score": pa.array(photometry_score, pa.float32()),
        **{f"score_{m}": pa.array(member_scores[m], pa.float32()) for m in members},
        "ensemble_score": pa.array(ensemble_score, pa.float32()),
        **({} if p_lens is None else {"p_lens": pa.array(p_lens, pa.float32())}),
        **{
            name: pa.array(np.asarray(v, np.float64), pa.float64(), from_pandas=True)
            for name, v in lens_model.items()
        },
        "model_versions": pa.array([model_versions] * n, pa.string()),
        "config_fingerprint": pa.array([fingerprint] * n, pa.string()),
    }
    schema = candidate_schema(members, calibrated=p_lens is not None, lens_model=list(lens_model))
    table = pa.table(columns, schema=schema)
    order = np.lexsort((np.asarray(ids), np.asarray(healpix_29)))
    return table.take(pa.array(order))


def write_candidates(table: pa.Table, *, root: Path, pixel: PixelLike) -> tuple[Path, str]:
    """Write a partition's candidate file atomically; returns its path and sha256.

    Snappy, not zstd: a partition holds a few candidates, whose file snappy writes in about
    half zstd's time (1.2 against 2.1 ms for 14 rows) and no larger.
    """
    path = leaf_path(root, pixel)
    return path, write_parquet(path, table, compression="snappy")


def finish_candidate_catalog(root: Path, pixels: Sequence[HealpixPixel]) -> int:
    """Write the HATS metadata over the partitions done so far; returns the total rows."""
    if not pixels:
        return 0
    return write_catalog_metadata(
        root, name=CATALOG_NAME, pixels=pixels, ra_column="ra", dec_column="dec"
    )


def read_candidates(root: Path, pixels: Sequence[HealpixPixel]) -> pa.Table:
    """Every candidate of the given partitions, in one table."""
    tables = [pq.read_table(leaf_path(root, p)) for p in pixels]
    if not tables:
        raise ScanStateError(f"{root}: no finished partitions to export; run `lensflow scan`")
    return pa.concat_tables(tables, promote_options="permissive")


def rank(table: pa.Table, *, min_score: float) -> pa.Table:
    """Candidates with ensemble_score >= min_score, best first (ties by id)."""
    kept = table.filter(pc.greater_equal(table["ensemble_score"], min_score))
    return kept.sort_by([("ensemble_score", "descending"), ("id", "ascending")])


def export_candidates(
    root: Path,
    pixels: Sequence[HealpixPixel],
    out: Path,
    *,
    fmt: ExportFormat,
    min_score: float,
    overwrite: bool = False,
) -> int:
    """Export ranked candidates as Parquet, FITS, CSV or a HATS catalog; returns the row count.

    An existing `out` is an OutputError unless overwrite; a HATS folder then replaced must be
    an earlier export (or empty), never some other folder.
    """
    if fmt not in EXPORT_FORMATS:
        raise ConfigError(f"unknown export format {fmt!r}; choose one of {EXPORT_FORMATS}")
    out = Path(out)
    check_export_target(out, fmt=fmt, overwrite=overwrite)
    ranked = rank(read_candidates(root, pixels), min_score=min_score)
    if fmt == "parquet":
        write_parquet(out, ranked)
    elif fmt == "csv":
        _write_csv(ranked, out)
    elif fmt == "fits":
        write_fits_table(ranked, out)
    else:
        write_folder_atomic(out, lambda tmp: _write_hats(ranked, tmp, pixels), replace=overwrite)
    logger.info("exported %d candidates to %s", ranked.num_rows, out)
    return int(ranked.num_rows)


def check_export_target(out: Path, *, fmt: ExportFormat, overwrite: bool) -> None:
    """Refuse an existing output without overwrite, and a folder no export may replace."""
    if not (out.exists() or out.is_symlink()):
        return
    if not overwrite:
        raise OutputError(f"{out}: exists; pass --overwrite to replace it, or choose another path")
    if fmt != "hats" and out.is_dir():
        raise OutputError(f"{out}: is a folder, not a {fmt} file; choose a file path")
    if fmt == "hats" and out.is_dir() and any(out.iterdir()) and not is_export_folder(out):
        raise OutputError(
            f"{out}: a folder that is not a lensflow export (no hats.properties of "
            f"{CATALOG_NAME}); it is not replaced, remove it yourself or choose another path"
        )


def is_export_folder(folder: Path) -> bool:
    """True for a HATS catalog of candidates written by lensflow (an export or a scan)."""
    properties = folder / "hats.properties"
    if not properties.is_file():
        return False
    lines = properties.read_text(encoding="utf-8", errors="replace").splitlines()
    return any(line.replace(" ", "") == f"obs_collection={CATALOG_NAME}" for line in lines)


def _write_csv(table: pa.Table, out: Path) -> None:
    import pyarrow.csv as pcsv

    write_atomic(out, lambda tmp: pcsv.write_csv(table, tmp))


def write_fits_table(table: pa.Table, out: Path, *, extname: str = "CANDIDATES") -> None:
    """A table as a FITS binary table (astropy), atomically; ra and dec carry unit deg."""
    from astropy.table import Table

    columns = {}
    for name in table.column_names:
        values = table[name].to_numpy(zero_copy_only=False)
        columns[name] = values.astype(str) if pa.types.is_string(table[name].type) else values
    astropy_table = Table(columns)
    astropy_table["ra"].unit = "deg"
    astropy_table["dec"].unit = "deg"
    astropy_table.meta["EXTNAME"] = extname
    write_atomic(out, lambda tmp: astropy_table.write(tmp, format="fits", overwrite=True))


def _write_hats(table: pa.Table, out: Path, pixels: Sequence[HealpixPixel]) -> None:
    from hats.pixel_math.spatial_index import spatial_index_to_healpix

    index = table[SPATIAL_INDEX_COLUMN].to_numpy()
    kept = []
    for pixel in pixels:
        rows = np.flatnonzero(
            spatial_index_to_healpix(index, target_order=pixel.order) == pixel.pixel
        )
        part = table.take(pa.array(rows)).sort_by(SPATIAL_INDEX_COLUMN)
        write_parquet(leaf_path(out, pixel), part)
        kept.append(pixel)
    write_catalog_metadata(
        out,
        name=CATALOG_NAME,
        pixels=kept,
        ra_column="ra",
        dec_column="dec",
        total_rows=table.num_rows,
    )
