"""Graded candidates out: Parquet, FITS and CSV with the consensus, and a Zooniverse set."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pyarrow.csv as pcsv
import pyarrow.parquet as pq
import pytest
from astropy.table import Table
from PIL import Image

from lensflow.errors import ConfigError, OutputError
from lensflow.inspect.consensus import consensus
from lensflow.inspect.exports import ZOONIVERSE_SCALE, export_grades, write_zooniverse
from lensflow.inspect.grades import GradeBook
from lensflow.inspect.ranked import ScanCandidates


@pytest.fixture
def graded(candidates: ScanCandidates, tmp_path: Path) -> GradeBook:
    """Two graders on the second and third candidates, one on the first, one unknown id."""
    book = GradeBook(f"sqlite:///{tmp_path / 'g.sqlite'}")
    first, second, third = candidates.ids[:3]
    book.add(first, grader="ann", grade="A")
    book.add(second, grader="ann", grade="B")
    book.add(second, grader="bob", grade="0")
    book.add(third, grader="ann", grade="C")
    book.add(third, grader="bob", grade="C")
    book.add(77, grader="bob", grade="A")  # graded in another scan on a shared database
    return book


@pytest.mark.parametrize("suffix", [".parquet", ".csv", ".fits"])
def test_a_graded_table_holds_the_consensus(
    candidates: ScanCandidates, graded: GradeBook, tmp_path: Path, suffix: str
) -> None:
    out = tmp_path / f"graded{suffix}"
    report = export_grades(candidates, consensus(graded.history()), out)
    assert (report.rows, report.unknown, report.fmt) == (3, 1, suffix[1:])
    if suffix == ".parquet":
        table = pq.read_table(out).to_pylist()
    elif suffix == ".csv":
        table = pcsv.read_csv(out).to_pylist()
    else:
        table = [dict(zip(r.colnames, r, strict=True)) for r in Table.read(out)]
    first, second, third = candidates.ids[:3]
    by_id = {int(r["id"]): r for r in table}
    assert set(by_id) == {first, second, third}
    assert (by_id[second]["grade_mean"], by_id[second]["grade_graders"]) == (1.0, 2)
    assert by_id[second]["grade_spread"] == pytest.approx(1.0)
    assert str(by_id[first]["grade_class"]) == "A"
    assert str(by_id[third]["grades"]) == "ann:C;bob:C"
    scores = [float(r["ensemble_score"]) for r in table]
    assert scores == sorted(scores, reverse=True)


def test_a_graded_table_is_not_hats_and_not_written_over(
    candidates: ScanCandidates, graded: GradeBook, tmp_path: Path
) -> None:
    agreed = consensus(graded.history())
    with pytest.raises(ConfigError, match="choose parquet, fits, csv"):
        export_grades(candidates, agreed, tmp_path / "folder")
    (tmp_path / "x.csv").write_text("keep")
    with pytest.raises(OutputError, match="--overwrite"):
        export_grades(candidates, agreed, tmp_path / "x.csv")
    assert (tmp_path / "x.csv").read_text() == "keep"


def test_a_zooniverse_set_has_a_manifest_and_its_images(
    candidates: ScanCandidates, graded: GradeBook, tmp_path: Path
) -> None:
    folder = tmp_path / "subjects"
    top = ScanCandidates(candidates.scan_dir, top=4, min_score=0.0)
    assert write_zooniverse(top, folder, agreed=consensus(graded.history())) == 4
    with (folder / "manifest.csv").open() as f:
        rows = list(csv.DictReader(f))
    assert [int(r["#candidate_id"]) for r in rows] == top.ids
    assert all(k == "image_name_1" or k.startswith("#") for k in rows[0])  # scores hidden
    assert rows[1]["#grade_graders"] == "2" and rows[1]["#grade_class"] == "C"
    assert rows[3]["#grade_graders"] == "0"
    size = top.store.cutout_size * ZOONIVERSE_SCALE
    for row in rows:
        image = np.asarray(Image.open(io.BytesIO((folder / row["image_name_1"]).read_bytes())))
        assert image.shape == (size, size, 3)
    with pytest.raises(OutputError, match="not empty"):
        write_zooniverse(top, folder)
    assert write_zooniverse(top, folder, overwrite=True) == 4
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(OutputError, match=r"no manifest\.csv"):
        write_zooniverse(top, other, overwrite=True)
