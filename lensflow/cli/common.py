"""What every command shares: the command groups, the error boundary, options, logging."""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
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


def command(
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


def set_logging(verbose: int) -> None:
    import distributed  # noqa: F401  (it sets its loggers' levels on import: import it first)

    level = logging.WARNING if verbose == 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("distributed", "tornado"):
        logging.getLogger(noisy).setLevel(max(level, logging.WARNING))
    # The dashboard listens on 127.0.0.1 only; bokeh's note on websocket origins is noise here.
    logging.getLogger("bokeh").setLevel(logging.ERROR)


def cluster_options(config: ConfigT, scheduler: str | None, workers: int | None) -> ConfigT:
    update: dict[str, str | int] = {}
    if scheduler:
        update["scheduler"] = scheduler
    if workers:
        update["n_workers"] = workers
    return config.model_copy(update={"cluster": config.cluster.model_copy(update=update)})


def run_with_client(
    config: ScanConfig, insecure: bool, body: Callable[[Client, ProgressHook], ScanOutcome]
) -> ScanOutcome:
    from lensflow.cluster import connect, dashboard_link

    with connect(config.cluster, insecure=insecure) as client:
        views.print_dashboard(console, dashboard_link(client))
        with views.scan_progress(console) as hook:
            return body(client, hook)


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
