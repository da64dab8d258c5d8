"""`lensflow`: scan sky catalogs for strong lenses on a Dask cluster.

The commands are thin: each parses its options, calls one library function and hands the
result to `lensflow.views`. A `LensflowError` from any command becomes one line on stderr and
exit status 1 in one place, the `command` decorator (`cli.common`) that registers every
command. Only this package reads the environment and configures logging.
"""

from __future__ import annotations

from lensflow.cli import scan  # isort: skip  (registered first: --help lists scan commands first)
from lensflow.cli import cutouts, models, simulate
from lensflow.cli.common import app

__all__ = ["app", "cutouts", "main", "models", "scan", "simulate"]


def main() -> None:
    """Entry point of the `lensflow` script."""
    app()
