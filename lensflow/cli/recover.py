"""`lensflow recover`: known lenses cross-matched with a scan's candidates.

KNOWN is a HATS catalog folder, a .parquet/.fits/.csv table with ra, dec (degrees), or a mock
sky folder (its injected lenses, with theta_E and arc signal-to-noise for completeness bins).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from lensflow.cli.common import Verbose, app, command, console, set_logging

if TYPE_CHECKING:
    from lensflow.recover import Recovery

SHOWN = 20
"""Known lenses listed on the terminal (the table on disk has them all)."""


@command(app, "recover")
def recover_command(
    scan_dir: Annotated[Path, typer.Argument(help="A scan folder.", file_okay=False)],
    known: Annotated[
        Path,
        typer.Argument(
            help="Known lenses: a HATS catalog, a .parquet/.fits/.csv table with ra, dec "
            "(degrees), or a mock sky folder (its injected lenses)."
        ),
    ],
    radius: Annotated[float, typer.Option("--radius", help="Match radius, arcsec.", min=0.0)] = 1.0,
    out: Annotated[
        Path | None,
        typer.Option(
            help="Write the report here (NAME.parquet or NAME.csv) with its figure NAME.png "
            "beside it, and NAME_completeness.* where the known lenses have theta_E or arc_snr.",
            dir_okay=False,
        ),
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace existing report files.")] = False,
    verbose: Verbose = 0,
) -> None:
    """Which known lenses the scan recovered, with scores and ranks, and where it lost the rest."""
    from lensflow.recover import read_known, recover, write_recovery

    set_logging(verbose)
    report = recover(scan_dir, read_known(known), radius_arcsec=radius)
    print_recovery(report)
    if out is not None:
        files = write_recovery(report, out, overwrite=overwrite)
        written = [files.table, files.plot, files.completeness]
        console.print(
            "written: " + ", ".join(escape(str(p)) for p in written if p is not None),
            highlight=False,
        )


def print_recovery(report: Recovery) -> None:
    """Counts per funnel stage, then the known lenses best first (recovered, then missed)."""
    lenses = report.lenses
    console.print(
        f"[bold]{report.recovered} of {len(lenses)}[/] known lenses recovered "
        f'(ensemble >= {report.threshold:g}; match {report.radius_arcsec:g}"; '
        f"{report.scored:,} candidates scored in {report.partitions_done} of "
        f"{report.partitions} partitions)"
    )
    console.print(
        "  " + ", ".join(f"{stage} {n}" for stage, n in report.counts.items() if n),
        highlight=False,
    )
    table = Table(title=f"known lenses (first {min(SHOWN, len(lenses))} of {len(lenses)})")
    shown = [
        c
        for c in ("name", "stage", "rank", "ensemble_score", "sep_arcsec", "theta_E", "arc_snr")
        if c in lenses
    ]
    for column in shown:
        left = column in ("name", "stage")
        table.add_column(
            column.replace("ensemble_score", "score").replace("sep_arcsec", 'sep"'),
            justify="left" if left else "right",
            no_wrap=column == "name",
            overflow="fold",
        )
    order = lenses.assign(_by=lenses["rank"].fillna(len(lenses) + report.scored + 1))
    for _, row in order.sort_values("_by", kind="stable").head(SHOWN).iterrows():
        table.add_row(*[_cell(row[c]) for c in shown])
    console.print(table)


def _cell(value: object) -> str:
    if value is None or str(value) in ("<NA>", "nan"):
        return "-"
    if isinstance(value, float):
        return f"{value:.4g}"
    return escape(str(value))
