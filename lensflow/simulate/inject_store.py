"""What an injection set reads and writes besides the painted lenses: the checks on the source
store and catalog, the store's imaging, the copied non-lens groups and the labels' schema and
rows (the labels format of lensflow.labels, with the injection's parameters)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import zarr

from lensflow.cutouts import StoreInfo, open_store, read_group, write_group
from lensflow.errors import SimulationError
from lensflow.labels import label_schema
from lensflow.simulate.inject_deflectors import check_where, read_catalog
from lensflow.simulate.inject_paint import Imaging
from lensflow.simulate.observe import PSF_MODELS
from lensflow.simulate.scene import LENS_PARAMS
from lensflow.surveys import Survey

INJECT_PARAMS: tuple[str, ...] = (
    *(p for p in LENS_PARAMS if p not in ("lens_r_sersic", "lens_n_sersic")),
    "source_e1",
    "source_e2",
    "z_lens_from_colour",
    "deflectors_tried",
)
"""Lens parameters of an injected lens: LENS_PARAMS less the simulated lens light's Sersic,
plus the source's ellipticity, whether z_lens is the colour proxy, the deflectors tried."""

Row = dict[str, Any]


def copy_group(source: Path, out: Path, group: str, *, drop: Sequence[int] = ()) -> list[int]:
    """Copy a group's cutouts (less the ids in drop) into the out store, bit for bit; its ids."""
    ids, images = read_group(Path(source), group)
    keep = ~np.isin(ids, np.asarray(drop, dtype=np.int64))
    if keep.any():
        write_group(Path(out), group, ids=ids[keep], images=images[keep])
    return [int(i) for i in ids[keep]]


def check_inputs(
    store: Path,
    out: Path,
    *,
    labels: Path | None,
    where: str,
    survey: Survey,
    overwrite: bool = False,
) -> tuple[StoreInfo, pa.Table | None]:
    """Refuse what an injection cannot use, before any work: a store without a PSF FWHM or with
    bands the profile lacks, a bad catalog or cut, no r band, a set already in `out`. Returns
    the store's attributes and the catalog."""
    info = open_store(Path(store))
    absent = [b for b in info.bands if b not in info.psf_fwhm_arcsec]
    if absent:
        raise SimulationError(
            f"{store}: no psf_fwhm_arcsec for bands {absent} in the store's root attributes; "
            "add them (arcsec per band) to paint lenses through the PSF"
        )
    unknown = [b for b in info.bands if b not in survey.catalog_bands]
    if unknown:
        raise SimulationError(
            f"{store}: bands {unknown} are not in survey profile {survey.name!r} "
            f"({list(survey.catalog_bands)}); pass --survey with a profile that has them"
        )
    catalog = read_catalog(labels, info.bands) if labels is not None else None
    if "r" not in info.bands and (catalog is None or "mag_r" not in catalog.column_names):
        raise SimulationError(f"{store}: the deflectors' luminosity needs an r band or mag_r")
    check_where(where, info.bands)
    out = Path(out)
    if not overwrite and ((out / "cutouts.zarr").exists() or (out / "labels.parquet").exists()):
        raise SimulationError(f"{out} already holds a set; pass --overwrite or choose a new folder")
    return info, catalog


def store_imaging(store: Path, info: StoreInfo, survey: Survey, psf_model: str) -> Imaging:
    """The store's imaging: its PSF FWHM, and its `gain` attribute per band if it has one for
    every band, else the profile's gain (`Survey.gain`)."""
    if psf_model not in PSF_MODELS:
        raise SimulationError(f"unknown PSF model {psf_model!r}; known {sorted(PSF_MODELS)}")
    attrs: dict[str, Any] = dict(zarr.open_group(str(store), mode="r").attrs)
    gains: dict[str, Any] = dict(attrs.get("gain", {}))
    from_store = all(b in gains for b in info.bands)
    return Imaging(
        bands=info.bands,
        pixel_scale=info.pixel_scale_arcsec,
        size=info.cutout_size,
        psf_fwhm=tuple(info.psf_fwhm_arcsec[b] for b in info.bands),
        gain=tuple(float(gains[b]) if from_store else survey.gain(b) for b in info.bands),
        psf_model=psf_model,
        survey=survey,
        gain_from="store" if from_store else f"profile {survey.name}",
    )


def store_attributes(info: StoreInfo) -> dict[str, Any]:
    """The create_store keywords of a store like this one."""
    return {
        "bands": info.bands,
        "pixel_scale_arcsec": info.pixel_scale_arcsec,
        "psf_fwhm_arcsec": dict(info.psf_fwhm_arcsec),
        "cutout_size": info.cutout_size,
        "zero_point_ab": info.zero_point_ab,
        "units": info.units,
    }


def injection_schema(bands: Sequence[str]) -> pa.Schema:
    """Labels of an injection set: the labels format with INJECT_PARAMS, the deflector's id
    and the source's magnified flux per band (arc_flux_<band>, nJy)."""
    schema = label_schema(bands=bands, lens_params=INJECT_PARAMS)
    schema = schema.append(pa.field("deflector_id", pa.int64()))
    for band in bands:
        schema = schema.append(pa.field(f"arc_flux_{band}", pa.float64()))
    return schema


def non_lens_rows(table: pa.Table, kept: Sequence[int], bands: Sequence[str]) -> list[Row]:
    """Label rows of the store's cutouts kept as non-lenses: class and mag_<band> (null where
    not measured) from the deflector table."""
    index = {int(i): j for j, i in enumerate(table["id"].to_numpy())}
    classes = table["class"].to_pylist()
    mags = {b: table[f"mag_{b}"].to_pylist() for b in bands}
    rows = []
    for ident in kept:
        j = index[ident]
        row: Row = {"id": ident, "is_lens": False, "class": classes[j]}
        for band in bands:
            mag = mags[band][j]
            row[f"mag_{band}"] = mag if mag is not None and math.isfinite(mag) else None
        rows.append(row)
    return rows
