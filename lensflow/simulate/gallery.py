"""A gallery of simulated cutouts: one row per class, asinh RGB composites (i -> R, r -> G, g -> B)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lensflow.errors import SimulationError
from lensflow.simulate.draw import draw_scene
from lensflow.simulate.scene import CLASSES, class_index, render_scene
from lensflow.simulate.survey import LSST_LIKE, Survey

PANEL_INCHES = 1.2
LABEL_INCHES = 1.3
DPI = 100
RGB_BANDS = ("i", "r", "g")
"""Bands shown as red, green, blue."""
RGB_WEIGHTS: Mapping[str, float] = {"i": 1.0, "r": 1.15, "g": 1.7}
"""Per-band weights before the stretch (blue star-forming light stands out, as in survey colour
images)."""


def asinh_rgb(
    image: npt.NDArray[np.floating],
    *,
    bands: Sequence[str],
    stretch: float = 30.0,
    q: float = 6.0,
) -> npt.NDArray[np.float64]:
    """RGB (n, n, 3) in [0, 1] of a cutout (bands, n, n) in nJy: Lupton et al. asinh stretch.

    stretch (nJy per pixel) is where the stretch turns from linear to logarithmic; rows are
    flipped so that +y is up.
    """
    try:
        channels = [
            np.asarray(image[list(bands).index(b)], dtype=np.float64) * RGB_WEIGHTS[b]
            for b in RGB_BANDS
        ]
    except ValueError:
        raise SimulationError(f"an RGB composite needs bands {RGB_BANDS}, got {bands}") from None
    rgb = np.clip(np.stack(channels, axis=-1), 0.0, None)
    total = rgb.mean(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(total > 0, np.arcsinh(q * total / stretch) / (q * total), 0.0)
    rgb = rgb * factor
    peak = np.maximum(rgb.max(axis=-1, keepdims=True), 1.0)
    return np.asarray(np.clip(rgb / peak, 0.0, 1.0)[::-1], dtype=np.float64)


def gallery_shape(per_class: int, n_classes: int = len(CLASSES)) -> tuple[int, int]:
    """(height, width) in pixels of a gallery PNG."""
    width = round((LABEL_INCHES + per_class * PANEL_INCHES) * DPI)
    height = round(n_classes * PANEL_INCHES * DPI)
    return height, width


def make_gallery(
    out_png: Path,
    *,
    seed: int,
    per_class: int = 6,
    survey: Survey = LSST_LIKE,
    classes: Sequence[str] = CLASSES,
) -> Path:
    """Write a PNG with one row per class of `per_class` rendered cutouts; returns its path.

    The cutout in row c, column j is seeded (seed, class index, j).
    """
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    if per_class < 1:
        raise SimulationError(f"per_class must be >= 1, got {per_class}")
    height, width = gallery_shape(per_class, len(classes))
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    panel_w = PANEL_INCHES * DPI / width
    panel_h = PANEL_INCHES * DPI / height
    left = LABEL_INCHES * DPI / width
    for row, kind in enumerate(classes):
        bottom = 1.0 - (row + 1) * panel_h
        label = fig.add_axes((0.0, bottom, left, panel_h))
        label.axis("off")
        label.text(0.95, 0.5, kind.replace("_", " "), ha="right", va="center", fontsize=10)
        for col in range(per_class):
            scene = draw_scene(kind, seed=(seed, class_index(kind), col), survey=survey)
            image = render_scene(scene, survey=survey)
            ax = fig.add_axes((left + col * panel_w, bottom, panel_w, panel_h))
            ax.imshow(asinh_rgb(image, bands=survey.bands), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_color("white")
                spine.set_linewidth(0.5)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out_png, dpi=DPI, facecolor="white")
    return out_png
