"""Non-lenses of the check set, one drawer per class, the classes that fool lens finders first.

Each drawer takes the object's random stream, the survey, the cutout's seeing and the main
object's centre, and returns its lights, point sources and a few parameters. Red galaxies are
drawn as deflectors (`draw_deflector`: the lens galaxies' own population, theta_E in the lens
range, no source behind), so a model cannot tell lenses by their lens galaxy alone.
Magnitudes are AB at REF_NM; separations and radii in arcsec.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace

import numpy as np

from lensflow.independent.deflectors import draw_deflector
from lensflow.independent.galaxies import star_forming_galaxy
from lensflow.independent.population import (
    Light,
    Points,
    Seeing,
    count_law,
    ellipticity,
    rayleigh_q,
    sersic_light,
)
from lensflow.independent.seds import SED, red_sed
from lensflow.independent.structured import (
    Drawn,
    draw_edge_on_disc,
    draw_merger,
    draw_ring_galaxy,
    draw_spiral,
    offset,
)
from lensflow.surveys import Survey

Drawer = Callable[[np.random.Generator, Survey, Seeing, tuple[float, float]], Drawn]


def _theta_range(survey: Survey, seeing: Seeing) -> tuple[float, float]:
    half = 0.5 * survey.cutout_size * survey.pixel_scale_arcsec
    return 0.5 * seeing.mean_fwhm(), 0.5 * half


def red_host(
    rng: np.random.Generator, survey: Survey, seeing: Seeing, center: tuple[float, float]
) -> tuple[list[Light], float, float]:
    """A deflector-like red galaxy: its lights, magnitude and effective radius."""
    _, lights, params = draw_deflector(
        rng, center=center, theta_e_range=_theta_range(survey, seeing)
    )
    return lights, params["lens_mag_ref"], params["lens_r_e"]


def reshaped(light: Light, q: float, phi: float) -> Light:
    """The same Sersic light with another axis ratio and angle."""
    e1, e2 = ellipticity(q, phi)
    kwargs = ({**light.kwargs[0], "e1": e1, "e2": e2},)
    return replace(light, kwargs=kwargs)


def draw_elliptical(
    rng: np.random.Generator, survey: Survey, seeing: Seeing, center: tuple[float, float]
) -> Drawn:
    """A plain early-type galaxy (bulge and envelope)."""
    lights, mag, r_e = red_host(rng, survey, seeing, center)
    return lights, [], {"mag_ref": mag, "r_e": r_e}


def draw_blue_companions(
    rng: np.random.Generator, survey: Survey, seeing: Seeing, center: tuple[float, float]
) -> Drawn:
    """A red galaxy with 1-5 blue star-forming companions at 0.6-4.5", any angle; each is
    tangentially elongated (q 0.2-0.5, major axis across the line to the host) with chance 0.5."""
    lights, mag, _ = red_host(rng, survey, seeing, center)
    n = min(5, 1 + int(rng.poisson(1.2)))
    tangential = 0
    for _ in range(n):
        sep, angle = float(rng.uniform(0.6, 4.5)), float(rng.uniform(0.0, 2.0 * math.pi))
        z = float(rng.uniform(0.3, 2.5))
        comp = star_forming_galaxy(
            rng, z=z, mag_ref=mag + float(rng.uniform(1.5, 5.0)), center=offset(center, sep, angle)
        )
        if rng.uniform() < 0.5:
            comp = reshaped(comp, float(rng.uniform(0.2, 0.5)), angle + math.pi / 2.0)
            tangential += 1
        lights.append(comp)
    return lights, [], {"mag_ref": mag, "n_companions": n, "n_tangential": tangential}


def draw_chance_alignment(
    rng: np.random.Generator, survey: Survey, seeing: Seeing, center: tuple[float, float]
) -> Drawn:
    """A foreground galaxy (red, or a star-forming disc) and an unrelated, fainter galaxy
    behind it 0.3-2.5" away, overlapping in projection, not lensed."""
    if rng.uniform() < 0.6:
        lights, mag, _ = red_host(rng, survey, seeing, center)
        z_front = 0.5
    else:
        z_front = float(rng.uniform(0.1, 0.6))
        mag = float(rng.uniform(19.0, 22.5))
        lights = [
            star_forming_galaxy(rng, z=z_front, mag_ref=mag, center=center, n_range=(0.8, 1.5))
        ]
    sep, angle = float(rng.uniform(0.3, 2.5)), float(rng.uniform(0.0, 2.0 * math.pi))
    z_back = float(rng.uniform(z_front + 0.3, 3.0))
    back_mag = mag + float(rng.uniform(0.5, 3.0))
    if rng.uniform() < 0.7:
        lights.append(
            star_forming_galaxy(rng, z=z_back, mag_ref=back_mag, center=offset(center, sep, angle))
        )
    else:
        lights.append(
            sersic_light(
                float(rng.uniform(0.2, 0.8)),
                4.0,
                rayleigh_q(rng, 0.25),
                float(rng.uniform(0, math.pi)),
                offset(center, sep, angle),
                sed=red_sed(rng, min(z_back, 1.5)),
                mag_ref=back_mag,
            )
        )
    return lights, [], {"mag_ref": mag, "separation": sep}


def draw_star_beside_galaxy(
    rng: np.random.Generator, survey: Survey, seeing: Seeing, center: tuple[float, float]
) -> Drawn:
    """A galaxy (red 70 %, else star-forming) with 1-3 stars 0.8-4" away; with chance 0.3 two
    stars flank it on opposite sides (a lensed-quasar look-alike). Stars: black bodies of
    3,200-10,000 K (log-uniform), r-like magnitudes 17-23.5."""
    if rng.uniform() < 0.7:
        lights, mag, _ = red_host(rng, survey, seeing, center)
    else:
        mag = float(rng.uniform(19.0, 22.5))
        lights = [
            star_forming_galaxy(rng, z=float(rng.uniform(0.1, 0.8)), mag_ref=mag, center=center)
        ]
    flank = rng.uniform() < 0.3
    n = 2 if flank else int(rng.integers(1, 4))
    angle0 = float(rng.uniform(0.0, 2.0 * math.pi))
    points = []
    for k in range(n):
        angle = (
            angle0 + math.pi + float(rng.normal(0.0, 0.3))
            if (flank and k == 1)
            else float(rng.uniform(0, 2 * math.pi))
        )
        x, y = offset(center, float(rng.uniform(0.8, 4.0)), angle0 if (flank and k == 0) else angle)
        temperature = math.exp(float(rng.uniform(math.log(3200.0), math.log(10000.0))))
        star = SED("star", 0.0, (temperature,))
        points.append(
            Points((x,), (y,), (1.0,), star, float(rng.uniform(17.0, 23.5)), central=False)
        )
    return lights, points, {"mag_ref": mag, "n_stars": n, "flanked": float(flank)}


def draw_field(
    rng: np.random.Generator, survey: Survey, seeing: Seeing, center: tuple[float, float]
) -> Drawn:
    """Blank sky with a faint galaxy at the centre (30 % red) and the field around it."""
    mag = count_law(rng, 21.0, 25.0, 0.3)
    if rng.uniform() < 0.3:
        light = sersic_light(
            float(rng.uniform(0.15, 0.6)),
            3.0,
            rayleigh_q(rng, 0.25),
            float(rng.uniform(0, math.pi)),
            center,
            sed=red_sed(rng, float(rng.uniform(0.2, 1.0))),
            mag_ref=mag,
        )
    else:
        light = star_forming_galaxy(rng, z=float(rng.uniform(0.2, 2.5)), mag_ref=mag, center=center)
    return [light], [], {"mag_ref": mag}


DRAWERS: dict[str, Drawer] = {
    "elliptical": draw_elliptical,
    "blue_companions": draw_blue_companions,
    "ring_galaxy": draw_ring_galaxy,
    "spiral": draw_spiral,
    "edge_on_disc": draw_edge_on_disc,
    "merger": draw_merger,
    "chance_alignment": draw_chance_alignment,
    "star_beside_galaxy": draw_star_beside_galaxy,
    "field": draw_field,
}
"""The drawer of each non-lens class."""
