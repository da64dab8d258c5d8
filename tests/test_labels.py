"""The labels format: written sorted by id, read back checked, refused with the file named."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lensflow.errors import EvaluationError
from lensflow.labels import check_same_ids, label_schema, read_labels, write_labels

SCHEMA = label_schema(bands=("g", "r", "i"), lens_params=("theta_e", "z_source"))


def _rows(ids: list[int]) -> list[dict[str, Any]]:
    """Label rows in the given id order: every third one a lens with its parameters."""
    rows = []
    for k, object_id in enumerate(ids):
        lens = object_id % 3 == 0
        rows.append(
            {
                "id": object_id,
                "is_lens": lens,
                "class": "lens" if lens else ("spiral", "elliptical")[k % 2],
                "size_arcsec": 0.5 + k / 10,
                "mag_g": 22.0 + k / 100,
                "mag_r": 21.5,
                "mag_i": 21.2,
                "theta_e": 1.1 if lens else None,
                "z_source": 1.8 if lens else None,
            }
        )
    return rows


def test_the_schema_names_the_bands_and_lens_parameters() -> None:
    assert SCHEMA.names == [
        "id", "is_lens", "class", "size_arcsec", "mag_g", "mag_r", "mag_i", "theta_e", "z_source",
    ]  # fmt: skip
    assert SCHEMA.field("id").type == pa.int64() and not SCHEMA.field("id").nullable


def test_labels_round_trip_sorted_by_id(tmp_path: Path) -> None:
    ids = [(1 << 60) + n for n in (9, 3, 12, 1, 7, 6)]
    rows = _rows(ids)
    path = tmp_path / "set" / "labels.parquet"
    write_labels(path, rows, schema=SCHEMA)
    on_disk = pq.read_table(path)
    assert on_disk.schema.equals(SCHEMA, check_metadata=False)
    assert on_disk["id"].to_pylist() == sorted(ids)
    labels = read_labels(path)
    by_id = {r["id"]: r for r in rows}
    assert labels.ids.dtype == np.int64 and labels.ids.tolist() == sorted(ids)
    assert labels.is_lens.tolist() == [by_id[i]["is_lens"] for i in sorted(ids)]
    assert labels.classes is not None
    assert labels.classes.tolist() == [by_id[i]["class"] for i in sorted(ids)]
    assert on_disk["theta_e"].to_pylist() == [by_id[i]["theta_e"] for i in sorted(ids)]
    assert [p.name for p in path.parent.iterdir()] == ["labels.parquet"]


def test_labels_without_classes_read_as_none(tmp_path: Path) -> None:
    path = tmp_path / "labels.parquet"
    pq.write_table(pa.table({"id": pa.array([5, 2], pa.int64()), "is_lens": [True, False]}), path)
    labels = read_labels(path)
    assert labels.ids.tolist() == [2, 5] and labels.is_lens.tolist() == [False, True]
    assert labels.classes is None


def _ids(*values: int | None) -> pa.Array:
    return pa.array(values, pa.int64())


BAD_LABELS = {
    "duplicate ids": (
        pa.table({"id": _ids(4, 2, 4), "is_lens": [True, False, True]}),
        "duplicate label ids, e.g. 4",
    ),
    "no is_lens": (pa.table({"id": _ids(1)}), r"lack columns \['is_lens'\]"),
    "no id": (pa.table({"is_lens": [True]}), r"lack columns \['id'\]"),
    "float ids": (pa.table({"id": [1.0], "is_lens": [True]}), "ids must be int64, got double"),
    "null id": (pa.table({"id": _ids(1, None), "is_lens": [True, False]}), "null id"),
    "null is_lens": (pa.table({"id": _ids(1, 2), "is_lens": [True, None]}), "null id or is_lens"),
}


@pytest.mark.parametrize("case", list(BAD_LABELS))
def test_bad_labels_are_refused_with_the_path(tmp_path: Path, case: str) -> None:
    table, message = BAD_LABELS[case]
    path = tmp_path / "labels.parquet"
    pq.write_table(table, path)
    with pytest.raises(EvaluationError, match=rf"^{path}: .*{message}"):
        read_labels(path)


def test_missing_and_non_parquet_files_are_named(tmp_path: Path) -> None:
    with pytest.raises(EvaluationError, match=rf"{tmp_path / 'absent.parquet'}: no labels file"):
        read_labels(tmp_path / "absent.parquet")
    text = tmp_path / "labels.csv"
    text.write_text("id,is_lens\n1,true\n")
    with pytest.raises(EvaluationError, match=rf"{text}: not a Parquet labels file"):
        read_labels(text)


def test_cutouts_and_labels_must_hold_the_same_ids(tmp_path: Path) -> None:
    path = tmp_path / "labels.parquet"
    write_labels(path, _rows([30, 10, 20]), schema=SCHEMA)
    labels = read_labels(path)
    store = tmp_path / "cutouts.zarr"
    check_same_ids(np.array([10, 20, 30]), labels, store=store, path=path)
    with pytest.raises(EvaluationError, match=rf"{path}: 1 cutouts in the store .* \[40\]"):
        check_same_ids(np.array([10, 20, 30, 40]), labels, store=store, path=path)
    with pytest.raises(EvaluationError, match=rf"{store}: 1 labelled ids .* \[20\]"):
        check_same_ids(np.array([10, 30]), labels, store=store, path=path)
    with pytest.raises(EvaluationError, match="repeat across groups or are not sorted"):
        check_same_ids(np.array([10, 30, 20]), labels, store=store, path=path)
