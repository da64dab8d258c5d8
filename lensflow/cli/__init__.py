"""`lensflow`: scan sky catalogs for strong lenses on a Dask cluster.

The commands are thin: each parses its options, calls one library function and hands the
result to `lensflow.views`. A `LensflowError` from any command becomes one line on stderr and
its exit status (lensflow.errors) in one place, the `command` decorator (`cli.common`) that registers every
command. Only this package reads the environment and configures logging.
"""

from __future__ import annotations

from lensflow.cli import scan  # isort: skip  (registered first: --help lists scan commands first)
from lensflow.cli import cluster, cutouts, models, simulate
from lensflow.cli import inspect as inspect_commands  # inspect, gallery, grades
from lensflow.cli import recover as recover_commands  # noqa: F401  (registers recover)
from lensflow.cli.common import app

__all__ = [
    "app",
    "cluster",
    "cutouts",
    "inspect_commands",
    "main",
    "models",
    "scan",
    "simulate",
]


def main() -> None:
    """Entry point of the `lensflow` script."""
    app()
