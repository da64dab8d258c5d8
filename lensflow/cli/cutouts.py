"""Cutout stores from survey coadd images."""

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
    cluster_options,
    command,
    console,
    cutouts_app,
    joined,
    set_logging,
)


@command(cutouts_app, "build")
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
    partitions are skipped). Exit status 0: all done; 2: some partitions failed; others: see
    the README's table.
    """
    from lensflow.catalog import open_inputs
    from lensflow.cluster import dashboard_link
    from lensflow.config import PlanConfig
    from lensflow.errors import ConfigError
    from lensflow.images import BuildPaths, CatalogRows, build_cutouts
    from lensflow.images.tiles import find_tiles
    from lensflow.io import claim_folder

    set_logging(verbose)
    build_config = cluster_options(PlanConfig.from_toml(config), scheduler, workers)
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
    find_tiles(build_config.images)  # tiles, store folder: checked before a cluster starts
    claim_folder(store.parent, what="cutout store's folder (--output)")
    with joined(build_config.cluster, insecure=insecure) as client:
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
