"""A gallery of a check set: one row per class, asinh RGB composites of the store's cutouts.

The RGB image of a cutout shows the profile's three reddest image bands (lsst: i -> R, r -> G,
g -> B) with the asinh stretch of Lupton et al. (2004, PASP 116, 133), +y up.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import numpy.typing as npt

from lensflow.errors import SimulationError
from lensflow.surveys import Survey

PANEL_INCHES = 1.2
LABEL_INCHES = 1.5
DPI = 100


def asinh_rgb(
    image: npt.NDArray[np.floating],
    *,
    bands: Sequence[str],
    rgb: Sequence[str],
    stretch: float = 25.0,
    q: float = 8.0,
) -> npt.NDArray[np.float64]:
    """RGB (n, n, 3) in [0, 1] of a cutout (bands, n, n) in nJy: the channels share one asinh
    stretch of their mean intensity (nJy per pixel), so colours survive; rows flipped, +y up."""
    channels = np.stack([np.asarray(image[list(bands).index(b)], float) for b in rgb], axis=-1)
    channels = np.clip(channels, 0.0, None)
    total = channels.mean(axis=-1, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        factor = np.where(total > 0, np.arcsinh(q * total / stretch) / (q * total), 0.0)
    pixels = channels * factor
    pixels /= np.maximum(pixels.max(axis=-1, keepdims=True), 1.0)
    return np.asarray(np.clip(pixels, 0.0, 1.0)[::-1], dtype=np.float64)


def gallery_examples(
    store: Path, labels: Path, *, per_class: int, classes: Sequence[str]
) -> dict[str, list[npt.NDArray[np.float32]]]:
    """The first per_class cutouts (lowest ids) of each class, read from a set's store."""
    from lensflow.cutouts import list_groups, read_cutouts
    from lensflow.labels import read_labels

    truth = read_labels(labels)
    if truth.classes is None:
        raise SimulationError(f"{labels}: the labels have no `class` to sort a gallery by")
    wanted = {c: truth.ids[truth.classes == c][:per_class] for c in classes}
    found: dict[int, npt.NDArray[np.float32]] = {}
    every = np.concatenate(list(wanted.values())) if wanted else np.zeros(0, np.int64)
    for group in list_groups(store):
        cutouts = read_cutouts(store, group, every)
        for ident, image in zip(cutouts.ids.tolist(), cutouts.images, strict=True):
            found[ident] = image
    return {c: [found[i] for i in wanted[c].tolist() if i in found] for c in classes}


def make_check_gallery(
    out_png: Path,
    *,
    store: Path,
    labels: Path,
    survey: Survey,
    classes: Sequence[str],
    per_class: int = 6,
) -> Path:
    """Write a PNG with one row per class of a check set's cutouts; returns its path."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from lensflow.io import write_atomic

    if per_class < 1:
        raise SimulationError(f"per_class must be >= 1, got {per_class}")
    rgb = survey.rgb_bands()
    examples = gallery_examples(store, labels, per_class=per_class, classes=classes)
    width = (LABEL_INCHES + per_class * PANEL_INCHES) * DPI
    height = len(classes) * PANEL_INCHES * DPI
    fig = Figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    panel_w, panel_h = PANEL_INCHES * DPI / width, PANEL_INCHES * DPI / height
    left = LABEL_INCHES * DPI / width
    for row, kind in enumerate(classes):
        bottom = 1.0 - (row + 1) * panel_h
        label = fig.add_axes((0.0, bottom, left, panel_h))
        label.axis("off")
        label.text(0.95, 0.5, kind.replace("_", " "), ha="right", va="center", fontsize=10)
        for col, image in enumerate(examples[kind]):
            ax = fig.add_axes((left + col * panel_w, bottom, panel_w, panel_h))
            ax.imshow(asinh_rgb(image, bands=survey.bands, rgb=rgb), interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
    out_png = Path(out_png)
    write_atomic(out_png, lambda tmp: fig.savefig(tmp, dpi=DPI, facecolor="white", format="png"))
    return out_png
