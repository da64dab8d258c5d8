"""A gallery of simulated cutouts: one row per class, asinh RGB composites of the profile's three
reddest image bands (lsst: i -> R, r -> G, g -> B). In the wide population a class with
variants gets one row per variant (`population.WIDE_VARIANTS`), so each can be seen."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lensflow.errors import SimulationError
from lensflow.simulate.draw import check_survey, draw_scene
from lensflow.simulate.population import DEFAULT_POPULATION, WIDE_VARIANTS, check_population
from lensflow.simulate.scene import CLASSES, class_index, render_scene
from lensflow.surveys import Survey, survey_profile

PANEL_INCHES = 1.2
LABEL_INCHES = 1.3
DPI = 100
RGB_WEIGHTS: tuple[float, float, float] = (1.0, 1.15, 1.7)
"""Weights of the red, green and blue channels before the stretch (blue star-forming light
stands out, as in survey colour images)."""


def asinh_rgb(
    image: npt.NDArray[np.floating],
    *,
    bands: Sequence[str],
    rgb: Sequence[str],
    stretch: float = 30.0,
    q: float = 6.0,
) -> npt.NDArray[np.float64]:
    """RGB (n, n, 3) in [0, 1] of a cutout (bands, n, n) in nJy: Lupton et al. asinh stretch.

    rgb: the bands shown as red, green and blue. stretch (nJy per pixel) is where the stretch
    turns from linear to logarithmic; rows are flipped so that +y is up.
    """
    try:
        channels = [
            np.asarray(image[list(bands).index(b)], dtype=np.float64) * weight
            for b, weight in zip(rgb, RGB_WEIGHTS, strict=True)
        ]
    except ValueError:
        raise SimulationError(
            f"an RGB composite of {list(rgb)} needs those bands, got {list(bands)}"
        ) from None
    pixels = np.clip(np.stack(channels, axis=-1), 0.0, None)
    total = pixels.mean(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(total > 0, np.arcsinh(q * total / stretch) / (q * total), 0.0)
    pixels = pixels * factor
    peak = np.maximum(pixels.max(axis=-1, keepdims=True), 1.0)
    return np.asarray(np.clip(pixels / peak, 0.0, 1.0)[::-1], dtype=np.float64)


def gallery_shape(per_class: int, n_classes: int = len(CLASSES)) -> tuple[int, int]:
    """(height, width) in pixels of a gallery PNG."""
    width = round((LABEL_INCHES + per_class * PANEL_INCHES) * DPI)
    height = round(n_classes * PANEL_INCHES * DPI)
    return height, width


def gallery_rows(classes: Sequence[str], population: str) -> list[tuple[str, str | None]]:
    """(class, variant) of each row: one per class, or per variant of a wide class."""
    if check_population(population) != "wide":
        return [(kind, None) for kind in classes]
    return [(kind, v) for kind in classes for v in WIDE_VARIANTS.get(kind, (None,))]


def make_gallery(
    out_png: Path,
    *,
    seed: int,
    per_class: int = 6,
    survey: Survey | None = None,
    classes: Sequence[str] = CLASSES,
    population: str = DEFAULT_POPULATION,
) -> Path:
    """Write a PNG with one row per class (wide: per class variant) of `per_class` rendered
    cutouts; returns its path.

    The cutout in row c, column j is seeded (seed, class index, j); survey: the profile
    (default: lsst), shown in its three reddest image bands; population: "classic" or "wide".
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    if per_class < 1:
        raise SimulationError(f"per_class must be >= 1, got {per_class}")
    survey = survey or survey_profile()
    check_survey(survey)
    rgb = survey.rgb_bands()
    rows = gallery_rows(classes, population)
    height, width = gallery_shape(per_class, len(rows))
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    panel_w = PANEL_INCHES * DPI / width
    panel_h = PANEL_INCHES * DPI / height
    left = LABEL_INCHES * DPI / width
    for row, (kind, variant) in enumerate(rows):
        bottom = 1.0 - (row + 1) * panel_h
        label = fig.add_axes((0.0, bottom, left, panel_h))
        label.axis("off")
        name = kind if variant is None else f"{kind}\n{variant}"
        size = 10 if variant is None else 8
        label.text(0.95, 0.5, name.replace("_", " "), ha="right", va="center", fontsize=size)
        for col in range(per_class):
            scene = draw_scene(
                kind,
                seed=(seed, class_index(kind), col),
                survey=survey,
                population=population,
                variant=variant,
            )
            image = render_scene(scene, survey=survey)
            ax = fig.add_axes((left + col * panel_w, bottom, panel_w, panel_h))
            ax.imshow(asinh_rgb(image, bands=survey.bands, rgb=rgb), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_color("white")
                spine.set_linewidth(0.5)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=DPI, facecolor="white")
    return out_png
