"""Non-lenses with structure: ring galaxies, spirals, edge-on discs and mergers (the INTERPOL
templates of lensflow.independent.templates on analytic discs and bulges). Drawers as in
lensflow.independent.lookalikes; magnitudes AB at REF_NM, sizes in arcsec."""

from __future__ import annotations

import math

import numpy as np

from lensflow.independent.galaxies import star_forming_galaxy
from lensflow.independent.population import Light, Points, Seeing, rayleigh_q, sersic_light
from lensflow.independent.seds import SED, blue_sed, red_sed
from lensflow.independent.templates import ring, spiral_arms, template_light, tidal_features
from lensflow.surveys import Survey

Drawn = tuple[list[Light], list[Points], dict[str, float]]


def offset(center: tuple[float, float], r: float, angle: float) -> tuple[float, float]:
    """The point r arcsec from center at angle (rad)."""
    return center[0] + r * math.cos(angle), center[1] + r * math.sin(angle)


def draw_ring_galaxy(
    rng: np.random.Generator, survey: Survey, seeing: Seeing, center: tuple[float, float]
) -> Drawn:
    """A nucleus inside a knotty, often lopsided, blue ring of radius 0.8-3" (ring galaxy)."""
    z = float(rng.uniform(0.1, 0.6))
    mag = float(rng.uniform(19.0, 22.5))
    share = float(rng.uniform(0.3, 0.7))
    radius = float(rng.uniform(0.8, 3.0))
    q, phi = float(rng.uniform(0.5, 1.0)), float(rng.uniform(0.0, math.pi))
    nucleus_at = offset(
        center, float(rng.uniform(0.0, 0.3)) * radius, float(rng.uniform(0, 2 * math.pi))
    )
    nucleus = sersic_light(
        float(rng.uniform(0.15, 0.5)),
        float(rng.uniform(2.0, 4.0)),
        rayleigh_q(rng, 0.2),
        phi,
        nucleus_at,
        sed=red_sed(rng, z),
        mag_ref=mag - 2.5 * math.log10(1 - share),
    )
    image, scale = ring(rng, radius=radius, width=float(rng.uniform(0.08, 0.3)), q=q, phi=phi)
    band = template_light(
        image,
        scale,
        center,
        sed=blue_sed(rng, z),
        mag_ref=mag - 2.5 * math.log10(share),
        size=radius,
    )
    return [nucleus, band], [], {"mag_ref": mag, "ring_radius": radius}


def draw_spiral(
    rng: np.random.Generator, survey: Survey, seeing: Seeing, center: tuple[float, float]
) -> Drawn:
    """A bulge, an exponential disc and bluer logarithmic spiral arms with knots (INTERPOL)."""
    z = float(rng.uniform(0.05, 0.6))
    mag = float(rng.uniform(18.5, 22.5))
    disc_r = float(rng.uniform(0.8, 2.5))
    q, phi = float(rng.uniform(0.35, 1.0)), float(rng.uniform(0.0, math.pi))
    bulge, arms = float(rng.uniform(0.05, 0.35)), float(rng.uniform(0.2, 0.5))
    disc = 1.0 - bulge - arms
    lights = [
        sersic_light(
            float(rng.uniform(0.15, 0.5)),
            float(rng.uniform(2.0, 4.0)),
            min(1.0, q + 0.2),
            phi,
            center,
            sed=red_sed(rng, z),
            mag_ref=mag - 2.5 * math.log10(bulge),
        ),
        sersic_light(
            disc_r,
            1.0,
            q,
            phi,
            center,
            sed=SED("star_forming", z, (-1.2, 1.6, 1.3)),
            mag_ref=mag - 2.5 * math.log10(disc),
        ),
    ]
    image, scale = spiral_arms(rng, disc_r=disc_r, q=q, phi=phi)
    lights.append(
        template_light(
            image,
            scale,
            center,
            sed=blue_sed(rng, z, bluer=0.2),
            mag_ref=mag - 2.5 * math.log10(arms),
            size=disc_r,
        )
    )
    return lights, [], {"mag_ref": mag, "disc_r": disc_r, "q": q}


def draw_edge_on_disc(
    rng: np.random.Generator, survey: Survey, seeing: Seeing, center: tuple[float, float]
) -> Drawn:
    """A thin exponential disc (q 0.08-0.2) with a small, rounder bulge."""
    z = float(rng.uniform(0.05, 0.7))
    mag = float(rng.uniform(18.5, 22.5))
    bulge = float(rng.uniform(0.05, 0.4))
    r_d, phi = float(rng.uniform(1.0, 3.0)), float(rng.uniform(0.0, math.pi))
    lights = [
        sersic_light(
            r_d,
            1.0,
            float(rng.uniform(0.08, 0.2)),
            phi,
            center,
            sed=SED("star_forming", z, (-1.0, float(rng.uniform(1.4, 2.2)), 1.3)),
            mag_ref=mag - 2.5 * math.log10(1.0 - bulge),
        ),
        sersic_light(
            float(rng.uniform(0.15, 0.5)),
            float(rng.uniform(2.0, 4.0)),
            float(rng.uniform(0.6, 0.9)),
            phi,
            center,
            sed=red_sed(rng, z),
            mag_ref=mag - 2.5 * math.log10(bulge),
        ),
    ]
    return lights, [], {"mag_ref": mag, "disc_r": r_d}


def draw_merger(
    rng: np.random.Generator, survey: Survey, seeing: Seeing, center: tuple[float, float]
) -> Drawn:
    """Two interacting galaxies 0.4-3" apart (red+red, red+blue or blue+blue) with tidal tails
    or shells holding 10-30 % of the light."""
    z = float(rng.uniform(0.1, 0.7))
    mag = float(rng.uniform(18.5, 22.0))
    pair = str(rng.choice(["red-red", "red-blue", "blue-blue"], p=[0.4, 0.4, 0.2]))
    sep, angle = float(rng.uniform(0.4, 3.0)), float(rng.uniform(0.0, 2.0 * math.pi))
    second = offset(center, sep, angle)
    ratio = float(rng.uniform(1.0, 4.0))
    tidal = float(rng.uniform(0.1, 0.3))
    shares = ((1.0 - tidal) * ratio / (1 + ratio), (1.0 - tidal) / (1 + ratio))
    lights = []
    for colour, at, share in zip(pair.split("-"), (center, second), shares, strict=True):
        total = mag - 2.5 * math.log10(share)
        if colour == "red":
            lights.append(
                sersic_light(
                    float(rng.uniform(0.3, 1.2)),
                    float(rng.uniform(2.5, 4.5)),
                    rayleigh_q(rng, 0.25),
                    float(rng.uniform(0, math.pi)),
                    at,
                    sed=red_sed(rng, z),
                    mag_ref=total,
                )
            )
        else:
            lights.append(
                star_forming_galaxy(rng, z=z, mag_ref=total, center=at, n_range=(0.7, 2.0))
            )
    image, scale, kind = tidal_features(
        rng,
        origins=[(0.0, 0.0), (second[0] - center[0], second[1] - center[1])],
        reach=float(rng.uniform(2.0, 4.5)),
    )
    sed = red_sed(rng, z, bluer=0.3) if pair == "red-red" else blue_sed(rng, z)
    lights.append(
        template_light(
            image, scale, center, sed=sed, mag_ref=mag - 2.5 * math.log10(tidal), size=sep
        )
    )
    return lights, [], {"mag_ref": mag, "separation": sep, "shells": float(kind == "shells")}
