"""A small cutout store to inject lenses into: red ellipticals of known redshift and magnitude and
blue discs, observed in the lsst profile by lensflow's renderer, with a catalog beside it."""

from __future__ import annotations

import math
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lensflow.cutouts import create_store, write_group
from lensflow.simulate.colours import band_fluxes, blue_colours, red_sequence
from lensflow.simulate.geometry import q_phi_to_ellipticity
from lensflow.simulate.scene import Component, Scene, render_scene
from lensflow.simulate.sersic import SersicEllipse
from lensflow.surveys import ab_to_njy, frozen, survey_profile

RED_MAGS = (17.6, 17.9, 18.2, 18.5, 18.8, 19.1)
BLUE_MAGS = (19.0, 19.5, 20.0)
RED_Z = 0.3


class InjectionStore(NamedTuple):
    """The store, a catalog with mag_r, z and class, one with only id and class, and the truth."""

    store: Path
    catalog: Path
    classes_only: Path
    ids: np.ndarray
    red: np.ndarray  # bool (N,): the ellipticals
    mag_r: np.ndarray
    z: np.ndarray


def _cutout(kind: str, mag_r: float, z: float, seed: int) -> np.ndarray:
    survey = survey_profile("lsst")
    rng = np.random.default_rng(seed)
    if kind == "elliptical":
        gr, ri, iz = (float(c) for c in red_sequence(z))
        profile = SersicEllipse.from_flux(1.0, 0.6, 4.0, *q_phi_to_ellipticity(0.8, 0.5))
    else:
        gr, ri, iz = blue_colours(rng)
        profile = SersicEllipse.from_flux(1.0, 0.9, 1.0, *q_phi_to_ellipticity(0.6, 2.0))
    light = Component(profile, band_fluxes(ab_to_njy(mag_r), (gr, ri, iz)))
    scene = Scene(
        kind=kind,
        is_lens=False,
        seed=(seed,),
        mag=frozen(r=mag_r),
        extended=True,
        size_arcsec=0.6,
        params=frozen(),
        components=(light,),
    )
    return render_scene(scene, survey=survey)


def make_injection_store(folder: Path) -> InjectionStore:
    """Write folder/cutouts.zarr (groups "a" and "b"), catalog.parquet and classes.parquet."""
    folder.mkdir(parents=True, exist_ok=True)
    kinds = ["elliptical"] * len(RED_MAGS) + ["disc_face_on"] * len(BLUE_MAGS)
    mags = np.array([*RED_MAGS, *BLUE_MAGS])
    z = np.array([RED_Z] * len(RED_MAGS) + [0.1] * len(BLUE_MAGS))
    ids = 5_000 + 7 * np.arange(len(kinds), dtype=np.int64)
    images = np.stack(
        [_cutout(k, m, zz, i) for k, m, zz, i in zip(kinds, mags, z, ids, strict=True)]
    )
    store = folder / "cutouts.zarr"
    create_store(store, **survey_profile("lsst").store_attributes())
    half = math.ceil(len(ids) / 2)
    write_group(store, "a", ids=ids[:half], images=images[:half])
    write_group(store, "b", ids=ids[half:], images=images[half:])
    classes = pa.array(kinds)
    catalog = folder / "catalog.parquet"
    pq.write_table(
        pa.table({"id": pa.array(ids, pa.int64()), "class": classes, "mag_r": mags, "z": z}),
        catalog,
    )
    classes_only = folder / "classes.parquet"
    pq.write_table(pa.table({"id": pa.array(ids, pa.int64()), "class": classes}), classes_only)
    red = np.array([k == "elliptical" for k in kinds])
    return InjectionStore(store, catalog, classes_only, ids, red, mags, z)
