"""Scanning: scan, rerun, plan, status, export and the demo.

Every input (config, catalog, cut, pixels, models, cutouts, output folder) is checked before a
cluster is started or joined, so a mistake is one line with no dashboard link or progress bar
before it. Exit statuses are those of lensflow.errors.EXIT_CODES.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

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
    joined,
    run_with_client,
    set_logging,
)
from lensflow.errors import (
    EXIT_INCOMPLETE,
    EXIT_OK,
    EXIT_PARTIAL,
    CatalogError,
    ConfigError,
    Interrupted,
    LensflowError,
    PixelError,
)

if TYPE_CHECKING:
    from lensflow.catalog import Catalog
    from lensflow.config import PlanConfig
    from lensflow.scan.stages import ScanContext
    from lensflow.sky import HealpixPixel

ConfigFile = Annotated[
    Path, typer.Argument(help="Scan config (TOML).", exists=True, dir_okay=False)
]
Partial = Annotated[
    bool,
    typer.Option(
        "--partial",
        help="Accept an incomplete scan: use (and say so) the partitions done, exit 0.",
    ),
]


@command(app)
def scan(
    config: ConfigFile,
    output: Annotated[Path | None, typer.Option(help="Scan folder (overrides \\[output]).")] = None,
    scheduler: Scheduler = None,
    insecure: Insecure = False,
    workers: Workers = None,
    verbose: Verbose = 0,
) -> None:
    """Scan a catalog: cuts, photometry, cutouts, ensemble, one candidate file per partition.

    Rerunning on the same folder resumes (done partitions are skipped); a changed config is
    refused with the difference. Exit status 0: all done; 2: some partitions failed; 130:
    interrupted (rerun to resume); others: see the README's table.
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
    try:
        outcome = run_with_client(
            scan_config, insecure, lambda c, hook: run_context(context, client=c, progress=hook)
        )
    except KeyboardInterrupt:
        raise interrupted(context.output) from None
    finally:
        release(context)
    views.print_scan(console, outcome)
    views.print_status(console, read_status(outcome.output), per_partition=False)
    raise typer.Exit(outcome.exit_status)


@command(app)
def rerun(
    scan_dir: Annotated[Path, typer.Argument(help="An existing scan folder.", file_okay=False)],
    pixels: Annotated[str, typer.Option(help="Partitions to redo, ORDER/PIXEL, e.g. 1/33,2/140.")],
    scheduler: Scheduler = None,
    insecure: Insecure = False,
    workers: Workers = None,
    verbose: Verbose = 0,
) -> None:
    """Run chosen partitions of a scan again, replacing their candidate files atomically.

    `lensflow status SCAN_DIR` lists the partitions (and which failed).
    """
    from lensflow.scan.run import build_context, run_context
    from lensflow.scan.state import load_scan_config
    from lensflow.sky import parse_pixels

    set_logging(verbose)
    chosen = parse_pixels(pixels)
    config = cluster_options(load_scan_config(scan_dir), scheduler, workers)
    config = config.model_copy(
        update={"output": config.output.model_copy(update={"path": scan_dir.resolve()})}
    )
    context = build_context(config, forced=chosen)  # inputs checked before a cluster starts
    try:
        require_pixels(
            context.catalog, chosen, scan_dir=scan_dir, region=context.region is not None
        )
        outcome = run_with_client(
            config,
            insecure,
            lambda c, hook: run_context(context, client=c, pixels=chosen, progress=hook),
        )
    except KeyboardInterrupt:
        raise interrupted(context.output) from None
    finally:
        release(context)
    views.print_rerun(console, outcome)
    raise typer.Exit(outcome.exit_status)


def release(context: ScanContext) -> None:
    """Give up the scan folder's lock where run_context never ran (a failed join, Ctrl-C)."""
    if context.lock is not None:
        context.lock.release()  # a second release does nothing


def require_pixels(
    catalog: Catalog, chosen: list[HealpixPixel], *, scan_dir: Path, region: bool
) -> None:
    """Refuse pixels the scan does not cover, naming a few it does."""
    from lensflow.sky import pixel_key

    absent = [p for p in chosen if p not in catalog.pixels]
    if not absent:
        return
    some = ", ".join(pixel_key(p) for p in catalog.pixels[:5])
    more = f" and {len(catalog.pixels) - 5} more" if len(catalog.pixels) > 5 else ""
    where = " (those its [sky] region touches)" if region else ""
    raise PixelError(
        f"{', '.join(pixel_key(p) for p in absent)}: not a partition of the scan in {scan_dir}; "
        f"it has {len(catalog.pixels)}{where}: {some}{more} (`lensflow status {scan_dir}` "
        "lists them)"
    )


def interrupted(scan_dir: Path) -> Interrupted:
    """The one line of a Ctrl-C: how far the scan got, and that a rerun resumes."""
    from lensflow.scan.status import read_status

    try:
        state = read_status(scan_dir).completeness
        done = f"{len(state.done)} of {state.expected} partitions done"
    except LensflowError:  # a marker mid-write: the count is unknown, the advice holds
        done = "the partitions done are kept"
    return Interrupted(f"interrupted: {done}; rerun the same command to resume")


@command(app)
def plan(
    config: Annotated[
        Path,
        typer.Argument(
            help="Scan config; only \\[catalog], \\[cuts] and \\[sky] are used.",
            exists=True,
            dir_okay=False,
        ),
    ],
    exact: Annotated[
        bool, typer.Option(help="Count rows after cuts with a cuts-only pass.")
    ] = False,
    estimate: Annotated[
        bool,
        typer.Option(
            help="Estimate the whole scan (funnel, wall time, core-hours) from a short "
            "calibration run of a few partitions through every stage on the cluster."
        ),
    ] = False,
    json_out: Annotated[bool, typer.Option("--json", help="With --estimate: as JSON.")] = False,
    scheduler: Scheduler = None,
    insecure: Insecure = False,
    workers: Workers = None,
    verbose: Verbose = 0,
) -> None:
    """List the partitions a scan reads (those \\[sky] touches) and their rows before a scan.

    With --exact, also the rows after cuts (and, with \\[sky], those of them inside the region).
    With --estimate (which needs the whole scan config), the expected funnel, wall time and
    core-hours. Unreadable partitions are listed with their errors and the exit status is 65.
    """
    from lensflow.catalog import open_inputs
    from lensflow.config import PlanConfig
    from lensflow.scan.plan import plan_inputs

    set_logging(verbose)
    plan_config = cluster_options(PlanConfig.from_toml(config), scheduler, workers)
    if json_out and not estimate:
        raise typer.BadParameter("goes with --estimate", param_hint="--json")
    if estimate:
        return _estimate(config, plan_config, insecure=insecure, json_out=json_out)
    inputs = open_inputs(plan_config)
    if exact:
        with joined(plan_config.cluster, insecure=insecure) as client:
            rows = plan_inputs(inputs, client=client)
    else:
        rows = plan_inputs(inputs)
    views.print_plan(console, inputs.title, rows, cut=inputs.cut.canonical, exact=exact)
    unreadable = [r for r in rows if r.error is not None]
    if unreadable:
        from lensflow.sky import pixel_key

        names = ", ".join(pixel_key(r.pixel) for r in unreadable)
        raise CatalogError(
            f"{len(unreadable)} of {len(rows)} partitions unreadable: {names}; fix or restore "
            "their files (the errors are listed above)"
        )


def _estimate(path: Path, plan_config: PlanConfig, *, insecure: bool, json_out: bool) -> None:
    from lensflow.config import ScanConfig
    from lensflow.scan.estimate import estimate_scan

    if plan_config.cutouts is None:
        raise ConfigError(
            f"{path}: --estimate runs every stage, so it needs a [cutouts] section naming the "
            "cutout store"
        )
    scan_config = ScanConfig.from_toml(path).model_copy(update={"cluster": plan_config.cluster})
    result = estimate_scan(
        scan_config, connect=lambda: joined(scan_config.cluster, insecure=insecure)
    )
    if json_out:
        views.print_json(result.as_dict())
    else:
        name = str(plan_config.catalog.path).rstrip("/").rsplit("/", 1)[-1]
        views.print_estimate(console, result, title=name)


@command(app)
def status(
    scan_dir: Annotated[Path, typer.Argument(help="A scan folder.", file_okay=False)],
    json_out: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    partial: Partial = False,
) -> None:
    """The funnel per partition and in total, completeness, and failures with their errors.

    Exit status 0: every partition done; 2: all ran, some failed; 3: some never finished
    (missing); with --partial, 0 whenever the folder could be read.
    """
    from lensflow.scan.status import read_status

    scan_status = read_status(scan_dir)
    state = scan_status.completeness
    if json_out:
        views.print_json({"totals": scan_status.totals, "partitions": state.as_dict()})
    else:
        views.print_status(console, scan_status, per_partition=True)
    if partial or state.complete:
        raise typer.Exit(EXIT_OK)
    raise typer.Exit(EXIT_INCOMPLETE if state.missing else EXIT_PARTIAL)


@command(app)
def export(
    scan_dir: Annotated[Path, typer.Argument(help="A scan folder.", file_okay=False)],
    out: Annotated[
        Path,
        typer.Argument(
            help="Output: NAME.parquet, NAME.fits, NAME.csv, or a folder (no suffix) for a "
            "HATS catalog."
        ),
    ],
    fmt: Annotated[
        str | None,
        typer.Option("--format", help="parquet, fits, csv or hats; must agree with the suffix."),
    ] = None,
    min_score: Annotated[
        float | None, typer.Option(help="Keep ensemble_score >= this (default: the threshold).")
    ] = None,
    partial: Partial = False,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing output (a HATS folder swapped whole).")
    ] = False,
) -> None:
    """Export the candidates of a finished scan, ranked by ensemble score.

    An incomplete scan (partitions failed or missing) is refused with exit status 3 unless
    --partial is given; an existing output is kept unless --overwrite is given.
    """
    from lensflow.errors import OutputError
    from lensflow.scan.export import export_scan_report

    if _inside(out.resolve(), scan_dir.resolve()) or _inside(scan_dir.resolve(), out.resolve()):
        raise OutputError(
            f"{out}: inside the scan folder {scan_dir} (or holds it); export elsewhere"
        )
    report = export_scan_report(
        scan_dir, out, fmt=fmt, min_score=min_score, partial=partial, overwrite=overwrite
    )
    views.print_export(
        console,
        report.rows,
        min_score=report.min_score,
        out=out,
        partial=report.completeness.summary if report.partial else None,
    )


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


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
