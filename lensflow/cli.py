"""`lensflow`: scan sky catalogs for strong lenses on a Dask cluster.

The commands are thin: each parses its options, calls one library function and prints. Only
this module reads the environment and configures logging.
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lensflow.errors import LensflowError

app = typer.Typer(
    help="Find strong gravitational lenses in HEALPix-partitioned (HATS) sky catalogs: catalog "
    "cuts, a photometry MLP and a CNN ensemble, run as one Dask task chain per partition.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
simulate_app = typer.Typer(
    help="Make mock skies, training sets and galleries.", no_args_is_help=True
)
train_app = typer.Typer(
    help="Train the shipped models (needs the \\[train] extra).", no_args_is_help=True
)
app.add_typer(simulate_app, name="simulate")
app.add_typer(train_app, name="train")

console = Console()
err = Console(stderr=True)

Verbose = Annotated[int, typer.Option("--verbose", "-v", count=True, help="-v info, -vv debug.")]
Scheduler = Annotated[
    str | None,
    typer.Option(
        help="Join an existing Dask scheduler (tcp://HOST:8786 or tls://...) instead of "
        "starting a local cluster on 127.0.0.1.",
        envvar="LENSFLOW_SCHEDULER",
    ),
]
Insecure = Annotated[
    bool,
    typer.Option(help="Allow plain TCP to a remote scheduler (Dask unpickles what clients send)."),
]
Workers = Annotated[int | None, typer.Option(help="Worker processes of the local cluster.")]


def _logging(verbose: int) -> None:
    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("distributed", "tornado"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # The dashboard listens on 127.0.0.1 only; bokeh's note on websocket origins is noise here.
    logging.getLogger("bokeh").setLevel(logging.ERROR)


def _fail(exc: LensflowError) -> typer.Exit:
    err.print(f"[bold red]error:[/] {exc}", highlight=False, markup=True)
    return typer.Exit(1)


def _cluster_options(config: Any, scheduler: str | None, workers: int | None) -> Any:
    update: dict[str, Any] = {}
    if scheduler:
        update["scheduler"] = scheduler
    if workers:
        update["n_workers"] = workers
    return config.model_copy(update={"cluster": config.cluster.model_copy(update=update)})


def _progress_hook(progress: Progress) -> Any:
    task = progress.add_task("partitions", total=None)

    def hook(done: int, total: int, result: Any) -> None:
        progress.update(task, completed=done, total=total)
        if result is not None and not result.ok:
            progress.console.print(f"[red]failed[/] {result.marker.pixel}: {result.marker.error}")

    return hook


def _run_with_client(config: Any, insecure: bool, body: Any) -> Any:
    from lensflow.scan.cluster import connect, dashboard_link

    with connect(config.cluster, insecure=insecure) as client:
        link = dashboard_link(client)
        if link:
            console.print(f"dashboard: {link}")
        with Progress(
            TextColumn("[bold]scan"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
        ) as progress:
            return body(client, _progress_hook(progress))


@app.command()
def scan(
    config: Annotated[
        Path, typer.Argument(help="Scan config (TOML).", exists=True, dir_okay=False)
    ],
    output: Annotated[Path | None, typer.Option(help="Scan folder (overrides [output]).")] = None,
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
    from lensflow.scan import run_scan
    from lensflow.scan.status import print_status

    _logging(verbose)
    try:
        scan_config = ScanConfig.from_toml(config)
        if output is not None:
            scan_config = scan_config.model_copy(
                update={"output": scan_config.output.model_copy(update={"path": output.resolve()})}
            )
        scan_config = _cluster_options(scan_config, scheduler, workers)
        outcome = _run_with_client(
            scan_config, insecure, lambda c, hook: run_scan(scan_config, client=c, progress=hook)
        )
    except LensflowError as exc:
        raise _fail(exc) from None
    console.print(
        f"ran {outcome.ran} partitions ({outcome.skipped} already done, {outcome.failed} failed) "
        f"in {outcome.seconds:.1f} s -> {outcome.output}"
    )
    print_status(outcome.output, console=console, per_partition=False)
    raise typer.Exit(outcome.exit_status)


@app.command()
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

    _logging(verbose)
    try:
        chosen = parse_pixels(pixels)
        config = _cluster_options(load_scan_config(scan_dir), scheduler, workers)
        outcome = _run_with_client(
            config, insecure, lambda c, hook: rerun_scan(scan_dir, chosen, client=c, progress=hook)
        )
    except LensflowError as exc:
        raise _fail(exc) from None
    console.print(f"reran {outcome.ran} partitions, {outcome.failed} failed")
    raise typer.Exit(outcome.exit_status)


@app.command()
def plan(
    config: Annotated[
        Path, typer.Argument(help="Scan config; only [catalog] and [cuts] are used.")
    ],
    exact: Annotated[
        bool, typer.Option(help="Count rows after cuts with a cuts-only pass.")
    ] = False,
    scheduler: Scheduler = None,
    insecure: Insecure = False,
    workers: Workers = None,
    verbose: Verbose = 0,
) -> None:
    """List the partitions and their rows (and, with --exact, rows after cuts) before a scan."""
    from lensflow.catalog import open_catalog
    from lensflow.config import PlanConfig
    from lensflow.cuts import check_columns, parse_cuts
    from lensflow.scan.cluster import connect
    from lensflow.scan.plan import plan as make_plan
    from lensflow.sky import pixel_key

    _logging(verbose)
    try:
        plan_config = _cluster_options(PlanConfig.from_toml(config), scheduler, workers)
        catalog = open_catalog(plan_config.catalog.path)
        cut = parse_cuts(plan_config.cuts.expression)
        check_columns(cut, catalog.schema, where=str(catalog.path))
        if exact:
            with connect(plan_config.cluster, insecure=insecure) as client:
                rows = make_plan(catalog, cut=cut, client=client)
        else:
            rows = make_plan(catalog, cut=cut)
    except LensflowError as exc:
        raise _fail(exc) from None
    table = Table(title=f"{catalog.name}: {len(rows)} partitions")
    table.add_column("pixel")
    table.add_column("rows", justify="right")
    if exact:
        table.add_column("after cuts", justify="right")
    table.add_column("note")
    for row in rows:
        cells = [pixel_key(row.pixel), f"{row.rows:,}"]
        if exact:
            cells.append("-" if row.rows_after_cuts is None else f"{row.rows_after_cuts:,}")
        cells.append(row.error or "")
        table.add_row(*cells)
    total = sum(r.rows for r in rows)
    cells = ["total", f"{total:,}"]
    if exact:
        after = sum(r.rows_after_cuts or 0 for r in rows)
        cells.append(f"{after:,} ({after / max(total, 1):.2%})")
    table.add_row(*cells, f"{sum(r.error is not None for r in rows)} unreadable")
    console.print(table)
    console.print(f"cut: {cut.canonical}")


@app.command()
def status(
    scan_dir: Annotated[Path, typer.Argument(help="A scan folder.", file_okay=False)],
    json_out: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
) -> None:
    """The funnel per partition and in total, and failures with their errors."""
    from lensflow.scan.state import funnel_totals, read_markers
    from lensflow.scan.status import print_status

    try:
        if json_out:
            markers = read_markers(scan_dir)
            print(json.dumps({"totals": funnel_totals(markers)}, indent=1))
            return
        failed = print_status(scan_dir, console=console, per_partition=True)
    except LensflowError as exc:
        raise _fail(exc) from None
    raise typer.Exit(2 if failed else 0)


@app.command()
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

    try:
        rows, used = export_scan(scan_dir, out, fmt=fmt, min_score=min_score)
    except LensflowError as exc:
        raise _fail(exc) from None
    console.print(f"{rows} candidates with ensemble_score >= {used:g} -> {out}")


@app.command()
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

    _logging(verbose)
    try:
        code = run_demo(
            folder, sources=sources, lenses=lenses, seed=seed, workers=workers, console=console
        )
    except LensflowError as exc:
        raise _fail(exc) from None
    raise typer.Exit(code)


@simulate_app.command("sky")
def simulate_sky(
    out: Annotated[
        Path, typer.Argument(help="Folder for catalog/, cutouts.zarr, truth, scan.toml.")
    ],
    sources: Annotated[int, typer.Option(help="Catalog rows.")] = 20_000,
    lenses: Annotated[int, typer.Option(help="Lenses injected among them.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    workers: Workers = None,
    verbose: Verbose = 0,
) -> None:
    """A mock LSST-like sky: a HATS catalog, its Zarr cutouts, the lens truth and a scan config."""
    from lensflow.simulate.mock_sky import make_mock_sky

    _logging(verbose)
    try:
        sky = make_mock_sky(out, n_sources=sources, n_lenses=lenses, seed=seed, workers=workers)
    except LensflowError as exc:
        raise _fail(exc) from None
    console.print(
        f"{sources} sources in {len(sky.pixels)} partitions, {len(sky.lens_ids)} lenses -> "
        f"{sky.root}\nscan it: lensflow scan {sky.config}"
    )


@simulate_app.command("training-set")
def simulate_training_set(
    out: Annotated[Path, typer.Argument(help="Folder for cutouts.zarr and labels.parquet.")],
    lenses: Annotated[int, typer.Option(help="Lens systems.")] = 1000,
    non_lenses: Annotated[int, typer.Option(help="Non-lenses, contaminants boosted.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    workers: Workers = None,
    verbose: Verbose = 0,
) -> None:
    """A labelled cutout set (Zarr + Parquet labels) simulated on a local Dask cluster."""
    from lensflow.config import ClusterConfig
    from lensflow.scan.cluster import connect
    from lensflow.simulate import make_training_set

    _logging(verbose)
    try:
        with connect(ClusterConfig(n_workers=workers, dashboard=False)) as client:
            made = make_training_set(
                out, n_lenses=lenses, n_non_lenses=non_lenses, seed=seed, client=client
            )
    except LensflowError as exc:
        raise _fail(exc) from None
    console.print(f"{made.n_lenses} lenses + {made.n_non_lenses} non-lenses -> {made.store}")


@simulate_app.command("gallery")
def simulate_gallery(
    out: Annotated[Path, typer.Argument(help="PNG to write.")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    per_class: Annotated[int, typer.Option(help="Examples per class.")] = 6,
) -> None:
    """A grid of RGB composites (asinh stretch), one row per class, to look at the simulations."""
    from lensflow.simulate import make_gallery

    try:
        path = make_gallery(out, seed=seed, per_class=per_class)
    except LensflowError as exc:
        raise _fail(exc) from None
    console.print(f"gallery -> {path}")


def _train(train: Callable[[Path], Path], config: Path, verbose: int, what: str) -> None:
    _logging(verbose)
    try:
        manifest = train(config)
    except LensflowError as exc:
        raise _fail(exc) from None
    console.print(f"{what} written; manifest {manifest}")


@train_app.command("photometry")
def train_photometry_command(
    config: Annotated[Path, typer.Option(help="Photometry training config (TOML).", exists=True)],
    verbose: Verbose = 1,
) -> None:
    """Train the photometry gate on simulated catalogs, choose its threshold, export ONNX."""
    from lensflow.train import train_photometry

    _train(train_photometry, config, verbose, "photometry model")


@train_app.command("ensemble")
def train_ensemble_command(
    config: Annotated[Path, typer.Option(help="Ensemble training config (TOML).", exists=True)],
    verbose: Verbose = 1,
) -> None:
    """Train the CNN members (resuming from checkpoints), evaluate them, export ONNX."""
    from lensflow.train import train_ensemble

    _train(train_ensemble, config, verbose, "ensemble")


@app.command()
def evaluate(
    store: Annotated[Path, typer.Argument(help="A cutout store (Zarr v3, any groups).")],
    labels: Annotated[Path, typer.Argument(help="Parquet with id (int64) and is_lens (bool).")],
    models: Annotated[Path | None, typer.Option(help="Models manifest (default: shipped).")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Write the metrics here.")] = None,
    plots: Annotated[Path | None, typer.Option(help="Folder for ROC and score PNGs.")] = None,
) -> None:
    """AUROC, TPR0 and TPR10 per member and for the ensemble, with the numbers of lenses and
    non-lenses (TPR0 and TPR10 depend on how many non-lenses were scored)."""
    from lensflow.evaluate import evaluate_store, write_plots, write_report_json

    try:
        report = evaluate_store(store, labels, manifest=models)
        data = report.as_dict()
        if json_out is not None:
            write_report_json(report, json_out)
        if plots is not None:
            write_plots(report, plots)
    except LensflowError as exc:
        raise _fail(exc) from None
    table = Table(title=f"{store}")
    for column in ("scorer", "AUROC", "TPR0", "TPR10", "lenses", "non-lenses"):
        table.add_column(column, justify="left" if column == "scorer" else "right")
    for name, metrics in data.items():
        table.add_row(
            name,
            f"{metrics['auroc']:.4f}",
            f"{metrics['tpr0']:.3f}",
            f"{metrics['tpr10']:.3f}",
            f"{metrics['n_lenses']:,}",
            f"{metrics['n_non_lenses']:,}",
        )
    console.print(table)
    fpr = data["ensemble"].get("fpr_by_class")
    if fpr:
        console.print(
            "false-positive rate by class at the ensemble threshold: "
            + ", ".join(f"{k} {v:.2%}" for k, v in sorted(fpr.items(), key=lambda kv: -kv[1]))
        )


def main() -> None:
    """Entry point that maps unexpected failures to exit status 1."""
    try:
        app()
    except LensflowError as exc:
        err.print(f"error: {exc}")
        sys.exit(1)
