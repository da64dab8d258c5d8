"""Images stage: lensflow's stamps from fpack-compressed coadd tiles vs astropy's Cutout2D.

Eight 2000x2000 patches of one tract (sharing a TAN projection, overlapping by 100 pixels) in
three bands, fpack RICE_1-compressed as surveys ship them; 2,000 rows, 64x64 stamps, one
process. Cutout2D is told which tile holds each row and reads it through `hdu.section` of files
opened once; lensflow finds the tiles itself (footprint index built beforehand), stitches the
stamps that cross patches, checks masks and non-finite pixels, and converts to nJy.
"""

from __future__ import annotations

import tempfile
import warnings
from functools import partial
from pathlib import Path

import numpy as np
from astropy.coordinates import SkyCoord
from astropy.io import fits
from astropy.nddata import Cutout2D
from astropy.wcs import WCS

from benchmarks.common import (
    CONVENTION,
    Interleaved,
    interleave,
    machine,
    record,
    summary_row,
    write_result,
)
from lensflow.config import ImagesConfig
from lensflow.images import cut_stamps, locate, tile_index
from lensflow.images.projection import wcs_from_text

SIDE, GRID, OVERLAP, BANDS, ROWS, SPARSE, SIZE = 2000, (4, 2), 100, ("g", "r", "i"), 2_000, 200, 64


def _tract(folder: Path) -> WCS:
    """Write the tract's patches; returns the tract's WCS."""
    rng = np.random.default_rng(0)
    step = SIDE - OVERLAP
    width, height = step * (GRID[0] - 1) + SIDE, step * (GRID[1] - 1) + SIDE
    tract = WCS(naxis=2)
    tract.wcs.ctype = ["RA---TAN", "DEC--TAN"]
    tract.wcs.crval = [150.0, 2.0]
    tract.wcs.crpix = [width / 2 + 0.5, height / 2 + 0.5]
    tract.wcs.cd = np.diag([-0.168 / 3600, 0.168 / 3600])
    for i in range(GRID[0]):
        for j in range(GRID[1]):
            wcs = tract.deepcopy()
            wcs.wcs.crpix = tract.wcs.crpix - [i * step, j * step]
            for band in BANDS:
                image = rng.normal(0.0, 0.05, (SIDE, SIDE)).astype(np.float32)
                hdu = fits.CompImageHDU(image, header=wcs.to_header(), compression_type="RICE_1")
                fits.HDUList([fits.PrimaryHDU(), hdu]).writeto(
                    folder / f"calexp-{band}-{i},{j}.fits.fz"
                )
    return tract


def main() -> None:
    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        tract = _tract(folder)
        config = ImagesConfig(
            tiles=str(folder / "calexp-{band}-*.fits.fz"), bands=list(BANDS), size=SIZE
        )
        index = tile_index(config, path=folder / "tiles.parquet")
        width, height = (np.asarray(tract.wcs.crpix) - 0.5) * 2
        ra, dec = tract.pixel_to_world_values(
            rng.uniform(SIZE, width - SIZE, ROWS), rng.uniform(SIZE, height - SIZE, ROWS)
        )
        ids = np.arange(ROWS, dtype=np.int64)
        wcs = {t: wcs_from_text(index.wcs_text[t]) for t in range(len(index))}
        by_band = {b: np.flatnonzero(index.band == b) for b in BANDS}
        # Cutout2D is given the holding tile of every row and band
        holding = {b: locate(index, by_band[b], ra, dec, wcs_of=wcs.__getitem__)[0] for b in BANDS}
        files = {t: fits.open(index.path[t], memmap=True) for t in range(len(index))}

        def lensflow(rows: np.ndarray) -> int:
            stamps = cut_stamps(ids[rows], ra[rows], dec[rows], index=index, config=config)
            return int(stamps.ids.size)

        def cutout2d(rows: np.ndarray) -> int:
            for k in rows:
                position = SkyCoord(ra[k], dec[k], unit="deg")
                for band in BANDS:
                    t = int(holding[band][k])
                    Cutout2D(files[t][1].section, position, SIZE, wcs=wcs[t], mode="partial")
            return int(rows.size)

        cases = {"dense": np.arange(ROWS), "sparse": np.arange(SPARSE)}
        results: dict[str, Interleaved] = {}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            assert lensflow(cases["dense"]) == ROWS  # warms lensflow's readers
            for name, rows in cases.items():
                # Cutout2D's cost per row does not depend on the other rows: no warm-up run
                results[name] = interleave(
                    partial(lensflow, rows), partial(cutout2d, rows), warmup=False
                )
        x = tract.world_to_pixel_values(ra, dec)[0]
        crossing = int((np.abs(x % (SIDE - OVERLAP) - OVERLAP / 2) < SIZE).sum())
        for hdul in files.values():
            hdul.close()
    lines = [
        (
            f"# Images stage: {len(BANDS)}-band {SIZE}x{SIZE} stamps from {GRID[0] * GRID[1]} "
            f"fpack (RICE_1) patches of {SIDE}x{SIDE} per band, 1 process"
        ),
        "",
        f"machine: {machine()}",
        "",
        CONVENTION + " Not identical work: lensflow also stitches, checks masks and converts.",
        "",
        "| rows | lensflow stamps/s | Cutout2D stamps/s | rate ratio | load |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    summary = []
    for name, result in results.items():
        n = cases[name].size
        lines.append(
            f"| {n:,} ({name}) | {n / result.lensflow_median:,.0f} | "
            f"{n / result.bare_median:,.0f} | {result.ratio:.2f} "
            f"[{result.round_ratios[0]:.2f}-{result.round_ratios[1]:.2f}] | "
            f"{result.load_text()} |"
        )
        label = "2,000 rows, 3 bands" if name == "dense" else f"{n} sparse rows"
        row = summary_row(
            f"cutouts from fpack tiles: {label}, 64 px (1 core)",
            result,
            items=n,
            unit="stamps/s",
            bare="astropy Cutout2D",
        )
        row["ratio"] = f"{result.ratio:.2f}"  # not identical work: no noise flag
        summary.append(row)
    lines += [
        "",
        (
            f"Dense: {ROWS:,} rows, so neighbouring stamps share compressed rows (fpack compresses "
            "whole rows: lensflow decompresses each once); sparse: the first "
            f"{SPARSE} of them, about {SPARSE // (GRID[0] * GRID[1])} per patch as in a scan's "
            f"survivors. ~{crossing} of the dense rows lie near a patch overlap in x: Cutout2D cuts "
            "them from one patch, lensflow from the patch that holds them whole or stitched."
        ),
    ]
    write_result("images", lines)
    record("images", summary)


if __name__ == "__main__":
    main()
