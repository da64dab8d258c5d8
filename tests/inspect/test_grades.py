"""Grades in a real SQLite database: stored with grader and time, undone, kept across opens."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from lensflow.errors import ConfigError, StorageError
from lensflow.inspect.grades import DEFAULT_DB, GradeBook, database_url, grade_value

BIG_ID = 1_152_922_514_176_992_493  # an int64 id past 2**53: must not pass through float64


def book_at(tmp_path: Path) -> GradeBook:
    return GradeBook(database_url(tmp_path, f"sqlite:///{tmp_path / 'g.sqlite'}"))


def test_the_default_database_is_a_file_in_the_scan_folder(tmp_path: Path) -> None:
    url = database_url(tmp_path)
    assert url == f"sqlite:///{(tmp_path / DEFAULT_DB).resolve()}"
    GradeBook(url).add(1, grader="ann", grade="A")
    assert (tmp_path / DEFAULT_DB).is_file()


def test_a_grade_is_stored_with_grader_and_time(tmp_path: Path) -> None:
    book = book_at(tmp_path)
    before = datetime.now(UTC)
    book.add(BIG_ID, grader=" ann ", grade="b")
    (stored,) = book.history()
    assert (stored.candidate_id, stored.grader, stored.grade, stored.letter) == (
        BIG_ID,
        "ann",
        2,
        "B",
    )
    assert before <= stored.graded_at <= datetime.now(UTC)


def test_grades_survive_closing_the_database(tmp_path: Path) -> None:
    book = book_at(tmp_path)
    book.add(5, grader="ann", grade="A")
    book.add(6, grader="bob", grade="0")
    book.close()
    again = book_at(tmp_path)
    assert [(g.candidate_id, g.grader, g.letter) for g in again.history()] == [
        (5, "ann", "A"),
        (6, "bob", "0"),
    ]


def test_undo_removes_the_graders_last_grade_only(tmp_path: Path) -> None:
    book = book_at(tmp_path)
    book.add(1, grader="ann", grade="C")
    book.add(1, grader="ann", grade="A")  # a second look: the latest counts
    book.add(2, grader="bob", grade="B")
    assert book.latest(grader="ann")[(1, "ann")].letter == "A"
    undone = book.undo(grader="ann")
    assert undone is not None and (undone.candidate_id, undone.letter) == (1, "A")
    assert book.latest(grader="ann")[(1, "ann")].letter == "C"  # the earlier grade is back
    assert book.latest(grader="bob")[(2, "bob")].letter == "B"
    assert book.undo(grader="ann") is not None
    assert book.undo(grader="ann") is None
    assert [g.grader for g in book.history()] == ["bob"]


@pytest.mark.parametrize(("given", "value"), [("A", 3), ("b", 2), ("C", 1), ("0", 0), (3, 3)])
def test_grade_letters_and_values(given: str | int, value: int) -> None:
    assert grade_value(given) == value


@pytest.mark.parametrize("bad", ["D", "", "4", "-1", "AB"])
def test_an_unknown_grade_is_refused_with_the_grades_named(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="A \\(sure lens\\), B, C or 0"):
        book_at(tmp_path).add(1, grader="ann", grade=bad)


@pytest.mark.parametrize("bad", ["", "   ", "x" * 65, "ann\nbob"])
def test_an_unusable_grader_name_is_refused(tmp_path: Path, bad: str) -> None:
    with pytest.raises(ConfigError, match="grader name"):
        book_at(tmp_path).add(1, grader=bad, grade="A")


def test_a_bad_database_url_says_what_to_give() -> None:
    with pytest.raises(ConfigError, match="not a database URL"):
        GradeBook("grades.sqlite")
    with pytest.raises(ConfigError, match="not a database URL"):
        GradeBook("nosuchdb://host/name")


def test_an_unwritable_database_is_one_error(tmp_path: Path) -> None:
    with pytest.raises(StorageError, match="grades database"):
        GradeBook(f"sqlite:///{tmp_path / 'no' / 'such' / 'folder' / 'g.sqlite'}")
