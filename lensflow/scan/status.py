"""`lensflow status`: the funnel per partition and in total, and failures with their errors."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

from lensflow.errors import ScanStateError
from lensflow.scan.state import CONFIG_FILE, funnel_totals, read_markers

FUNNEL = ("rows_read", "rows_after_cuts", "rows_after_photometry", "candidates")


def print_status(scan_dir: Path, *, console: Console, per_partition: bool = True) -> int:
    """Print the funnel; returns the number of failed partitions."""
    if not (scan_dir / CONFIG_FILE).exists():
        raise ScanStateError(f"{scan_dir}: not a scan folder (no {CONFIG_FILE})")
    markers = read_markers(scan_dir)
    totals = funnel_totals(markers)
    if per_partition:
        table = Table(title=f"{scan_dir}: {totals['partitions']} partitions")
        table.add_column("pixel")
        table.add_column("status")
        for name in ("read", "after cuts", "after photometry", "candidates"):
            table.add_column(name, justify="right")
        table.add_column("rejected")
        for m in markers:
            rejected = ", ".join(f"{k} {v}" for k, v in sorted(m.rejected.items()))
            table.add_row(
                m.pixel,
                m.status,
                *(f"{getattr(m, key):,}" for key in FUNNEL),
                rejected,
            )
        console.print(table)
    read = max(totals["rows_read"], 1)
    console.print(
        "funnel: "
        + " -> ".join(
            f"{totals[key]:,} {label}"
            for key, label in zip(
                FUNNEL, ("read", "after cuts", "after photometry", "candidates"), strict=True
            )
        )
        + f"  ({totals['candidates'] / read:.2e} of rows read)"
    )
    if totals["rejected"]:
        console.print(
            "rows set aside: "
            + ", ".join(f"{k} {v:,}" for k, v in sorted(totals["rejected"].items()))
        )
    console.print(f"partitions: {totals.get('done', 0)} done, {totals.get('failed', 0)} failed")
    for m in markers:
        if m.status == "failed":
            console.print(f"[red]failed[/] {m.pixel} ({m.error_kind}): {m.error}", highlight=False)
    return int(totals.get("failed", 0))
