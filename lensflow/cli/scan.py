"""Scanning: scan, rerun, plan, status, export and the demo."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lensflow import views
from lensflow.cli.common import (
    Insecure,
    Scheduler,
    Verbose,
    Workers,
    app,
    cluster_options,
    command,
    console,
    run_with_client,
    set_logging,
)


@command(app)
def scan(
    config: Annotated[
        Path, typer.Argument(help="Scan config (TOML).", exists=True, dir_okay=False)
    ],
    output: Annotated[Path | None, typer.Option(help="Scan folder (overrides \\[output]).")] = None,
    scheduler: Scheduler = None,
    insecure: Insecure = False,
    workers: Workers = None,
    verbose: Verbose = 0,
) -> None:
    """Scan a catalog: cuts, photometry, cutouts, ensemble, one candidate file per partition.

    Rerunning on the same folder resumes (done partitions are skipped); a changed config is
    refused with the difference. Exit status 0: all done; 2: some partitions failed; 1: the
    scan could not run.
    """
    from lensflow.config import ScanConfig
    from lensflow.scan.run import build_context, run_context
    from lensflow.scan.status import read_status

    set_logging(verbose)
    scan_config = ScanConfig.from_toml(config)
    if output is not None:
        scan_config = scan_config.model_copy(
            update={"output": scan_config.output.model_copy(update={"path": output.resolve()})}
        )
    scan_config = cluster_options(scan_config, scheduler, workers)
    context = build_context(scan_config)  # every input checked before a cluster starts
    outcome = run_with_client(
        scan_config, insecure, lambda c, hook: run_context(context, client=c, progress=hook)
    )
    views.print_scan(console, outcome)
    views.print_status(console, read_status(outcome.output), per_partition=False)
    raise typer.Exit(outcome.exit_status)


@command(app)
def rerun(
    scan_dir: Annotated[Path, typer.Argument(help="An existing scan folder.", file_okay=False)],
    pixels: Annotated[str, typer.Option(help="Partitions to redo, ORDER/PIXEL, e.g. 3/123,4/511.")],
    scheduler: Scheduler = None,
    insecure: Insecure = False,
    workers: Workers = None,
    verbose: Verbose = 0,
) -> None:
    """Run chosen partitions of a scan again, replacing their candidate files atomically."""
    from lensflow.scan import rerun_scan
    from lensflow.scan.state import load_scan_config
    from lensflow.sky import parse_pixels

    set_logging(verbose)
    chosen = parse_pixels(pixels)
    config = cluster_options(load_scan_config(scan_dir), scheduler, workers)
    outcome = run_with_client(
        config, insecure, lambda c, hook: rerun_scan(scan_dir, chosen, client=c, progress=hook)
    )
    views.print_rerun(console, outcome)
    raise typer.Exit(outcome.exit_status)


@command(app)
def plan(
    config: Annotated[
        Path,
        typer.Argument(help="Scan config; only \\[catalog], \\[cuts] and \\[sky] are used."),
    ],
    exact: Annotated[
        bool, typer.Option(help="Count rows after cuts with a cuts-only pass.")
    ] = False,
    scheduler: Scheduler = None,
    insecure: Insecure = False,
    workers: Workers = None,
    verbose: Verbose = 0,
) -> None:
    """List the partitions a scan reads (those \\[sky] touches) and their rows before a scan.

    With --exact, also the rows after cuts (and, with \\[sky], those of them inside the region).
    """
    from lensflow.catalog import open_inputs
    from lensflow.cluster import connect
    from lensflow.config import PlanConfig
    from lensflow.scan.plan import plan_inputs

    set_logging(verbose)
    plan_config = cluster_options(PlanConfig.from_toml(config), scheduler, workers)
    inputs = open_inputs(plan_config)
    if exact:
        with connect(plan_config.cluster, insecure=insecure) as client:
            rows = plan_inputs(inputs, client=client)
    else:
        rows = plan_inputs(inputs)
    views.print_plan(console, inputs.title, rows, cut=inputs.cut.canonical, exact=exact)


@command(app)
def status(
    scan_dir: Annotated[Path, typer.Argument(help="A scan folder.", file_okay=False)],
    json_out: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """The funnel per partition and in total, and failures with their errors."""
    from lensflow.scan.status import read_status

    scan_status = read_status(scan_dir)
    if json_out:
        views.print_json({"totals": scan_status.totals})
        return
    views.print_status(console, scan_status, per_partition=True)
    raise typer.Exit(2 if scan_status.failed else 0)


@command(app)
def export(
    scan_dir: Annotated[Path, typer.Argument(help="A scan folder.", file_okay=False)],
    out: Annotated[Path, typer.Argument(help="Output file (or folder for --format hats).")],
    fmt: Annotated[str, typer.Option("--format", help="parquet, fits, csv or hats.")] = "parquet",
    min_score: Annotated[
        float | None, typer.Option(help="Keep ensemble_score >= this (default: the threshold).")
    ] = None,
) -> None:
    """Export the candidates of every finished partition, ranked by ensemble score."""
    from lensflow.scan.export import export_scan

    rows, used = export_scan(scan_dir, out, fmt=fmt, min_score=min_score)
    views.print_export(console, rows, min_score=used, out=out)


@command(app)
def demo(
    folder: Annotated[Path, typer.Option("--dir", help="Where the mock sky and scan go.")] = Path(
        "demo"
    ),
    sources: Annotated[int, typer.Option(help="Sources in the mock sky.")] = 150_000,
    lenses: Annotated[int, typer.Option(help="Lenses injected.")] = 100,
    seed: Annotated[int, typer.Option(help="Mock sky seed.")] = 42,
    workers: Workers = 2,
    verbose: Verbose = 0,
) -> None:
    """Simulate a mock sky (unless present), scan it on a local cluster, export, report."""
    from lensflow.demo import run_demo

    set_logging(verbose)
    report = run_demo(
        folder, sources=sources, lenses=lenses, seed=seed, workers=workers, console=console
    )
    views.print_demo(console, report)
    raise typer.Exit(report.exit_status)
