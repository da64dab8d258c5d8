"""Mock skies, training sets and galleries."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lensflow import views
from lensflow.cli.common import (
    SurveyName,
    Verbose,
    Workers,
    command,
    console,
    set_logging,
    simulate_app,
)


@command(simulate_app, "sky")
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

    set_logging(verbose)
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


@command(simulate_app, "training-set")
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

    set_logging(verbose)
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


@command(simulate_app, "gallery")
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
