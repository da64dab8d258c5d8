"""Noise of a resampled coadd (the wide population): white noise correlated as warping makes it.

A coadd is the sum of exposures each warped onto the coadd's pixel grid. Warping interpolates
an exposure's pixels with a Lanczos-3 kernel at the exposure's sub-pixel offset from the grid
(the default of SWarp, Bertin et al. 2002, ASP Conf. Ser. 281, 228, and of the HSC/Rubin
pipelines' warping, Bosch et al. 2018, PASJ 70, S5), so each exposure's white pixel noise
reaches the coadd convolved with that kernel, and neighbouring coadd pixels share noise
(Casertano et al. 2000, AJ 120, 2747, work out the same effect for drizzled images).
`CoaddNoise` holds one sub-pixel shift (dx, dy) per exposure; `correlated_noise` draws the
coadd's noise field, rescaled to unit variance per pixel, so that the noise sigma per pixel
stays the survey profile's (sky plus source Poisson noise, `observe.noise_sigma`).

The coadd's pixel correlation at lag one pixel along x is
    rho_x = sum_i A_x,i(1) S_y,i / sum_i S_x,i S_y,i,
with S = sum_k w_k^2 and A(1) = sum_k w_k w_(k+1) of exposure i's Lanczos-3 weights w along each
axis (the kernel is separable), and likewise along y (`CoaddNoise.neighbour_correlation`). A
shift of 0 leaves the noise white (rho = 0); a shift of half a pixel gives the largest,
rho = 0.256; over uniform shifts a many-exposure coadd has rho = 0.112 along each axis (the
mean lag-one autocovariance over the mean variance), rho_x rho_y at lag (1, 1), and -0.076 at
lag two (the kernel's negative lobes; up to 0.17 in size for a single exposure).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from lensflow.errors import SimulationError
from lensflow.simulate.geometry import FloatArray

LANCZOS_ORDER = 3
"""Order a of the Lanczos kernel sinc(t) sinc(t / a), |t| < a (2a taps per axis)."""


def lanczos_weights(shift: float, order: int = LANCZOS_ORDER) -> FloatArray:
    """The 2 order taps of Lanczos interpolation at a sub-pixel shift in [0, 1), summing to 1.

    Tap k (k = -order + 1 .. order) weighs the input pixel k away from the output pixel by
    L(shift - k), L(t) = sinc(t) sinc(t / order); shift 0 gives a delta (no resampling).
    """
    if not 0.0 <= shift < 1.0:
        raise SimulationError(f"sub-pixel shift must be in [0, 1), got {shift}")
    t = shift - np.arange(-order + 1, order + 1, dtype=np.float64)
    out: FloatArray
    if shift == 0.0:  # exactly a delta (np.sinc leaves ~1e-17 at the other integers)
        out = (t == 0.0).astype(np.float64)
    else:
        w = np.sinc(t) * np.sinc(t / order)
        out = w / w.sum()
    return out


def _lag_one(w: FloatArray) -> float:
    """sum_k w_k w_(k+1): the lag-one autocovariance of a filter's output on white noise."""
    return float(np.dot(w[:-1], w[1:]))


@functools.lru_cache(maxsize=1024)
def _exposure_weights(
    shifts: tuple[tuple[float, float], ...], order: int
) -> tuple[tuple[FloatArray, FloatArray], ...]:
    """Lanczos weights (x, y) of each exposure's shifts, read-only."""
    out = []
    for dx, dy in shifts:
        wx, wy = lanczos_weights(dx, order), lanczos_weights(dy, order)
        wx.setflags(write=False)
        wy.setflags(write=False)
        out.append((wx, wy))
    return tuple(out)


@dataclass(frozen=True)
class CoaddNoise:
    """A coadd's noise: one sub-pixel shift (dx, dy) in pixels, each in [0, 1), per exposure."""

    shifts: tuple[tuple[float, float], ...]
    order: int = LANCZOS_ORDER

    def __post_init__(self) -> None:
        if not self.shifts:
            raise SimulationError("a coadd needs at least one exposure shift")
        for dx, dy in self.shifts:
            lanczos_weights(dx, self.order)
            lanczos_weights(dy, self.order)

    def weights(self) -> tuple[tuple[FloatArray, FloatArray], ...]:
        """Per exposure, the Lanczos weights along x and along y (cached, read-only)."""
        return _exposure_weights(self.shifts, self.order)

    def variance(self) -> float:
        """Variance per pixel of the summed resampled exposures of unit white noise."""
        return float(sum(float(wx @ wx) * float(wy @ wy) for wx, wy in self.weights()))

    def neighbour_correlation(self) -> tuple[float, float]:
        """Expected correlation of pixels one apart along x and along y (see the module)."""
        total = self.variance()
        rho_x = sum(_lag_one(wx) * float(wy @ wy) for wx, wy in self.weights()) / total
        rho_y = sum(_lag_one(wy) * float(wx @ wx) for wx, wy in self.weights()) / total
        return rho_x, rho_y


def correlated_noise(
    rng: np.random.Generator, shape: tuple[int, int], noise: CoaddNoise
) -> FloatArray:
    """A unit-variance noise field (ny, nx) correlated as the coadd's is.

    Each exposure's white noise, drawn with a margin of the kernel's half-width, is convolved
    separably with its Lanczos weights ("valid" part), the exposures are summed, and the sum
    is divided by its expected sigma.
    """
    ny, nx = shape
    taps = 2 * noise.order
    out = np.zeros(shape)
    for wx, wy in noise.weights():
        white = rng.standard_normal((ny + taps - 1, nx + taps - 1))
        rows = sum(wx[k] * white[:, k : k + nx] for k in range(taps))
        out += sum(wy[k] * rows[k : k + ny, :] for k in range(taps))
    result: FloatArray = out / math.sqrt(noise.variance())
    return result


@dataclass(frozen=True)
class CoaddNoisePrior:
    """How many exposures a band's coadd holds; their shifts are uniform in [0, 1) pixels.

    From one exposure resampled (the strongest correlation a survey image shows, any shift) to
    a dozen (HSC-Wide coadds hold 4-6 visits per band, Aihara et al. 2018, PASJ 70, S8; a
    many-visit coadd tends to the mean correlation stated in the module).
    """

    exposures: tuple[int, int] = (1, 13)


COADD_NOISE = CoaddNoisePrior()


def draw_coadd_noise(rng: np.random.Generator, prior: CoaddNoisePrior = COADD_NOISE) -> CoaddNoise:
    """One band's coadd noise: a number of exposures, each at a uniform sub-pixel shift."""
    k = int(rng.integers(*prior.exposures))
    shifts = rng.uniform(0.0, 1.0, size=(k, 2))
    return CoaddNoise(tuple((float(dx), float(dy)) for dx, dy in shifts))
