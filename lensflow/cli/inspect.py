"""Looking at the candidates: inspect (the web app), gallery, grades export.

The candidates shown are the scan's done partitions' candidates ranked by ensemble_score:
with --min-score those at or above it, else with --top the N best, else those at or above the
scan's ensemble threshold (as `lensflow export`). Grades live in the scan folder's
grades.sqlite unless --db names a database URL.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from lensflow.cli.common import Verbose, app, command, console, set_logging

if TYPE_CHECKING:
    from lensflow.inspect.ranked import ScanCandidates

grades_app = typer.Typer(
    help="Export the grades given in `lensflow inspect`.", no_args_is_help=True
)
app.add_typer(grades_app, name="grades")

ScanDir = Annotated[Path, typer.Argument(help="A scan folder.", file_okay=False)]
Top = Annotated[int | None, typer.Option(help="Show the N best candidates.", min=1)]
MinScore = Annotated[
    float | None, typer.Option(help="Show candidates with ensemble_score >= this.")
]
Database = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Grades database URL (SQLAlchemy), e.g. postgresql+psycopg://user@host/lenses; "
        "default: sqlite in SCAN_DIR/grades.sqlite.",
        envvar="LENSFLOW_GRADES_DB",
    ),
]


def _candidates(scan_dir: Path, top: int | None, min_score: float | None) -> ScanCandidates:
    from lensflow.inspect.ranked import ScanCandidates

    if min_score is None and top is not None:
        min_score = 0.0  # --top alone: the N best, whatever the threshold
    return ScanCandidates(scan_dir, top=top, min_score=min_score)


@command(app, "inspect")
def inspect_command(
    scan_dir: ScanDir,
    top: Top = None,
    min_score: MinScore = None,
    db: Database = None,
    port: Annotated[
        int, typer.Option(help="Port on 127.0.0.1 (0: any free one).", min=0, max=65535)
    ] = 0,
    grader: Annotated[
        str | None, typer.Option(help="Your name as a grader (else the page asks once).")
    ] = None,
    verbose: Verbose = 0,
) -> None:
    """Serve the inspection app on 127.0.0.1: ranked candidates, zoom, keyboard grades.

    Keys: a/1 A (sure lens), b/2 B (probable), c/3 C (possible), 0/4 not a lens; arrows or j/k
    move, u undoes your last grade, z zooms. Ctrl-C stops the server; grades are kept.
    """
    from lensflow.inspect.app import create_app, make_app_server
    from lensflow.inspect.grades import GradeBook, database_url

    set_logging(verbose)
    candidates = _candidates(scan_dir, top, min_score)
    book = GradeBook(database_url(scan_dir, db))
    server = make_app_server(create_app(candidates, book, grader=grader), port=port)
    console.print(
        f"{len(candidates)} candidates of {escape(str(scan_dir))}; grades in {escape(book.url)}"
    )
    console.print(f"inspect at {server.url}  (Ctrl-C to stop)", markup=False, highlight=False)
    try:
        server.server.serve_forever()  # werkzeug's loop returns on Ctrl-C
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
        book.close()
    console.print("stopped; grades are kept")


@command(app, "gallery")
def gallery_command(
    scan_dir: ScanDir,
    out: Annotated[Path, typer.Argument(help="The HTML file to write.", dir_okay=False)],
    top: Top = None,
    min_score: MinScore = None,
    db: Database = None,
) -> None:
    """A static HTML page of the ranked candidates (images embedded) to share without a server.

    Shows the consensus grades where the grades database exists (--db or SCAN_DIR/grades.sqlite).
    """
    from lensflow.inspect.consensus import consensus
    from lensflow.inspect.gallery import write_gallery
    from lensflow.inspect.grades import DEFAULT_DB, GradeBook, database_url

    candidates = _candidates(scan_dir, top, min_score)
    agreed = None
    if db is not None or (scan_dir / DEFAULT_DB).exists():
        book = GradeBook(database_url(scan_dir, db))
        agreed = consensus(book.history())
        book.close()
    shown = write_gallery(candidates, out, agreed=agreed)
    console.print(f"gallery of {shown} candidates written to {escape(str(out))}")


@command(grades_app, "export")
def grades_export(
    scan_dir: ScanDir,
    out: Annotated[
        Path | None,
        typer.Argument(help="NAME.parquet, NAME.fits or NAME.csv: the graded candidates."),
    ] = None,
    fmt: Annotated[
        str | None, typer.Option("--format", help="parquet, fits or csv; must agree with OUT.")
    ] = None,
    zooniverse: Annotated[
        Path | None,
        typer.Option(
            help="Also write a Zooniverse subject set here: PNG composites and manifest.csv "
            "of the candidates selected by --top/--min-score.",
            file_okay=False,
        ),
    ] = None,
    top: Top = None,
    min_score: MinScore = None,
    db: Database = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing outputs.")] = False,
) -> None:
    """Export the graded candidates with their consensus (mean grade, graders, spread)."""
    from lensflow.errors import ConfigError
    from lensflow.inspect.consensus import consensus
    from lensflow.inspect.exports import export_grades, write_zooniverse
    from lensflow.inspect.grades import GradeBook, database_url

    if out is None and zooniverse is None:
        raise ConfigError("give OUT (a .parquet, .fits or .csv file), --zooniverse FOLDER, or both")
    book = GradeBook(database_url(scan_dir, db))
    agreed = consensus(book.history())
    book.close()
    if out is not None:
        every = _candidates(scan_dir, None, 0.0)  # every graded candidate, whatever its score
        report = export_grades(every, agreed, out, fmt=fmt, overwrite=overwrite)
        console.print(
            f"{report.rows} graded candidates written to {escape(str(out))}"
            + (
                f" ({report.unknown} graded ids not in this scan left out)"
                if report.unknown
                else ""
            )
        )
    if zooniverse is not None:
        subjects = write_zooniverse(
            _candidates(scan_dir, top, min_score), zooniverse, agreed=agreed, overwrite=overwrite
        )
        console.print(f"{subjects} Zooniverse subjects written to {escape(str(zooniverse))}")
