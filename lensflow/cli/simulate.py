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

Population = Annotated[
    str,
    typer.Option(
        help="Simulator population: classic (the original priors) or wide (PSF shapes, "
        "correlated coadd noise, counted field galaxies, lensed quasars, harder non-lenses)."
    ),
]


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
    population: Population = "classic",
    workers: Workers = None,
    verbose: Verbose = 0,
) -> None:
    """A labelled cutout set (Zarr + Parquet labels) of a survey profile, simulated on a local
    Dask cluster."""
    from lensflow.cluster import connect
    from lensflow.config import ClusterConfig
    from lensflow.simulate import check_survey, make_training_set
    from lensflow.simulate.population import check_population
    from lensflow.surveys import survey_profile

    set_logging(verbose)
    profile = survey_profile(survey)
    check_survey(profile)
    check_population(population)
    with connect(ClusterConfig(n_workers=workers, dashboard=False)) as client:
        made = make_training_set(
            out,
            n_lenses=lenses,
            n_non_lenses=non_lenses,
            seed=seed,
            survey=profile,
            client=client,
            population=population,
        )
    views.print_training_set(console, made)


@command(simulate_app, "check-set")
def simulate_check_set(
    out: Annotated[Path, typer.Argument(help="Folder for cutouts.zarr and labels.parquet.")],
    lenses: Annotated[int, typer.Option(help="Lens systems.")] = 2000,
    non_lenses: Annotated[int, typer.Option(help="Non-lenses, classes in equal shares.")] = 20000,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    survey: SurveyName = "lsst",
    workers: Workers = None,
    gallery: Annotated[
        Path | None, typer.Option(help="Also write a PNG of a few cutouts of each class.")
    ] = None,
    verbose: Verbose = 0,
) -> None:
    """An independent labelled check set rendered by lenstronomy with its own population (not
    lensflow's simulator), in the training-set format, on a local Dask cluster."""
    from lensflow.cluster import connect
    from lensflow.config import ClusterConfig
    from lensflow.independent import (
        CLASSES,
        check_bands,
        check_output,
        make_check_gallery,
        make_check_set,
        plan_classes,
    )
    from lensflow.surveys import survey_profile

    set_logging(verbose)
    profile = survey_profile(survey)
    check_bands(profile)
    check_output(out)
    plan_classes(lenses, non_lenses, seed=seed)
    with connect(ClusterConfig(n_workers=workers, dashboard=False)) as client:
        made = make_check_set(
            out,
            n_lenses=lenses,
            n_non_lenses=non_lenses,
            seed=seed,
            survey=profile,
            client=client,
        )
    views.print_written(
        console, f"{made.n_lenses} lenses + {made.n_non_lenses} non-lenses", made.store
    )
    views.print_written(console, "labels", made.labels)
    if gallery is not None:
        path = make_check_gallery(
            gallery, store=made.store, labels=made.labels, survey=profile, classes=CLASSES
        )
        views.print_written(console, "gallery", path)


@command(simulate_app, "gallery")
def simulate_gallery(
    out: Annotated[Path, typer.Argument(help="PNG to write.")],
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    per_class: Annotated[int, typer.Option(help="Examples per class.")] = 6,
    survey: SurveyName = "lsst",
    population: Population = "classic",
) -> None:
    """A grid of RGB composites (asinh stretch of the profile's three reddest image bands), one
    row per class (wide: per class variant), to look at the simulations."""
    from lensflow.simulate import make_gallery
    from lensflow.surveys import survey_profile

    profile = survey_profile(survey)
    path = make_gallery(out, seed=seed, per_class=per_class, survey=profile, population=population)
    views.print_written(console, "gallery", path)


@command(simulate_app, "inject")
def simulate_inject(
    store: Annotated[Path, typer.Argument(help="A cutout store (Zarr v3) to paint lenses into.")],
    out: Annotated[Path, typer.Option(help="Folder for cutouts.zarr and labels.parquet.")],
    labels: Annotated[
        Path | None,
        typer.Option(help="Parquet with id and optional mag_<band>, z, class, is_lens."),
    ] = None,
    lenses: Annotated[int, typer.Option(help="Lenses to inject.")] = 300,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    deflectors_where: Annotated[
        str | None,
        typer.Option(
            help="Cut choosing the deflectors, over mag_<band> (catalog, else 3'' aperture), "
            "apmag_<band> (1'' aperture) and z; default: red and bright (LRG-like)."
        ),
    ] = None,
    drop_deflectors: Annotated[
        bool, typer.Option(help="Leave the deflectors' originals out of the non-lenses.")
    ] = False,
    gallery: Annotated[
        Path | None, typer.Option(help="Also write a before/after PNG of 16 injections.")
    ] = None,
    overwrite: Annotated[bool, typer.Option(help="Replace a set already in OUT.")] = False,
    survey: SurveyName = "lsst",
    workers: Workers = None,
    verbose: Verbose = 0,
) -> None:
    """Paint simulated lensed sources onto red-galaxy cutouts of any store: a labelled set of
    injected lenses and the store's own cutouts as non-lenses, made on a local Dask cluster."""
    from lensflow.cluster import connect
    from lensflow.config import ClusterConfig
    from lensflow.simulate.inject import DEFAULT_WHERE, check_inputs, make_injection_set
    from lensflow.simulate.inject_gallery import injection_gallery
    from lensflow.surveys import survey_profile

    set_logging(verbose)
    profile = survey_profile(survey)
    where = deflectors_where or DEFAULT_WHERE
    check_inputs(store, out, labels=labels, where=where, survey=profile, overwrite=overwrite)
    with connect(ClusterConfig(n_workers=workers, dashboard=False)) as client:
        made = make_injection_set(
            store,
            out,
            n_lenses=lenses,
            seed=seed,
            labels=labels,
            where=where,
            survey=profile,
            drop_deflectors=drop_deflectors,
            client=client,
            overwrite=overwrite,
        )
    console.print(
        f"{made.n_lenses} injected lenses (of {lenses}) on {made.n_deflectors} deflectors "
        f"(photometry: {made.photometry}; Poisson gain: {made.gain}) + {made.n_non_lenses} "
        f"non-lenses -> {made.store}",
        markup=False,
    )
    if gallery is not None:
        views.print_written(console, "gallery", injection_gallery(gallery, out, survey=profile))
