"""Deflectors for injections: photometry measured on real cutouts, a catalog's columns, redshifts
and velocity dispersions.

Every cutout of a store is measured from its own pixels (`measure_group`, one task per group):
AB magnitudes in a central aperture (APERTURE_CORE_ARCSEC radius, for colours) and in a wide
one (APERTURE_TOTAL_ARCSEC, for brightness), the sky noise (1.4826 x the median absolute
deviation of the pixels beyond SKY_INNER_ARCSEC), a windowed centroid and the light's axis
ratio and angle from windowed second moments. A catalog (Parquet with `id` and optional
`mag_<band>`, `z` or `redshift`, `class`, `is_lens`) overrides the wide-aperture magnitudes
and gives redshifts; without one, the redshift is a photometric proxy: the redshift whose
red-sequence colours (lensflow.simulate.colours.red_sequence) are nearest the measured g-r
and r-i. `FaberJackson` turns an r magnitude and redshift into a velocity dispersion.
Magnitudes are AB, lengths arcsec, images (N, bands, n, n) in nJy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from lensflow.cuts import check_columns, parse_cuts
from lensflow.errors import SimulationError
from lensflow.simulate.colours import red_k_correction_r, red_sequence
from lensflow.simulate.cosmology import luminosity_distance
from lensflow.simulate.render import pixel_centres

APERTURE_CORE_ARCSEC = 1.0
"""Radius of the central aperture whose magnitudes (`apmag_<band>`) give the colours."""
APERTURE_TOTAL_ARCSEC = 3.0
"""Radius of the wide aperture whose magnitudes (`mag_<band>`) stand for the total light."""
SKY_INNER_ARCSEC = 4.0
"""Pixels beyond this radius measure the sky noise."""
SHAPE_WINDOW_ARCSEC = 1.0
CENTRE_WINDOW_ARCSEC = 0.5
"""Gaussian windows (sigma) of the second moments and of the centroid."""

DEFAULT_WHERE = "mag_r < 22 and apmag_g - apmag_r > 1.0 and apmag_r - apmag_i > 0.35"
"""Red, bright galaxies (LRG-like): the default deflector selection."""

REDSHIFT_GRID = np.linspace(0.02, 1.5, 741)
COLOUR_SIGMA = 0.1
"""Assumed error (mag) of a measured colour in the photometric-redshift proxy."""


@dataclass(frozen=True)
class GroupPhotometry:
    """What `measure_group` measures on each cutout of a group, by row (ids ascending)."""

    group: str
    ids: npt.NDArray[np.int64]
    core_mag: npt.NDArray[np.float64]  # (N, bands) AB within APERTURE_CORE_ARCSEC
    total_mag: npt.NDArray[np.float64]  # (N, bands) AB within APERTURE_TOTAL_ARCSEC
    sky_sigma: npt.NDArray[np.float64]  # (N, bands) nJy per pixel
    centre: npt.NDArray[np.float64]  # (N, 2) arcsec (x, y) from the cutout centre
    light_q: npt.NDArray[np.float64]  # (N,)
    light_phi: npt.NDArray[np.float64]  # (N,) radians


@dataclass(frozen=True)
class Deflector:
    """A chosen deflector: its cutout's id and group, r magnitude, redshift (z_from_colour:
    the photometric proxy), light centre (arcsec), axis ratio and angle, sky sigma per band."""

    id: int
    group: str
    mag_r: float
    z: float
    z_from_colour: bool
    x: float
    y: float
    light_q: float
    light_phi: float
    sky_sigma: tuple[float, ...]


def deflector_from_row(table: pa.Table, row: int, bands: Sequence[str]) -> Deflector:
    """The Deflector of one row of a deflector table."""

    def value(name: str) -> Any:
        return table[name][row].as_py()

    return Deflector(
        id=int(value("id")),
        group=str(value("group")),
        mag_r=float(value("mag_r")),
        z=float(value("z")),
        z_from_colour=bool(value("z_from_colour")),
        x=float(value("x")),
        y=float(value("y")),
        light_q=float(value("light_q")),
        light_phi=float(value("light_phi")),
        sky_sigma=tuple(float(value(f"sky_sigma_{b}")) for b in bands),
    )


def _magnitudes(flux: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(flux > 0.0, 31.4 - 2.5 * np.log10(flux), np.nan)


def measure_cutouts(
    images: npt.ArrayLike,
    *,
    pixel_scale: float,
    shape_band: int,
    group: str = "",
    ids: npt.ArrayLike = (),
) -> GroupPhotometry:
    """Aperture photometry, sky noise, centroid and shape of cutouts (N, bands, n, n) in nJy.

    The centroid and shape are measured in band index shape_band; the centroid moves at most a
    pixel from the cutout centre.
    """
    cube = np.asarray(images, dtype=np.float64)
    n = cube.shape[-1]
    c = pixel_centres(n, pixel_scale)
    gx, gy = np.meshgrid(c, c)
    r = np.hypot(gx, gy)
    core = _magnitudes((cube * (r < APERTURE_CORE_ARCSEC)).sum(axis=(2, 3)))
    total = _magnitudes((cube * (r < APERTURE_TOTAL_ARCSEC)).sum(axis=(2, 3)))
    outer = r > min(SKY_INNER_ARCSEC, 0.35 * n * pixel_scale)
    sky = cube[:, :, outer]
    mad = np.median(np.abs(sky - np.median(sky, axis=-1, keepdims=True)), axis=-1)
    light = np.clip(cube[:, shape_band], 0.0, None)
    x0 = np.zeros(len(cube))
    y0 = np.zeros(len(cube))
    for _ in range(3):
        dx, dy = gx[None] - x0[:, None, None], gy[None] - y0[:, None, None]
        w = light * np.exp(-0.5 * (dx * dx + dy * dy) / CENTRE_WINDOW_ARCSEC**2)
        norm = np.maximum(w.sum(axis=(1, 2)), 1e-30)
        step = pixel_scale
        x0 = np.clip(x0 + (w * dx).sum(axis=(1, 2)) / norm, -step, step)
        y0 = np.clip(y0 + (w * dy).sum(axis=(1, 2)) / norm, -step, step)
    dx, dy = gx[None] - x0[:, None, None], gy[None] - y0[:, None, None]
    w = light * np.exp(-0.5 * (dx * dx + dy * dy) / SHAPE_WINDOW_ARCSEC**2)
    mxx, myy, mxy = ((w * m).sum(axis=(1, 2)) for m in (dx * dx, dy * dy, dx * dy))
    trace = np.maximum(mxx + myy, 1e-30)
    chi = np.clip(np.hypot(mxx - myy, 2.0 * mxy) / trace, 0.0, 0.999)
    return GroupPhotometry(
        group=group,
        ids=np.asarray(ids, dtype=np.int64).reshape(-1),
        core_mag=core,
        total_mag=total,
        sky_sigma=1.4826 * mad,
        centre=np.stack([x0, y0], axis=1),
        light_q=np.sqrt((1.0 - chi) / (1.0 + chi)),
        light_phi=0.5 * np.arctan2(2.0 * mxy, mxx - myy) % math.pi,
    )


def measure_group(
    store: Path, group: str, *, pixel_scale: float, shape_band: int
) -> GroupPhotometry:
    """`measure_cutouts` of every cutout of one group of a store (a task)."""
    from lensflow.cutouts import read_group

    ids, images = read_group(Path(store), group)
    return measure_cutouts(
        images, pixel_scale=pixel_scale, shape_band=shape_band, group=group, ids=ids
    )


def colour_redshift(g_r: npt.ArrayLike, r_i: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """Photometric-redshift proxy: the red-sequence redshift nearest the colours (NaN if none)."""
    gr = np.asarray(g_r, dtype=np.float64).reshape(-1)
    ri = np.asarray(r_i, dtype=np.float64).reshape(-1)
    model_gr, model_ri, _ = red_sequence(REDSHIFT_GRID)
    chi2 = (gr[:, None] - model_gr[None]) ** 2 + (ri[:, None] - model_ri[None]) ** 2
    best = REDSHIFT_GRID[np.argmin(np.where(np.isfinite(chi2), chi2, np.inf), axis=1)]
    return np.where(np.isfinite(gr) & np.isfinite(ri), best, np.nan)


@dataclass(frozen=True)
class FaberJackson:
    """sigma = sigma_star (L / L*)^(1 / gamma), L from the r magnitude at the deflector's z.

    L* is M*_r = -21.21 (Blanton et al. 2003, 0.1r: M* - 5 log10 h = -20.44, h = 0.7) at z_ref,
    brightening by evolution_mag_per_z per unit redshift (passive fading of red galaxies, Bell
    et al. 2004); sigma_star = 161 km/s, the characteristic dispersion of SDSS early types
    (Choi, Park & Vogeley 2007); gamma = 4 (Faber & Jackson 1976; sigma ~ L^0.25 in SDSS r,
    Bernardi et al. 2003). The K-correction is lensflow's red-galaxy table; scatter_dex is the
    log-normal scatter of sigma at fixed L (a design value).
    """

    sigma_star_kms: float = 161.0
    abs_mag_star_r: float = -21.21
    gamma: float = 4.0
    evolution_mag_per_z: float = 1.5
    z_ref: float = 0.1
    scatter_dex: float = 0.08

    def absolute_mag_r(self, mag_r: float, z: float) -> float:
        """Rest-frame r absolute magnitude: m - distance modulus - K(z)."""
        modulus = 5.0 * math.log10(luminosity_distance(z) * 1e5)
        return mag_r - modulus - red_k_correction_r(z)

    def sigma_kms(self, mag_r: float, z: float) -> float:
        """Mean velocity dispersion (km/s) of an early type of r magnitude mag_r at redshift z."""
        faded = self.absolute_mag_r(mag_r, z) + self.evolution_mag_per_z * (z - self.z_ref)
        luminosity = 10.0 ** (-0.4 * (faded - self.abs_mag_star_r))
        return float(self.sigma_star_kms * luminosity ** (1.0 / self.gamma))


def read_catalog(path: Path, bands: Sequence[str]) -> pa.Table:
    """A deflector catalog: id int64 and whichever of mag_<band>, z, class, is_lens it has.

    `redshift` is read as z. Ids must be unique.
    """
    path = Path(path)
    try:
        schema = pq.read_schema(path)
    except FileNotFoundError:
        raise SimulationError(f"{path}: no labels or catalog file here") from None
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise SimulationError(f"{path}: not a Parquet file ({exc})") from exc
    if "id" not in schema.names or not pa.types.is_int64(schema.field("id").type):
        raise SimulationError(f"{path}: needs an int64 column `id`; has {schema.names}")
    z_name = next((n for n in ("z", "redshift") if n in schema.names), None)
    wanted = ["id", *(f"mag_{b}" for b in bands), "class", "is_lens", z_name]
    table = pq.read_table(path, columns=[n for n in wanted if n and n in schema.names])
    if z_name == "redshift":
        table = table.rename_columns(["z" if n == "redshift" else n for n in table.column_names])
    ids = table["id"].to_numpy()
    if np.unique(ids).size != ids.size:
        raise SimulationError(f"{path}: ids repeat; a catalog needs one row per id")
    return table


def deflector_table(
    photometry: Sequence[GroupPhotometry], bands: Sequence[str], catalog: pa.Table | None
) -> pa.Table:
    """One row per cutout: id, group, mag_<band> (the catalog's where it has one, else the wide
    aperture's), apmag_<band>, z (the catalog's, else the colour proxy, NaN if neither),
    z_from_colour, class, is_lens and the measured sky, centre and shape columns."""
    ids = np.concatenate([p.ids for p in photometry])
    columns: dict[str, npt.ArrayLike] = {
        "id": ids,
        "group": np.concatenate([[p.group] * p.ids.size for p in photometry]).astype(str),
    }
    total = np.concatenate([p.total_mag for p in photometry])
    core = np.concatenate([p.core_mag for p in photometry])
    rows = None
    if catalog is not None:
        where = pc.index_in(pa.array(ids), catalog["id"]).to_numpy(zero_copy_only=False)
        rows = np.where(np.isnan(where.astype(float)), -1, where).astype(np.int64)

    def from_catalog(name: str, fallback: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        if catalog is None or rows is None or name not in catalog.column_names:
            return fallback
        values = np.asarray(catalog[name].to_numpy(zero_copy_only=False), dtype=np.float64)
        picked = np.where(rows >= 0, values[np.maximum(rows, 0)], np.nan)
        return np.where(np.isfinite(picked), picked, fallback)

    for k, band in enumerate(bands):
        columns[f"mag_{band}"] = from_catalog(f"mag_{band}", total[:, k])
        columns[f"apmag_{band}"] = core[:, k]
    proxy = np.full(ids.size, np.nan)
    if {"g", "r", "i"} <= set(bands):
        g, r, i = (core[:, list(bands).index(b)] for b in "gri")
        proxy = colour_redshift(g - r, r - i)
    z = from_catalog("z", np.full(ids.size, np.nan))
    columns["z_from_colour"] = ~(z > 0.0)
    columns["z"] = np.where(z > 0.0, z, proxy)
    for name, default in (("class", "store"), ("is_lens", False)):
        values = np.full(ids.size, default, dtype=object)
        if catalog is not None and rows is not None and name in catalog.column_names:
            known = catalog[name].to_pylist()
            values = np.array(
                [known[j] if j >= 0 and known[j] is not None else default for j in rows],
                dtype=object,
            )
        columns[name] = values.astype(str if name == "class" else bool)
    sky = np.concatenate([p.sky_sigma for p in photometry])
    for k, band in enumerate(bands):
        columns[f"sky_sigma_{band}"] = sky[:, k]
    centre = np.concatenate([p.centre for p in photometry])
    columns["x"], columns["y"] = centre[:, 0], centre[:, 1]
    columns["light_q"] = np.concatenate([p.light_q for p in photometry])
    columns["light_phi"] = np.concatenate([p.light_phi for p in photometry])
    return pa.table(columns, schema=table_schema(bands))


def table_schema(bands: Sequence[str]) -> pa.Schema:
    """The columns of `deflector_table` (what a deflector cut can read)."""
    per_band = [(f"{what}_{b}", pa.float64()) for what in ("mag", "apmag") for b in bands]
    return pa.schema(
        [
            ("id", pa.int64()),
            ("group", pa.string()),
            *per_band,
            ("z_from_colour", pa.bool_()),
            ("z", pa.float64()),
            ("class", pa.string()),
            ("is_lens", pa.bool_()),
            *((f"sky_sigma_{b}", pa.float64()) for b in bands),
            ("x", pa.float64()),
            ("y", pa.float64()),
            ("light_q", pa.float64()),
            ("light_phi", pa.float64()),
        ]
    )


def check_where(where: str, bands: Sequence[str]) -> None:
    """Refuse a deflector cut that does not parse or reads columns a deflector table lacks."""
    check_columns(parse_cuts(where), table_schema(bands), where="deflector selection")


def select_deflectors(table: pa.Table, where: str) -> pa.Table:
    """The rows of a deflector table that pass a cut (lensflow's cut grammar) and are not
    already lenses."""
    cut = parse_cuts(where)
    check_columns(cut, table.schema, where="deflector selection")
    kept = table.filter(cut.to_arrow())
    return kept.filter(pc.invert(kept["is_lens"]))
