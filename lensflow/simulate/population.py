"""Simulator populations: "classic" (the original priors) and "wide" (the priors widened so that
training data cover what real skies show).

A population is chosen by name wherever scenes are drawn (`draw_scene`, training sets, the
gallery, the training configs' set specs) and defaults to "classic", whose scenes stay the same
bit for bit. "wide" changes, per cutout:

1. PSFs: per band, an elliptical Moffat of beta 2.5-5 or a Gaussian core with a Moffat wing,
   |e| up to 0.08 (`psf_shapes`).
2. Noise: correlated as a Lanczos-3 resampled coadd's, same per-pixel sigma (`coadd_noise`).
3. Field galaxies at deep-field number counts to 2 mag below the depth (`field_counts`).
4. Red light (lens light too) in two components, redder inside (`wide_parts`).
5. Sources with clumps of varied number, size and colour; lensed quasars (`wide_lenses`).
6. Harder non-lenses: tangential and arc-like companions, knotted rings, spirals of every
   pattern, mergers with tidal features, chance alignments, stars beside galaxies
   (`wide_galaxies`, `wide_lookalikes`).
7. Galaxy colours from SED templates at redshift through the survey's filter curves
   (`sed_colours`: kcorrect's templates, speclite's curves); stars, quasars, the smooth discs
   of spirals, and the face-on and edge-on disc classes (drawn as in classic) keep the laws.
The classes are the same; a class's variant (`WIDE_VARIANTS`) is recorded in `Scene.variant`.
Face-on and edge-on discs, stars and artefacts keep their classic drawers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from frozendict import frozendict

from lensflow.errors import SimulationError
from lensflow.simulate.draw_base import DrawContext, Drawn
from lensflow.simulate.draw_galaxies import draw_disc_edge_on, draw_disc_face_on
from lensflow.simulate.draw_stars import draw_artefact, draw_star
from lensflow.simulate.wide_galaxies import (
    WIDE_ELLIPTICAL,
    WIDE_RING,
    WIDE_SPIRAL,
    draw_wide_elliptical,
    draw_wide_ring,
    draw_wide_spiral,
)
from lensflow.simulate.wide_lenses import LENS_VARIANTS, draw_wide_lens
from lensflow.simulate.wide_lookalikes import (
    WIDE_GROUP,
    WIDE_MERGER,
    WIDE_NEIGHBOURS,
    draw_wide_group,
    draw_wide_merger,
    draw_wide_neighbours,
)

POPULATIONS: tuple[str, ...] = ("classic", "wide")
"""Simulator populations by name; "classic" is the default everywhere."""

DEFAULT_POPULATION = "classic"

WIDE_DRAWERS: Mapping[str, Callable[[DrawContext], Drawn]] = frozendict(
    {
        "lens": draw_wide_lens,
        "elliptical": draw_wide_elliptical,
        "spiral": draw_wide_spiral,
        "disc_face_on": draw_disc_face_on,
        "disc_edge_on": draw_disc_edge_on,
        "ring": draw_wide_ring,
        "merger": draw_wide_merger,
        "blue_neighbours": draw_wide_neighbours,
        "group": draw_wide_group,
        "star": draw_star,
        "artefact": draw_artefact,
    }
)
"""The drawer of each class in the wide population."""

WIDE_VARIANTS: Mapping[str, tuple[str, ...]] = frozendict(
    {
        "lens": tuple(LENS_VARIANTS),
        "elliptical": tuple(WIDE_ELLIPTICAL.variants),
        "spiral": tuple(WIDE_SPIRAL.variants),
        "ring": tuple(WIDE_RING.variants),
        "merger": tuple(WIDE_MERGER.variants),
        "blue_neighbours": tuple(WIDE_NEIGHBOURS.variants),
        "group": tuple(WIDE_GROUP.variants),
    }
)
"""The variants a wide class is drawn as (a class not listed has one look)."""


def check_population(name: str) -> str:
    """The population's name, or a SimulationError naming the known ones."""
    if name not in POPULATIONS:
        raise SimulationError(f"unknown population {name!r}; choose one of {list(POPULATIONS)}")
    return name
