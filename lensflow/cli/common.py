"""What every command shares: the command groups, the error boundary, options, logging.

The error boundary is in two places, both here: the `command` decorator turns a LensflowError,
an OS error (full disk, permission denied, refused connection) or a Ctrl-C under a command into
one stderr line and its exit status (lensflow.errors.EXIT_CODES); `LensflowGroup` does the same
for usage errors (exit 64, since 2 means a partial scan).
"""

from __future__ import annotations

import functools
import inspect
import logging
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from typing import TYPE_CHECKING, Annotated, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from typer._click import ClickException  # typer's own click, the one its parser raises
from typer._click.exceptions import NoArgsIsHelpError
from typer.core import TyperGroup

from lensflow import views
from lensflow.errors import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    ClusterError,
    Interrupted,
    LensflowError,
    from_os_error,
)

if TYPE_CHECKING:
    from distributed import Client

    from lensflow.config import ClusterConfig, PlanConfig, ScanConfig
    from lensflow.scan.run import ProgressHook, ScanOutcome

ConfigT = TypeVar("ConfigT", "ScanConfig", "PlanConfig")
P = ParamSpec("P")

console = Console()
err = Console(stderr=True)


class LensflowGroup(TyperGroup):
    """The top-level group: a usage error is one stderr line and exit 64, a Ctrl-C exit 130."""

    def main(  # type: ignore[override]
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        try:
            code = super().main(args, prog_name, complete_var, standalone_mode=False, **extra)
        except NoArgsIsHelpError as exc:
            if exc.format_message().strip():  # typer's rich help is printed already
                exc.show()
            code = EXIT_USAGE
        except ClickException as exc:
            views.print_usage_error(err, exc.format_message(), _command_path(exc))
            code = EXIT_USAGE
        except typer.Abort:
            views.print_error(err, Interrupted("interrupted"))
            code = EXIT_INTERRUPTED
        code = code if isinstance(code, int) else 0
        if not standalone_mode:
            return code
        sys.exit(code)


def _command_path(exc: ClickException) -> str | None:
    ctx = getattr(exc, "ctx", None)
    return ctx.command_path if ctx is not None else None


app = typer.Typer(
    cls=LensflowGroup,
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
    """Register a command on `group`; an error under it becomes one stderr line and its code.

    A LensflowError exits with its class's code; an OSError is first named by
    `errors.from_os_error`; a Ctrl-C exits 130 (a command that knows how far it got raises
    `Interrupted` with that). Anything else is a bug and keeps its traceback (exit 1).
    """

    def register(command: Callable[P, None]) -> Callable[P, None]:
        @functools.wraps(command)
        def run(*args: P.args, **kwargs: P.kwargs) -> None:
            try:
                command(*args, **kwargs)
            except LensflowError as exc:
                _fail(exc)
            except OSError as exc:
                _fail(from_os_error(exc))
            except KeyboardInterrupt:
                _fail(Interrupted("interrupted; rerun the same command to start again"))

        group.command(name, help=_paragraphs(command.__doc__))(run)
        return run

    return register


def _paragraphs(doc: str | None) -> str | None:
    """A docstring as help text: each paragraph one line, so the help wraps at the terminal's
    width (typer's rich help keeps the docstring's own line breaks)."""
    if doc is None:
        return None
    text = inspect.cleandoc(doc)
    return "\n\n".join(" ".join(part.split("\n")) for part in text.split("\n\n"))


def _fail(exc: LensflowError) -> None:
    views.print_error(err, exc)
    raise typer.Exit(exc.exit_code) from None


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


@contextmanager
def joined(cluster: ClusterConfig, *, insecure: bool = False) -> Iterator[Client]:
    """`cluster.connect`, with a scheduler that cannot be reached or joined named in one line.

    Only joining is guarded: an error raised while the client is in use passes unchanged.
    """
    from lensflow.cluster import connect

    with ExitStack() as stack:
        try:
            client = stack.enter_context(connect(cluster, insecure=insecure))
        except LensflowError:
            raise
        except (OSError, ValueError, TypeError) as exc:  # distributed: timeout, refused, bad TLS
            raise _join_failure(cluster, exc) from None
        yield client


def _join_failure(cluster: ClusterConfig, exc: Exception) -> ClusterError:
    address = cluster.scheduler or "a local cluster"
    if isinstance(exc, OSError):
        reason = from_os_error(exc)
        return ClusterError(f"cannot join the scheduler at {address}: {reason}")
    return ClusterError(
        f"cannot join the scheduler at {address}: {exc}; for tls:// give Dask's TLS settings "
        "(distributed.comm.tls in its config or DASK_DISTRIBUTED__COMM__TLS__* variables)"
    )


def run_with_client(
    config: ScanConfig, insecure: bool, body: Callable[[Client, ProgressHook], ScanOutcome]
) -> ScanOutcome:
    from lensflow.cluster import dashboard_link

    with joined(config.cluster, insecure=insecure) as client:
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
