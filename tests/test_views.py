"""What the commands print: error and failure lines whole, tables with every row and total."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

from rich.console import Console

from lensflow import views
from lensflow.demo import DemoReport
from lensflow.errors import ConfigError
from lensflow.scan.plan import PlanRow
from lensflow.scan.run import ScanOutcome
from lensflow.scan.stages import PartitionResult
from lensflow.scan.state import Marker
from lensflow.sky import validate_pixel

# Longer than the 60 columns of the log console, with brackets rich would read as markup.
LONG_ERROR = (
    "catalog/Norder=3/Dir=0/Npix=123.parquet: no column 'r_kron' (mapped from [columns] "
    "mag_r); has ['dec', 'id', 'ra'] - install 'lensflow[train]' or fix the [catalog] table"
)


def log_console(width: int = 60) -> tuple[Console, io.StringIO]:
    """A console writing to a batch job's log: not a terminal, `width` columns."""
    out = io.StringIO()
    return Console(file=out, width=width), out


def failed(pixel: str, error: str) -> PartitionResult:
    order, number = pixel.split("/")
    marker = Marker(pixel=pixel, status="failed", error=error, error_kind="MissingColumnError")
    return PartitionResult(validate_pixel(int(order), int(number)), marker)


def done(pixel: str) -> PartitionResult:
    order, number = pixel.split("/")
    return PartitionResult(
        validate_pixel(int(order), int(number)), Marker(pixel=pixel, status="done")
    )


def test_error_is_one_whole_line_with_its_brackets() -> None:
    console, out = log_console()
    views.print_error(console, ConfigError(LONG_ERROR))
    assert out.getvalue() == f"error: {LONG_ERROR}\n"


def test_progress_prints_each_failed_partition_as_one_whole_line() -> None:
    console, out = log_console()
    with views.scan_progress(console) as hook:
        hook(0, 3, None)
        hook(1, 3, done("2/5"))
        hook(2, 3, failed("3/123", LONG_ERROR))
        hook(3, 3, failed("3/124", "worker killed"))
    lines = out.getvalue().splitlines()
    assert f"failed 3/123: {LONG_ERROR}" in lines
    assert "failed 3/124: worker killed" in lines
    assert not any("2/5" in line for line in lines)
    assert "3/3" in lines[-1], "the bar ends at the partitions finished"


def test_plan_table_totals_the_rows_and_counts_the_unreadable() -> None:
    rows = [
        PlanRow(validate_pixel(1, 4), rows=1_000, rows_after_cuts=250),
        PlanRow(validate_pixel(2, 17), rows=3_000, rows_after_cuts=750),
        PlanRow(validate_pixel(2, 18), rows=0, error="bad footer [magic]"),
    ]
    console, out = log_console()
    views.print_plan(console, "sky", rows, cut="(r < 21)", exact=True)
    text = out.getvalue()
    assert "sky: 3 partitions" in text
    assert "after cuts" in text
    for cells in (("1/4", "1,000", "250"), ("2/17", "3,000", "750"), ("2/18", "0", "-")):
        [line] = [line for line in text.splitlines() if f" {cells[0]} " in line]
        assert all(cell in line for cell in cells), line
    assert "bad footer [magic]" in text
    [total] = [line for line in text.splitlines() if "total" in line]
    assert "4,000" in total and "1,000 (25.00%)" in total and "1 unreadable" in total
    assert text.splitlines()[-2:] == ["cut: (r < 21)", "unreadable 2/18: bad footer [magic]"]


def test_plan_table_without_exact_has_no_cut_counts() -> None:
    rows = [PlanRow(validate_pixel(1, 4), rows=1_000)]
    console, out = log_console()
    console.print(views.plan_table("sky", rows, exact=False))
    assert "after cuts" not in out.getvalue()
    assert "%" not in out.getvalue()


def test_evaluation_lists_every_scorer_and_the_worst_class_first() -> None:
    metrics: dict[str, dict[str, Any]] = {
        "ensemble": {
            "auroc": 0.98765,
            "tpr0": 0.5,
            "tpr10": 0.75,
            "n_lenses": 1_200,
            "n_non_lenses": 30_000,
            "fpr_by_class": {"spiral": 0.001, "ring": 0.02, "merger": 0.005},
        },
        "member_a": {
            "auroc": 0.9,
            "tpr0": 0.25,
            "tpr10": 0.5,
            "n_lenses": 1_200,
            "n_non_lenses": 30_000,
        },
    }
    console, out = log_console()
    views.print_evaluation(console, "store.zarr", metrics)
    lines = out.getvalue().splitlines()
    [ensemble] = [line for line in lines if "ensemble" in line and "0.9877" in line]
    assert "0.500" in ensemble and "0.750" in ensemble and "30,000" in ensemble
    assert any("member_a" in line and "0.9000" in line for line in lines)
    fpr = out.getvalue().split("false-positive rate by class at the ensemble threshold: ")[1]
    assert " ".join(fpr.split()) == "ring 2.00%, merger 0.50%, spiral 0.10%"


def test_evaluation_without_classes_prints_no_class_rates() -> None:
    metrics: dict[str, dict[str, Any]] = {
        "ensemble": {"auroc": 1.0, "tpr0": 1.0, "tpr10": 1.0, "n_lenses": 1, "n_non_lenses": 1}
    }
    console, out = log_console()
    views.print_evaluation(console, "store.zarr", metrics)
    assert "false-positive" not in out.getvalue()


def test_scan_line_says_what_ran() -> None:
    outcome = ScanOutcome(output=Path("scan"), ran=7, skipped=3, failed=1, seconds=12.34)
    console, out = log_console()
    views.print_scan(console, outcome)
    assert " ".join(out.getvalue().split()) == (
        "ran 7 partitions (3 already done, 1 failed) in 12.3 s -> scan"
    )


def test_demo_report_gives_the_funnel_recovery_and_rate_per_core() -> None:
    totals = {
        "rows_read": 150_000,
        "rows_after_cuts": 11_395,
        "rows_after_photometry": 1_343,
        "candidates": 113,
        "rejected": {"missing_magnitude": 12},
    }
    report = DemoReport(
        outcome=ScanOutcome(output=Path("scan"), ran=28, skipped=0, failed=0, seconds=7.5),
        totals=totals,
        threshold=0.5,
        lenses=100,
        recovered=95,
        reached=97,
        cores=2,
        simulate_seconds=86.5,
        total_seconds=96.4,
        candidates=Path("candidates.parquet"),
        exported=113,
    )
    console, out = log_console(width=200)
    views.print_demo(console, report)
    lines = [" ".join(line.split()) for line in out.getvalue().splitlines()]
    assert "rows read 150,000" in lines
    assert "candidates (ensemble >= 0.5) 113" in lines
    assert "set aside: missing_magnitude 12" in lines
    assert "lenses: 95 of 100 injected recovered (97 reached the ensemble)" in lines
    assert any("in 7.5 s on 2 cores = 10,000 sources/s/core" in line for line in lines)
    assert "candidates: candidates.parquet (113 rows)" in lines


def test_plan_errors_are_whole_lines_only_off_a_terminal() -> None:
    error = "pixel 2/18: " + "a footer that a table cell would cut to its width " * 4
    rows = [PlanRow(validate_pixel(2, 18), rows=0, error=error)]
    log, out = log_console()
    views.print_plan(log, "sky", rows, cut="true", exact=False)
    assert f"unreadable 2/18: {error}" in out.getvalue().splitlines()
    terminal = Console(file=io.StringIO(), width=80, force_terminal=True, color_system=None)
    views.print_plan(terminal, "sky", rows, cut="true", exact=False)
    assert "unreadable 2/18" not in terminal.file.getvalue()  # type: ignore[attr-defined]
