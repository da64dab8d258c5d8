"""The labels format of training and evaluation sets, read and written in this one place.

A labels file is Parquet with `id` int64 (unique), `is_lens` bool, `class` ("lens" or the
contaminant class) and lens parameters (null for non-lenses); rows are written sorted by id,
and the cutout store beside it holds exactly the same ids.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lensflow.errors import EvaluationError
from lensflow.io import write_atomic


def label_schema(*, bands: Sequence[str], lens_params: Sequence[str]) -> pa.Schema:
    """Labels: id, is_lens, class, size, true magnitudes per band, lens parameters."""
    fields = [
        pa.field("id", pa.int64(), nullable=False),
        pa.field("is_lens", pa.bool_(), nullable=False),
        pa.field("class", pa.string(), nullable=False),
        pa.field("size_arcsec", pa.float64()),
    ]
    fields += [pa.field(f"mag_{b}", pa.float64()) for b in bands]
    fields += [pa.field(name, pa.float64()) for name in lens_params]
    return pa.schema(fields)


def write_labels(path: Path, rows: Sequence[Mapping[str, Any]], *, schema: pa.Schema) -> None:
    """Write label rows (dicts keyed by the schema's names) sorted by id, atomically."""
    ordered = sorted(rows, key=lambda r: int(r["id"]))
    table = pa.Table.from_pylist(list(ordered), schema=schema)
    write_atomic(path, lambda tmp: pq.write_table(table, tmp))


@dataclass(frozen=True)
class Labels:
    """A labels file sorted by id: ids int64 (N,), is_lens bool (N,), classes str (N,) or None."""

    ids: np.ndarray
    is_lens: np.ndarray
    classes: np.ndarray | None


def read_labels(path: Path) -> Labels:
    """Read a labels Parquet file (id int64, is_lens bool, optional class), sorted by id."""
    path = Path(path)
    try:
        schema = pq.read_schema(path)
    except FileNotFoundError:
        raise EvaluationError(f"{path}: no labels file here") from None
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise EvaluationError(f"{path}: not a Parquet labels file ({exc})") from exc
    absent = [name for name in ("id", "is_lens") if name not in schema.names]
    if absent:
        raise EvaluationError(f"{path}: labels lack columns {absent}; has {schema.names}")
    if not pa.types.is_int64(schema.field("id").type):
        raise EvaluationError(f"{path}: label ids must be int64, got {schema.field('id').type}")
    columns = ["id", "is_lens"] + (["class"] if "class" in schema.names else [])
    table = pq.read_table(path, columns=columns)
    if table["id"].null_count or table["is_lens"].null_count:
        raise EvaluationError(f"{path}: null id or is_lens in the labels")
    ids = table["id"].to_numpy().astype(np.int64, copy=False)
    is_lens = table["is_lens"].to_numpy(zero_copy_only=False).astype(bool)
    classes = np.asarray(table["class"].to_pylist(), dtype=object) if "class" in columns else None
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    if ids.size > 1 and np.any(ids[1:] == ids[:-1]):
        raise EvaluationError(
            f"{path}: duplicate label ids, e.g. {ids[1:][ids[1:] == ids[:-1]][0]}"
        )
    return Labels(
        ids=ids, is_lens=is_lens[order], classes=None if classes is None else classes[order]
    )


def check_same_ids(ids: np.ndarray, labels: Labels, *, store: Path, path: Path) -> None:
    """Refuse cutout ids (N,) that are not exactly the labels' ids, both ascending.

    Once accepted, the cutouts and the labels correspond row by row. store and path name the
    two sides in the error message.
    """
    if ids.size > 1 and np.any(ids[1:] <= ids[:-1]):
        raise EvaluationError(f"{store}: cutout ids repeat across groups or are not sorted")
    for missing, where, what in (
        (ids[~np.isin(ids, labels.ids)], path, "cutouts in the store"),
        (labels.ids[~np.isin(labels.ids, ids)], store, "labelled ids"),
    ):
        if missing.size:
            raise EvaluationError(
                f"{where}: {missing.size} {what} are absent here, e.g. ids "
                f"{missing[:5].tolist()}; a store and its labels must hold the same ids"
            )
