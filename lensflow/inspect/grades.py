"""Visual grades in a database: every grade a row (candidate id, grader, grade, time).

Grades follow the published searches: A sure lens (3), B probable (2), C possible (1), 0 not a
lens (0). A grader may grade a candidate again; the latest row counts, and `undo` removes the
grader's last row, so an earlier grade of that candidate counts again. The database is SQLite
by default (`grades.sqlite` in the scan folder); any SQLAlchemy URL works, e.g.
`postgresql+psycopg://user@host/lenses` for a server the graders share (its driver installed).
SQLAlchemy Core is used, no ORM: one table, created when absent.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, SQLAlchemyError

from lensflow.errors import ConfigError, StorageError

DEFAULT_DB = "grades.sqlite"
"""The grades database of a scan folder when no URL is given."""

GRADES: dict[str, int] = {"A": 3, "B": 2, "C": 1, "0": 0}
"""Grade letters and their values: A sure lens, B probable, C possible, 0 not a lens."""
LETTERS: dict[int, str] = {value: letter for letter, value in GRADES.items()}

MAX_GRADER = 64
"""Longest grader name kept (characters)."""

_metadata = sa.MetaData()
grades_table = sa.Table(
    "grades",
    _metadata,
    sa.Column("row", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("candidate_id", sa.BigInteger, nullable=False, index=True),
    sa.Column("grader", sa.String(MAX_GRADER), nullable=False, index=True),
    sa.Column("grade", sa.SmallInteger, nullable=False),
    sa.Column("graded_at", sa.DateTime(timezone=True), nullable=False),
)


@dataclass(frozen=True)
class Grade:
    """One stored grade: candidate id (int64), grader, grade value 0-3, time (UTC)."""

    candidate_id: int
    grader: str
    grade: int
    graded_at: datetime

    @property
    def letter(self) -> str:
        return LETTERS[self.grade]


def database_url(scan_dir: Path, db: str | None = None) -> str:
    """The grades database of a scan: `db` as given, else SQLite in the scan folder."""
    if db is None:
        return f"sqlite:///{(Path(scan_dir) / DEFAULT_DB).resolve()}"
    return db


def grade_value(grade: str | int) -> int:
    """A grade's value from its letter (A, B, C, 0; any case) or its value 0-3 (ConfigError)."""
    text = str(grade).strip().upper()
    if text in GRADES:
        return GRADES[text]
    if text in {"1", "2", "3"}:
        return int(text)
    raise ConfigError(f"unknown grade {grade!r}; grades are A (sure lens), B, C or 0 (not a lens)")


def check_grader(name: str) -> str:
    """A grader's name, stripped; ConfigError when empty, too long or with control characters."""
    name = name.strip()
    if not name or len(name) > MAX_GRADER or not name.isprintable():
        raise ConfigError(
            f"grader name {name[:MAX_GRADER]!r} is not usable: give 1-{MAX_GRADER} printable "
            "characters"
        )
    return name


class GradeBook:
    """The grades of one database, read and written through short transactions.

    Safe to share between threads (the web app's requests): SQLAlchemy pools the connections.
    """

    def __init__(self, url: str) -> None:
        try:
            self.engine = sa.create_engine(url)
        except (ArgumentError, NoSuchModuleError, ValueError) as exc:
            raise ConfigError(
                f"grades database {url!r} is not a database URL ({exc}); give e.g. "
                "sqlite:///grades.sqlite or postgresql+psycopg://user@host/name"
            ) from None
        except ImportError as exc:
            raise ConfigError(
                f"grades database {url!r}: its driver is not installed ({exc}); install it"
            ) from None
        self.url = self.engine.url.render_as_string(hide_password=True)
        with self._connect() as connection:
            _metadata.create_all(connection)

    @contextmanager
    def _connect(self) -> Iterator[sa.Connection]:
        try:
            with self.engine.begin() as connection:
                yield connection
        except SQLAlchemyError as exc:
            raise StorageError(
                f"grades database {self.url}: {exc.__class__.__name__}: {exc.args[0]}; check "
                "that it can be reached and written"
            ) from None

    def add(self, candidate_id: int, *, grader: str, grade: str | int) -> Grade:
        """Store one grade now; returns it."""
        row = Grade(int(candidate_id), check_grader(grader), grade_value(grade), datetime.now(UTC))
        with self._connect() as connection:
            connection.execute(
                grades_table.insert().values(
                    candidate_id=row.candidate_id,
                    grader=row.grader,
                    grade=row.grade,
                    graded_at=row.graded_at,
                )
            )
        return row

    def undo(self, *, grader: str) -> Grade | None:
        """Remove the grader's last grade; returns it, or None when the grader has none."""
        grader = check_grader(grader)
        with self._connect() as connection:
            last = connection.execute(
                sa.select(grades_table)
                .where(grades_table.c.grader == grader)
                .order_by(grades_table.c.row.desc())
                .limit(1)
            ).first()
            if last is None:
                return None
            connection.execute(grades_table.delete().where(grades_table.c.row == last.row))
        return _grade(last)

    def history(self) -> list[Grade]:
        """Every stored grade, oldest first."""
        with self._connect() as connection:
            rows = connection.execute(sa.select(grades_table).order_by(grades_table.c.row))
            return [_grade(row) for row in rows]

    def latest(self, *, grader: str | None = None) -> dict[tuple[int, str], Grade]:
        """The grade that counts per (candidate id, grader): the latest; one grader's alone."""
        kept: dict[tuple[int, str], Grade] = {}
        for grade in self.history():
            if grader is None or grade.grader == grader:
                kept[(grade.candidate_id, grade.grader)] = grade
        return kept

    def close(self) -> None:
        self.engine.dispose()


def _grade(row: sa.Row[tuple[int, int, str, int, datetime]]) -> Grade:
    at = row.graded_at
    if at.tzinfo is None:  # SQLite keeps no time zone: the stored times are UTC
        at = at.replace(tzinfo=UTC)
    return Grade(int(row.candidate_id), str(row.grader), int(row.grade), at)
