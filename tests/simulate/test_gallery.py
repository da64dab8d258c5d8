"""The gallery PNG: one row per class of asinh RGB composites."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from matplotlib import image as mpimg

from lensflow.errors import SimulationError
from lensflow.simulate import CLASSES, make_gallery
from lensflow.simulate.gallery import asinh_rgb, gallery_shape
from lensflow.surveys import survey_profile


def test_gallery_is_a_png_of_the_expected_size(tmp_path: Path) -> None:
    path = make_gallery(tmp_path / "docs" / "gallery.png", seed=0, per_class=2)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    pixels = mpimg.imread(path)
    assert pixels.shape[:2] == gallery_shape(2, len(CLASSES))
    assert pixels.shape[2] in (3, 4)
    assert pixels[..., :3].std() > 0.05


def test_asinh_rgb_maps_i_r_g_to_red_green_blue_with_y_up() -> None:
    image = np.zeros((3, 16, 16), dtype=np.float32)
    image[2, 15, 3] = 500.0  # i band, top row (largest y)
    image[0, 0, 8] = 500.0  # g band, bottom row
    rgb = asinh_rgb(image, bands=("g", "r", "i"), rgb=survey_profile("lsst").rgb_bands())
    assert rgb.shape == (16, 16, 3)
    assert rgb.min() >= 0.0 and rgb.max() <= 1.0
    assert rgb[0, 3, 0] > 0.5 and rgb[0, 3, 1] == 0.0 and rgb[0, 3, 2] == 0.0
    assert rgb[15, 8, 2] > 0.5 and rgb[15, 8, 0] == 0.0
    with pytest.raises(SimulationError, match="RGB composite"):
        asinh_rgb(image, bands=("u", "g", "r"), rgb=("i", "r", "g"))


def test_the_rgb_bands_are_the_three_reddest_image_bands_red_first() -> None:
    assert survey_profile("lsst").rgb_bands() == ("i", "r", "g")
    assert survey_profile("hsc").rgb_bands() == ("y", "z", "i")
    assert survey_profile("legacy").rgb_bands() == ("z", "i", "r")


def test_a_gallery_of_another_survey_uses_its_bands(tmp_path: Path) -> None:
    hsc = survey_profile("hsc")
    path = make_gallery(tmp_path / "hsc.png", seed=1, per_class=1, survey=hsc, classes=["lens"])
    assert mpimg.imread(path).shape[:2] == gallery_shape(1, 1)


def test_a_wide_gallery_has_a_row_per_class_variant(tmp_path: Path) -> None:
    from lensflow.simulate.gallery import gallery_rows

    rows = gallery_rows(CLASSES, "wide")
    assert ("lens", "quasar") in rows and ("group", "chance_alignment") in rows
    assert ("star", None) in rows and len(rows) == len(set(rows)) > len(CLASSES)
    assert gallery_rows(CLASSES, "classic") == [(kind, None) for kind in CLASSES]
    png = make_gallery(
        tmp_path / "wide.png", seed=2, per_class=1, classes=("lens", "ring"), population="wide"
    )
    pixels = mpimg.imread(png)
    assert pixels.shape[:2] == gallery_shape(1, 2 + 3)
