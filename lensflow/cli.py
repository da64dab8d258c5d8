"""`lensflow`: scan sky catalogs for strong lenses on a Dask cluster.

The commands are thin: each parses its options, calls one library function and hands the
result to `lensflow.views`. A `LensflowError` from any command becomes one line on stderr and
exit status 1 in one place, the `_command` decorator that registers every command. Only this
module reads the environment and configures logging.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, ParamSpec, TypeVar

import typer
from rich.console import Console

from lensflow import views
from lensflow.errors import LensflowError

if TYPE_CHECKING:
    from distributed import Client

    from lensflow.config import PlanConfig, ScanConfig
    from lensflow.scan.run import ProgressHook, ScanOutcome

ConfigT = TypeVar("ConfigT", "ScanConfig", "PlanConfig")
P = ParamSpec("P")

console = Console()
err = Console(stderr=True)

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
cutouts_app = typer.Typer(
    help="Build cutout stores from survey coadd images (FITS with a WCS).", no_args_is_help=True
)
app.add_typer(simulate_app, name="simulate")
app.add_typer(train_app, name="train")
app.add_typer(cutouts_app, name="cutouts")

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


def _command(
    group: typer.Typer, name: str | None = None
) -> Callable[[Callable[P, None]], Callable[P, None]]:
    """Register a command on `group`; its `LensflowError` becomes one stderr line, exit 1."""

    def register(command: Callable[P, None]) -> Callable[P, None]:
        @functools.wraps(command)
        def run(*args: P.args, **kwargs: P.kwargs) -> None:
            try:
                command(*args, **kwargs)
            except LensflowError as exc:
                views.print_error(err, exc)
                raise typer.Exit(1) from None

        group.command(name)(run)
        return run

    return register


def _logging(verbose: int) -> None:
    import distributed  # noqa: F401  (it sets its loggers' levels on import: import it first)

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("distributed", "tornado"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # The dashboard listens on 127.0.0.1 only; bokeh's note on websocket origins is noise here.
    logging.getLogger("bokeh").setLevel(logging.ERROR)


def _cluster_options(config: ConfigT, scheduler: str | None, workers: int | None) -> ConfigT:
    update: dict[str, str | int] = {}
    if scheduler:
        update["scheduler"] = scheduler
    if workers:
        update["n_workers"] = workers
    return config.model_copy(update={"cluster": config.cluster.model_copy(update=update)})


def _run_with_client(
    config: ScanConfig, insecure: bool, body: Callable[[Client, ProgressHook], ScanOutcome]
) -> ScanOutcome:
    from lensflow.cluster import connect, dashboard_link

    with connect(config.cluster, insecure=insecure) as client:
        views.print_dashboard(console, dashboard_link(client))
        with views.scan_progress(console) as hook:
            return body(client, hook)


@_command(app)
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
    from lensflow.scan.run import build_context, run_context
    from lensflow.scan.status import read_status

    _logging(verbose)
    scan_config = ScanConfig.from_toml(config)
    if output is not None:
        scan_config = scan_config.model_copy(
            update={"output": scan_config.output.model_copy(update={"path": output.resolve()})}
        )
    scan_config = _cluster_options(scan_config, scheduler, workers)
    context = build_context(scan_config)  # every input checked before a cluster starts
    outcome = _run_with_client(
        scan_config, insecure, lambda c, hook: run_context(context, client=c, progress=hook)
    )
    views.print_scan(console, outcome)
    views.print_status(console, read_status(outcome.output), per_partition=False)
    raise typer.Exit(outcome.exit_status)


@_command(app)
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
    chosen = parse_pixels(pixels)
    config = _cluster_options(load_scan_config(scan_dir), scheduler, workers)
    outcome = _run_with_client(
        config, insecure, lambda c, hook: rerun_scan(scan_dir, chosen, client=c, progress=hook)
    )
    views.print_rerun(console, outcome)
    raise typer.Exit(outcome.exit_status)


@_command(app)
def plan(
    config: Annotated[
        Path,
        typer.Argument(help="Scan config; only [catalog], [cuts] and [sky] are used."),
    ],
    exact: Annotated[
        bool, typer.Option(help="Count rows after cuts with a cuts-only pass.")
    ] = False,
    scheduler: Scheduler = None,
    insecure: Insecure = False,
    workers: Workers = None,
    verbose: Verbose = 0,
) -> None:
    """List the partitions a scan reads (those [sky] touches) and their rows before a scan.

    With --exact, also the rows after cuts (and, with [sky], those of them inside the region).
    """
    from lensflow.catalog import open_inputs
    from lensflow.cluster import connect
    from lensflow.config import PlanConfig
    from lensflow.scan.plan import plan_inputs

    _logging(verbose)
    plan_config = _cluster_options(PlanConfig.from_toml(config), scheduler, workers)
    inputs = open_inputs(plan_config)
    if exact:
        with connect(plan_config.cluster, insecure=insecure) as client:
            rows = plan_inputs(inputs, client=client)
    else:
        rows = plan_inputs(inputs)
    views.print_plan(console, inputs.title, rows, cut=inputs.cut.canonical, exact=exact)


@_command(cutouts_app, "build")
def cutouts_build(
    config: Annotated[
        Path,
        typer.Argument(
            help="Scan config with an \\[images] section (tiles, bands, hdu, unit, size).",
            exists=True,
            dir_okay=False,
        ),
    ],
    output: Annotated[
        Path | None, typer.Option(help="Cutout store to write (default: the config's \\[cutouts]).")
    ] = None,
    all_rows: Annotated[
        bool,
        typer.Option("--all", help="Cut a stamp for every row, not only those passing the cuts."),
    ] = False,
    force: Annotated[bool, typer.Option(help="Rebuild partitions already done.")] = False,
    scheduler: Scheduler = None,
    insecure: Insecure = False,
    workers: Workers = None,
    verbose: Verbose = 0,
) -> None:
    """Cut a stamp per catalog row from coadd tiles into a cutout store, one task per partition.

    Rows outside the tiles, on masked or non-finite pixels, or on unreadable tiles are counted
    per reason and listed by id in the build report beside the store. Rerunning resumes (done
    partitions are skipped). Exit status 0: all done; 2: some partitions failed; 1: the build
    could not run.
    """
    from lensflow.catalog import open_inputs
    from lensflow.cluster import connect, dashboard_link
    from lensflow.config import PlanConfig
    from lensflow.errors import ConfigError
    from lensflow.images import BuildPaths, CatalogRows, build_cutouts

    _logging(verbose)
    build_config = _cluster_options(PlanConfig.from_toml(config), scheduler, workers)
    if build_config.images is None:
        raise ConfigError(f"{config}: no [images] section; name the tiles, bands and unit there")
    cutouts = build_config.cutouts
    store = output.resolve() if output is not None else cutouts.path if cutouts else None
    if store is None:
        raise ConfigError(f"{config}: no [cutouts] path; give one there or pass --output")
    inputs = open_inputs(build_config)
    columns = build_config.catalog.columns
    rows = CatalogRows(
        inputs.catalog,
        id_column=columns.id,
        ra_column=columns.ra,
        dec_column=columns.dec,
        cut=None if all_rows else inputs.cut,
        region=inputs.region,
    )
    with connect(build_config.cluster, insecure=insecure) as client:
        views.print_dashboard(console, dashboard_link(client))
        with views.build_progress(console) as hook:
            report = build_cutouts(
                rows,
                store=store,
                config=build_config.images,
                client=client,
                max_in_flight=build_config.cluster.max_in_flight,
                progress=hook,
                force=force,
            )
    views.print_build(console, report, report_path=BuildPaths(store).report)
    raise typer.Exit(2 if report.failed else 0)


@_command(app)
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


@_command(app)
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


@_command(app)
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
    report = run_demo(
        folder, sources=sources, lenses=lenses, seed=seed, workers=workers, console=console
    )
    views.print_demo(console, report)
    raise typer.Exit(report.exit_status)


SurveyName = Annotated[
    str,
    typer.Option(
        "--survey",
        help="Survey profile: a shipped name (lsst, hsc, legacy) or a profile's TOML file.",
    ),
]
SurveyOverride = Annotated[
    str | None,
    typer.Option(
        "--survey",
        help="Survey profile (shipped name or TOML file), instead of the config's `survey`.",
    ),
]


@_command(simulate_app, "sky")
def simulate_sky(
    out: Annotated[
        Path, typer.Argument(help="Folder for catalog/, cutouts.zarr, truth, scan.toml.")
    ],
    sources: Annotated[int, typer.Option(help="Catalog rows.")] = 20_000,
    lenses: Annotated[int, typer.Option(help="Lenses injected among them.")] = 20,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    survey: SurveyName = "lsst",
    tiles: Annotated[
        bool,
        typer.Option(
            "--tiles",
            help="Coadd patches (FITS) of a compact field instead of the Zarr cutouts; "
            "`lensflow cutouts build OUT/scan.toml` cuts the store from them.",
        ),
    ] = False,
    workers: Workers = None,
    verbose: Verbose = 0,
) -> None:
    """A mock sky of a survey profile: a HATS catalog with the survey's column names, its Zarr
    cutouts (or, with --tiles, its coadd patches), the lens truth and a scan config."""
    from lensflow.simulate.mock_sky import make_mock_sky
    from lensflow.surveys import survey_profile

    _logging(verbose)
    profile = survey_profile(survey)
    sky = make_mock_sky(
        out,
        n_sources=sources,
        n_lenses=lenses,
        seed=seed,
        survey=profile,
        workers=workers,
        tiles=tiles,
    )
    if tiles:
        console.print(f"cut its cutouts first: lensflow cutouts build {sky.config}", markup=False)
    views.print_mock_sky(console, sky, sources=sources)


@_command(simulate_app, "training-set")
def simulate_training_set(
    out: Annotated[Path, typer.Argument(help="Folder for cutouts.zarr and labels.parquet.")],
    lenses: Annotated[int, typer.Option(help="Lens systems.")] = 1000,
    non_lenses: Annotated[int, typer.Option(help="Non-lenses, contaminants boosted.")] = 3000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    survey: SurveyName = "lsst",
    workers: Workers = None,
    verbose: Verbose = 0,
) -> None:
    """A labelled cutout set (Zarr + Parquet labels) of a survey profile, simulated on a local
    Dask cluster."""
    from lensflow.cluster import connect
    from lensflow.config import ClusterConfig
    from lensflow.simulate import check_survey, make_training_set
    from lensflow.surveys import survey_profile

    _logging(verbose)
    profile = survey_profile(survey)
    check_survey(profile)
    with connect(ClusterConfig(n_workers=workers, dashboard=False)) as client:
        made = make_training_set(
            out,
            n_lenses=lenses,
            n_non_lenses=non_lenses,
            seed=seed,
            survey=profile,
            client=client,
        )
    views.print_training_set(console, made)


@_command(simulate_app, "gallery")
def simulate_gallery(
    out: Annotated[Path, typer.Argument(help="PNG to write.")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    per_class: Annotated[int, typer.Option(help="Examples per class.")] = 6,
    survey: SurveyName = "lsst",
) -> None:
    """A grid of RGB composites (asinh stretch of the profile's three reddest image bands), one
    row per class, to look at the simulations."""
    from lensflow.simulate import make_gallery
    from lensflow.surveys import survey_profile

    profile = survey_profile(survey)
    path = make_gallery(out, seed=seed, per_class=per_class, survey=profile)
    views.print_written(console, "gallery", path)


@_command(train_app, "photometry")
def train_photometry_command(
    config: Annotated[Path, typer.Option(help="Photometry training config (TOML).", exists=True)],
    survey: SurveyOverride = None,
    verbose: Verbose = 1,
) -> None:
    """Train the photometry gate on simulated catalogs, choose its threshold, export ONNX."""
    from lensflow.train import train_photometry
    from lensflow.train.config import PhotometryConfig

    _logging(verbose)
    settings = PhotometryConfig.from_toml(config).with_survey(survey)
    views.print_trained(console, "photometry model", train_photometry(settings))


@_command(train_app, "ensemble")
def train_ensemble_command(
    config: Annotated[Path, typer.Option(help="Ensemble training config (TOML).", exists=True)],
    survey: SurveyOverride = None,
    verbose: Verbose = 1,
) -> None:
    """Train the CNN members (resuming from checkpoints), evaluate them, export ONNX."""
    from lensflow.train import train_ensemble
    from lensflow.train.config import TrainConfig

    _logging(verbose)
    settings = TrainConfig.from_toml(config).with_survey(survey)
    views.print_trained(console, "ensemble", train_ensemble(settings))


@_command(app)
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

    report = evaluate_store(store, labels, manifest=models)
    if json_out is not None:
        write_report_json(report, json_out)
    if plots is not None:
        write_plots(report, plots)
    views.print_evaluation(console, str(store), report.as_dict())


def main() -> None:
    """Entry point of the `lensflow` script."""
    app()
