"""What the commands print: errors, scan progress, tables and summaries, drawn with rich.

Each view takes a result and a console and prints it; the builders of tables and lines return
rich renderables, so they can be checked without a terminal. Text that comes from data (error
messages, paths) is never read as rich markup, so brackets in it are printed as they are.
Errors and failed partitions are printed as whole lines (never wrapped), since a batch job's
log is read with grep.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from rich.text import Text

from lensflow.sky import pixel_key

if TYPE_CHECKING:
    from lensflow.demo import DemoReport
    from lensflow.images import BuildReport, PartitionReport
    from lensflow.images.driver import Progress as BuildProgress
    from lensflow.scan.estimate import Estimate
    from lensflow.scan.plan import PlanRow
    from lensflow.scan.run import ProgressHook, ScanOutcome
    from lensflow.scan.stages import PartitionResult
    from lensflow.scan.status import ScanStatus
    from lensflow.simulate import TrainingSet
    from lensflow.simulate.mock_sky import MockSky
    from lensflow.train.calibrate import Calibrated
    from lensflow.train.quantize import Quantized

METRIC_COLUMNS = ("scorer", "AUROC", "TPR0", "TPR10", "lenses", "non-lenses")


def error_line(exc: Exception) -> Text:
    """`error: <message>`, the message exactly as raised."""
    return Text.assemble(("error:", "bold red"), " ", str(exc))


def print_error(console: Console, exc: Exception) -> None:
    """The one line a command prints when it cannot run."""
    console.print(error_line(exc), soft_wrap=True)


def print_usage_error(console: Console, message: str, command: str | None) -> None:
    """`error: <message> (see `<command> --help`)`: a wrong option or argument, one line."""
    hint = f" (see `{command} --help`)" if command else ""
    console.print(Text.assemble(("error:", "bold red"), f" {message}{hint}"), soft_wrap=True)


def failure_line(result: PartitionResult) -> Text:
    """`failed ORDER/PIXEL: <error>` for a partition that failed during a scan."""
    return Text.assemble(("failed", "red"), f" {result.marker.pixel}: {result.marker.error}")


@contextmanager
def _partition_progress(console: Console, what: str) -> Iterator[tuple[Progress, TaskID]]:
    with Progress(
        TextColumn(f"[bold]{what}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=console,
    ) as progress:
        yield progress, progress.add_task("partitions", total=None)


@contextmanager
def scan_progress(console: Console) -> Iterator[ProgressHook]:
    """A progress bar over the partitions; failed partitions are printed as they finish."""
    with _partition_progress(console, "scan") as (progress, task):

        def hook(done: int, total: int, result: PartitionResult | None) -> None:
            progress.update(task, completed=done, total=total)
            if result is not None and not result.ok:
                progress.console.print(failure_line(result), soft_wrap=True)

        yield hook


@contextmanager
def build_progress(console: Console) -> Iterator[BuildProgress]:
    """A progress bar over a cutout build's partitions; failures printed as whole lines."""
    with _partition_progress(console, "cutouts") as (progress, task):

        def hook(done: int, total: int, report: PartitionReport | None) -> None:
            progress.update(task, completed=done, total=total)
            if report is not None and not report.ok:
                line = Text.assemble(
                    ("failed", "red"), f" {pixel_key(report.pixel)}: {report.error}"
                )
                progress.console.print(line, soft_wrap=True)

        yield hook


def print_build(console: Console, report: BuildReport, *, report_path: Path) -> None:
    """What a cutout build wrote and set aside, with the report that lists the ids."""
    totals = report.totals()
    console.print(
        Text(
            f"cutouts: {totals['written']:,} stamps of {totals['rows']:,} rows in "
            f"{totals['partitions']} partitions ({len(report.skipped)} already done, "
            f"{len(totals['failed'])} failed) -> {report.store}"
        ),
        soft_wrap=True,
    )
    if totals["rejected"]:
        aside = ", ".join(f"{k} {v:,}" for k, v in sorted(totals["rejected"].items()))
        console.print(Text(f"rows without a stamp: {aside} (ids in {report_path})"), soft_wrap=True)
    for tile, why in sorted(totals["bad_tiles"].items()):
        console.print(Text.assemble(("bad tile", "red"), f" {tile}: {why}"), soft_wrap=True)


def print_dashboard(console: Console, link: str | None) -> None:
    """The cluster dashboard's address, when it serves one."""
    if link:
        console.print(f"dashboard: {link}", markup=False)


def print_scan(console: Console, outcome: ScanOutcome) -> None:
    """What a scan run did, in one line."""
    console.print(
        f"ran {outcome.ran} partitions ({outcome.skipped} already done, {outcome.failed} failed) "
        f"in {outcome.seconds:.1f} s -> {outcome.output}",
        markup=False,
    )


def print_rerun(console: Console, outcome: ScanOutcome) -> None:
    """What a rerun did, in one line."""
    console.print(f"reran {outcome.ran} partitions, {outcome.failed} failed")


def plan_table(title: str, rows: Sequence[PlanRow], *, exact: bool) -> Table:
    """One row per partition (rows, rows after cuts and in the region when counted, why
    unreadable), and a total."""
    from lensflow.sky import pixel_key

    counts = ["rows_after_cuts"] if exact else []
    if exact and any(r.rows_in_region is not None for r in rows):
        counts.append("rows_in_region")
    table = Table(title=escape(f"{title}: {len(rows)} partitions"))
    table.add_column("pixel")
    table.add_column("rows", justify="right")
    for key in counts:
        table.add_column(key.removeprefix("rows_").replace("_", " "), justify="right")
    table.add_column("note")
    for row in rows:
        cells = [pixel_key(row.pixel), f"{row.rows:,}"]
        for key in counts:
            count = getattr(row, key)
            cells.append("-" if count is None else f"{count:,}")
        cells.append(row.error or "")
        table.add_row(*(escape(cell) for cell in cells))
    total = sum(r.rows for r in rows)
    cells = ["total", f"{total:,}"]
    for key in counts:
        summed = sum(getattr(r, key) or 0 for r in rows)
        cells.append(f"{summed:,} ({summed / max(total, 1):.2%})")
    table.add_row(*cells, f"{sum(r.error is not None for r in rows)} unreadable")
    return table


def print_plan(
    console: Console, title: str, rows: Sequence[PlanRow], *, cut: str, exact: bool
) -> None:
    """The plan's table, then the cut as it is applied.

    Off a terminal (a log), each unreadable partition's error is also printed as a whole line
    under the table, since a table cell cuts it to the column's width.
    """
    console.print(plan_table(title, rows, exact=exact))
    console.print(f"cut: {cut}", markup=False)
    if not console.is_terminal:
        for row in rows:
            if row.error is not None:
                line = Text.assemble(("unreadable", "red"), f" {pixel_key(row.pixel)}: {row.error}")
                console.print(line, soft_wrap=True)


def print_estimate(console: Console, estimate: Estimate, *, title: str) -> None:
    """`plan --estimate`'s table: the whole scan's expected funnel, time and cost."""
    table = Table(title=escape(f"{title}: estimated scan"))
    table.add_column("quantity")
    table.add_column("estimate", justify="right")
    for quantity, value in estimate.summary():
        table.add_row(escape(quantity), escape(value))
    console.print(table)


def print_json(data: Mapping[str, Any]) -> None:
    """Indented JSON on stdout, unstyled, for other programs to read."""
    print(json.dumps(data, indent=1))


def print_export(
    console: Console, rows: int, *, min_score: float, out: Path, partial: str | None = None
) -> None:
    """How many candidates an export wrote, and where; `partial` says how much of the scan."""
    console.print(f"{rows} candidates with ensemble_score >= {min_score:g} -> {out}", markup=False)
    if partial is not None:
        console.print(Text(f"partial export: {partial}"), soft_wrap=True)


def print_written(console: Console, what: str, path: Path) -> None:
    """`<what> -> <path>` for a file a command made."""
    console.print(f"{what} -> {path}", markup=False)


def print_mock_sky(console: Console, sky: MockSky, *, sources: int) -> None:
    """What a mock sky holds and the command that scans it."""
    console.print(
        f"{sources} sources in {len(sky.pixels)} partitions, {len(sky.lens_ids)} lenses -> "
        f"{sky.root}\nscan it: lensflow scan {sky.config}",
        markup=False,
    )


def print_training_set(console: Console, made: TrainingSet) -> None:
    """How many lenses and non-lenses a training set holds, and where."""
    console.print(
        f"{made.n_lenses} lenses + {made.n_non_lenses} non-lenses -> {made.store}", markup=False
    )


def print_trained(console: Console, what: str, manifest: Path) -> None:
    """Which models a training run wrote, and their manifest."""
    console.print(f"{what} written; manifest {manifest}", markup=False)


def evaluation_table(title: str, metrics: Mapping[str, Mapping[str, Any]]) -> Table:
    """AUROC, TPR0, TPR10 and the numbers of lenses and non-lenses, one row per scorer."""
    table = Table(title=escape(title))
    for column in METRIC_COLUMNS:
        table.add_column(column, justify="left" if column == "scorer" else "right")
    for name, m in metrics.items():
        table.add_row(
            name,
            f"{m['auroc']:.4f}",
            f"{m['tpr0']:.3f}",
            f"{m['tpr10']:.3f}",
            f"{m['n_lenses']:,}",
            f"{m['n_non_lenses']:,}",
        )
    return table


def print_evaluation(
    console: Console, title: str, metrics: Mapping[str, Mapping[str, Any]]
) -> None:
    """The metrics table, then the ensemble's false-positive rate by class when known."""
    console.print(evaluation_table(title, metrics))
    fpr: Mapping[str, float] | None = metrics["ensemble"].get("fpr_by_class")
    if fpr:
        console.print(
            "false-positive rate by class at the ensemble threshold: "
            + ", ".join(f"{k} {v:.2%}" for k, v in sorted(fpr.items(), key=lambda kv: -kv[1])),
            markup=False,
        )
    rates = {n: m["at_completeness"] for n, m in metrics.items() if "at_completeness" in m}
    if rates:
        console.print(class_rates_table(rates))


def class_rates_table(rates: Mapping[str, Mapping[str, Any]]) -> Table:
    """Each scorer's false-positive rate per contaminant class at the threshold that keeps the
    same fraction of lenses (a column per scorer, the worst class of the first scorer first)."""
    names = list(rates)
    first = rates[names[0]]
    table = Table(
        title=f"false-positive rate by class at {first['completeness']:.0%} completeness",
    )
    table.add_column("class")
    for name in names:
        table.add_column(name, justify="right")
    classes = sorted(first["fpr_by_class"], key=lambda c: -first["fpr_by_class"][c])
    table.add_row("threshold", *(f"{rates[n]['threshold']:.4g}" for n in names))
    for cls in classes:
        table.add_row(cls, *(_rate(rates[n]["fpr_by_class"].get(cls)) for n in names))
    table.add_row("all", *(_rate(rates[n]["fpr"]) for n in names))
    return table


def _rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3%}"


def _cell(value: float | None, form: str) -> str:
    return "-" if value is None else format(value, form)


def purity_table(purity: Mapping[str, Any], key: str) -> Table:
    """One purity table of a PurityReport.as_dict(): by_threshold, by_completeness or by_rank.

    Narrow enough for 80 columns: print_purity says what the short headers mean.
    """
    calibrated = purity["thresholds_on"] == "p_lens"
    first = {
        "by_threshold": "p_lens>=" if calibrated else "score>=",
        "by_completeness": "kept",
        "by_rank": "list",
    }[key]
    table = Table(
        title=escape(f"{key.removeprefix('by_')} at prior {purity['prior']:g}"),
        box=box.SIMPLE_HEAD,
        pad_edge=False,
    )
    columns = [first, "score>=", "TPR", "FPR", "FP", "purity", "low95", "/10^6"]
    columns += ["<p_lens>"] if calibrated else []
    for column in columns:
        table.add_column(column, justify="right", no_wrap=True)
    for label, row in purity[key].items():
        cells = [
            str(label),
            _cell(row["threshold"], ".4g"),
            f"{row['completeness']:.3f}",
            f"{row['fpr']:.1e}",
            f"{row['false_positives']}",
            _cell(row["purity"], ".3f"),
            _cell(row["purity_lower95"], ".3f"),
            f"{row['candidates_per_million']:.1f}",
        ]
        if calibrated:
            cells.append(_cell(row.get("mean_p_lens"), ".3f"))
        table.add_row(*cells)
    return table


def print_purity(console: Console, purity: Mapping[str, Any]) -> None:
    """Purity and completeness per threshold, per completeness and per rank, with set sizes."""
    console.print(
        f"purity at prior lens rate {purity['prior']:g} on {purity['n_lenses']:,} lenses and "
        f"{purity['n_non_lenses']:,} non-lenses (one false positive is an FPR of "
        f"{1 / max(purity['n_non_lenses'], 1):.1e}). score: the ensemble score; TPR: "
        "completeness; low95: purity at the FPR's 95 % upper bound; /10^6: candidates per "
        "10^6 sources scanned; list: the longest list per 10^6 sources"
        + (
            "; <p_lens>: the selection's mean p_lens" if purity["thresholds_on"] == "p_lens" else ""
        ),
        markup=False,
    )
    for key in ("by_threshold", "by_completeness", "by_rank"):
        console.print(purity_table(purity, key))
    if purity.get("calibration_error") is not None:
        console.print(
            f"p_lens calibration error at the set's own lens fraction: "
            f"{purity['calibration_error']:.4f}",
            markup=False,
        )


def print_calibration(console: Console, calibrated: Calibrated) -> None:
    """The fitted weights, the calibration's knots, the scorers on the fitting set and purity."""
    combination, calibration = calibrated.combination, calibrated.calibration
    weights = ", ".join(f"{k} {v:.3f}" for k, v in combination.weights.items())
    console.print(
        f"combination: bias {combination.bias:.3f}, weights {weights}; calibration: "
        f"{len(calibration.scores)} knots, lens fraction {calibration.lens_fraction:.4f} "
        f"-> {calibrated.manifest}",
        markup=False,
    )
    title = "on the fitting set (in-sample; evaluate on another set)"
    console.print(evaluation_table(title, calibrated.report.as_dict()))
    print_purity(console, calibrated.purity.as_dict())


def quantized_table(quantized: Quantized) -> Table:
    """Each member's and the ensemble's int8 against float32 on the held-out set."""
    table = Table(title="int8 against float32 on the held-out set")
    columns = ("scorer", "Spearman", "same side", "AUROC f32/i8", "TPR10 f32/i8", "speed-up")
    for column in columns:
        table.add_column(column, justify="left" if column == "scorer" else "right")
    rows = {name: v.agreement for name, v in quantized.variants.items()}
    for name, a in {**rows, "ensemble": quantized.ensemble}.items():
        speed = a.get("speed_up_one_thread")
        table.add_row(
            name,
            f"{a['spearman']:.4f}",
            f"{a['agreement_at_threshold']:.4f}",
            f"{a['auroc_float32']:.4f} / {a['auroc_int8']:.4f}",
            f"{a['tpr10_float32']:.3f} / {a['tpr10_int8']:.3f}",
            "" if speed is None else f"{speed:.2f}x",
        )
    return table


def print_quantized(console: Console, quantized: Quantized) -> None:
    """The variants written, the set they were measured on, and the agreement table."""
    a = quantized.ensemble
    console.print(
        f"int8 variants of {len(quantized.variants)} members -> {quantized.manifest}; measured "
        f"on {a['n_lenses']:,} lenses and {a['n_non_lenses']:,} non-lenses at threshold "
        f"{a['threshold']:g}",
        markup=False,
        highlight=False,
    )
    console.print(quantized_table(quantized))


def print_demo(console: Console, report: DemoReport) -> None:
    """The demo's funnel, the injected lenses recovered, the rate and the candidates file."""
    totals, outcome = report.totals, report.outcome
    console.print("\n[bold]funnel[/]")
    for label, key in (
        ("rows read", "rows_read"),
        ("after cuts", "rows_after_cuts"),
        ("after photometry", "rows_after_photometry"),
        (f"candidates (ensemble >= {report.threshold:g})", "candidates"),
    ):
        console.print(f"  {label:<32} {totals[key]:>10,}")
    if totals["rejected"]:
        console.print(
            "  set aside: " + ", ".join(f"{k} {v:,}" for k, v in sorted(totals["rejected"].items()))
        )
    console.print(
        f"[bold]lenses[/]: {report.recovered} of {report.lenses} injected recovered "
        f"({report.reached} reached the ensemble)"
    )
    console.print(
        f"scan: {outcome.ran} partitions ({outcome.failed} failed) in {outcome.seconds:.1f} s on "
        f"{report.cores} cores = "
        f"{totals['rows_read'] / outcome.seconds / max(report.cores, 1):,.0f} "
        f"sources/s/core end to end (cluster start excluded); simulation "
        f"{report.simulate_seconds:.1f} s; total {report.total_seconds:.1f} s"
    )
    console.print(f"candidates: {report.candidates} ({report.exported} rows)", markup=False)


def status_table(status: ScanStatus) -> Table:
    """One row per partition: status, the funnel's counts, rows set aside and why."""
    state = status.completeness
    table = Table(title=escape(f"{status.folder}: {state.summary}"))
    table.add_column("pixel")
    table.add_column("status")
    for _, label in status.funnel:
        table.add_column(label, justify="right")
    table.add_column("rejected")
    for m in status.markers:
        rejected = ", ".join(f"{k} {v}" for k, v in sorted(m.rejected.items()))
        counts = [getattr(m, key) for key, _ in status.funnel]
        table.add_row(
            m.pixel, m.status, *("-" if c is None else f"{c:,}" for c in counts), rejected
        )
    return table


def print_status(console: Console, status: ScanStatus, *, per_partition: bool = True) -> None:
    """The funnel in total (and per partition), completeness, then every failure in full.

    An incomplete scan says so first ("incomplete: N of M partitions done ..."), with the
    missing partitions named.
    """
    totals, state = status.totals, status.completeness
    if per_partition:
        console.print(status_table(status))
    read = max(totals["rows_read"], 1)
    steps = " -> ".join(f"{totals[key]:,} {label}" for key, label in status.funnel)
    console.print(
        Text(f"funnel: {steps}  ({totals['candidates'] / read:.2e} of rows read)"), soft_wrap=True
    )
    if totals["rejected"]:
        aside = ", ".join(f"{k} {v:,}" for k, v in sorted(totals["rejected"].items()))
        console.print(Text(f"rows set aside: {aside}"), soft_wrap=True)
    if state.complete:
        console.print(Text(f"complete: {state.summary}"), soft_wrap=True)
    else:
        line = Text.assemble(("incomplete:", "bold yellow"), f" {state.summary}")
        console.print(line, soft_wrap=True)
        if state.missing:
            console.print(Text(f"missing: {', '.join(state.missing)}"), soft_wrap=True)
        console.print(Text(f"to finish: {state.advice(status.folder)}"), soft_wrap=True)
    for m in status.markers:
        if m.status == "failed":
            line = Text.assemble(("failed", "red"), f" {m.pixel} ({m.error_kind}): {m.error}")
            console.print(line, soft_wrap=True)
