"""Graded candidates out: a table with the consensus, and a Zooniverse subject set.

The table holds every graded candidate of the scan (its candidate columns, ranked by
ensemble_score) joined with its consensus: grade_mean, grade_spread, grade_graders,
grade_class, grades ("name:A;name:0"). Grades of ids the scan does not hold (a shared database
serving several scans) are left out and counted. A Zooniverse subject set is a folder of PNG
composites, one per candidate (`ID.png`), and `manifest.csv`: one row per subject naming its
image (`image_name_1`), with the candidate's id, position, scores and consensus as metadata
columns. Their names start with `#`, which Zooniverse hides from volunteers, so scores do not
sway them (the panoptes client uploads it: `panoptes subject-set upload-subjects`).
"""

from __future__ import annotations

import csv
import functools
import io
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

from lensflow.candidates import check_export_target, export_format, write_fits_table
from lensflow.errors import ConfigError, OutputError
from lensflow.inspect.consensus import Consensus, consensus_table
from lensflow.inspect.images import png_bytes, rgb_image
from lensflow.inspect.ranked import ScanCandidates
from lensflow.io import write_atomic, write_parquet, write_text

logger = logging.getLogger(__name__)

TABLE_FORMATS = ("parquet", "fits", "csv")
ZOONIVERSE_MANIFEST = "manifest.csv"
ZOONIVERSE_SCALE = 4
"""Screen pixels per cutout pixel in a Zooniverse image (64 px cutouts become 256 px)."""
DROPPED = ("_order", "_npix")


@dataclass(frozen=True)
class GradedExport:
    """What a grades export wrote: rows, graded ids the scan does not hold, the format."""

    rows: int
    unknown: int
    fmt: str
    out: Path


def graded_table(candidates: ScanCandidates, agreed: Mapping[int, Consensus]) -> pa.Table:
    """The graded candidates with their consensus columns, best ensemble_score first."""
    table = candidates.table.drop_columns(
        [c for c in DROPPED if c in candidates.table.column_names]
    )
    joined = table.join(consensus_table(agreed), "id", join_type="inner")
    return joined.sort_by([("ensemble_score", "descending"), ("id", "ascending")])


def export_grades(
    candidates: ScanCandidates,
    agreed: Mapping[int, Consensus],
    out: Path,
    *,
    fmt: str | None = None,
    overwrite: bool = False,
) -> GradedExport:
    """Write the graded candidates as Parquet, FITS or CSV (format from --format or suffix)."""
    chosen = export_format(Path(out), fmt)
    if chosen not in TABLE_FORMATS:
        raise ConfigError(
            f"{out}: grades export as {chosen} is not offered; choose {', '.join(TABLE_FORMATS)}"
        )
    check_export_target(Path(out), fmt=chosen, overwrite=overwrite)
    table = graded_table(candidates, agreed)
    if chosen == "parquet":
        write_parquet(Path(out), table)
    elif chosen == "csv":
        import pyarrow.csv as pcsv

        write_atomic(Path(out), lambda tmp: pcsv.write_csv(table, tmp))
    else:
        write_fits_table(table, Path(out), extname="GRADED")
    unknown = sum(1 for cid in agreed if cid not in candidates)
    logger.info("exported %d graded candidates to %s", table.num_rows, out)
    return GradedExport(int(table.num_rows), unknown, chosen, Path(out))


def write_zooniverse(
    candidates: ScanCandidates,
    folder: Path,
    *,
    agreed: Mapping[int, Consensus] | None = None,
    overwrite: bool = False,
) -> int:
    """A Zooniverse subject set of the selected candidates in `folder`; returns the subjects.

    The folder must be new or empty, or, with overwrite, one this function wrote before.
    """
    folder = Path(folder)
    if folder.exists() and any(folder.iterdir()):
        if not overwrite:
            raise OutputError(
                f"{folder}: exists and is not empty; pass --overwrite or choose another"
            )
        if not (folder / ZOONIVERSE_MANIFEST).is_file():
            raise OutputError(
                f"{folder}: holds files but no {ZOONIVERSE_MANIFEST}, so it is no subject set "
                "written by lensflow; it is not replaced, choose another folder"
            )
    folder.mkdir(parents=True, exist_ok=True)
    agreed = agreed or {}
    header = ["image_name_1", "#candidate_id", "#ra", "#dec", "#ensemble_score", "#p_lens"]
    header += [f"#score_{m}" for m in candidates.members]
    header += ["#grade_mean", "#grade_graders", "#grade_class"]
    lines = io.StringIO()
    writer = csv.writer(lines, lineterminator="\n")
    writer.writerow(header)
    for row in candidates.rows():
        candidate_id = int(row["id"])
        name = f"{candidate_id}.png"
        pixels = rgb_image(
            candidates.cutout(candidate_id), bands=candidates.store.bands, rgb=candidates.rgb
        )
        png = png_bytes(pixels, scale=ZOONIVERSE_SCALE)
        write_atomic(folder / name, functools.partial(_write_bytes, data=png))
        graded = agreed.get(candidate_id)
        writer.writerow(
            [
                name,
                str(candidate_id),
                repr(row["ra"]),
                repr(row["dec"]),
                _text(row.get("ensemble_score")),
                _text(row.get("p_lens")),
                *[_text(row.get(f"score_{m}")) for m in candidates.members],
                _text(graded.mean if graded else None),
                str(graded.graders) if graded else "0",
                graded.grade_class if graded else "",
            ]
        )
    write_text(folder / ZOONIVERSE_MANIFEST, lines.getvalue())
    return len(candidates)


def _write_bytes(path: Path, *, data: bytes) -> None:
    path.write_bytes(data)


def _text(value: float | None) -> str:
    return "" if value is None else f"{float(value):.6g}"
