"""The gallery of a check set: a PNG of each class's first cutouts, in asinh RGB."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from lensflow.errors import SimulationError
from lensflow.independent import CLASSES, CheckSet, make_check_gallery
from lensflow.independent.gallery import DPI, LABEL_INCHES, PANEL_INCHES, asinh_rgb
from lensflow.surveys import survey_profile

LSST = survey_profile("lsst")


def test_the_gallery_shows_every_class_of_the_set(tiny_set: CheckSet, tmp_path: Path) -> None:
    import matplotlib.image

    png = make_check_gallery(
        tmp_path / "g.png", store=tiny_set.store, labels=tiny_set.labels, survey=LSST,
        classes=CLASSES, per_class=2,
    )  # fmt: skip
    pixels = matplotlib.image.imread(png)
    height = round(len(CLASSES) * PANEL_INCHES * DPI)
    width = round((LABEL_INCHES + 2 * PANEL_INCHES) * DPI)
    assert pixels.shape[:2] == (height, width)
    panel = pixels[: round(PANEL_INCHES * DPI), round(LABEL_INCHES * DPI) :]
    assert panel[..., :3].std() > 0.02  # the lens row holds images, not blank space


def test_rgb_is_the_three_reddest_bands_with_up_up() -> None:
    assert LSST.rgb_bands() == ("i", "r", "g")
    image = np.zeros((3, 8, 8))
    image[:, 7, 0] = 100.0  # top row (largest y)
    rgb = asinh_rgb(image, bands=LSST.bands, rgb=("i", "r", "g"))
    assert rgb.shape == (8, 8, 3) and rgb.min() >= 0.0 and rgb.max() <= 1.0
    assert rgb[0, 0].sum() > 0.0 and rgb[7, 0].sum() == 0.0


def test_a_gallery_needs_three_bands() -> None:
    from dataclasses import replace

    with pytest.raises(SimulationError, match="three image bands"):
        replace(LSST, bands=("g", "r")).rgb_bands()
