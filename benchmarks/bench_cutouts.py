"""Cutout stage: lensflow's read of a partition's survivors vs bare Zarr slab reads.

A group of 4,096 three-band 64x64 cutouts, stored as lensflow writes them (uncompressed);
2 % of them (the photometry survivors) are read by id. The bare reader is told which chunks
to read; lensflow finds them from the sorted ids.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import zarr

from benchmarks.common import (
    CONVENTION,
    interleave,
    machine,
    record,
    summary_row,
    write_result,
)
from lensflow.cutouts import CHUNK_CUTOUTS, create_store, read_cutouts, write_group

N, SURVIVORS = 4_096, 82
ROUNDS = 15


def main() -> None:
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        store = Path(tmp) / "cutouts.zarr"
        create_store(
            store,
            bands="gri",
            pixel_scale_arcsec=0.2,
            psf_fwhm_arcsec={"g": 0.85, "r": 0.75, "i": 0.7},
            cutout_size=64,
        )
        ids = np.sort(rng.choice(1 << 40, N, replace=False)).astype(np.int64)
        images = rng.normal(0, 5, (N, 3, 64, 64)).astype(np.float32)
        write_group(store, "Norder=5/Npix=1", ids=ids, images=images)
        wanted_rows = np.sort(rng.choice(N, SURVIVORS, replace=False))
        wanted = ids[wanted_rows]
        array: Any = zarr.open_array(str(store / "Norder=5/Npix=1/images"), mode="r")

        def bare() -> np.ndarray:
            chunks = np.unique(wanted_rows // CHUNK_CUTOUTS)
            out = []
            for c in chunks:
                slab = array[c * CHUNK_CUTOUTS : (c + 1) * CHUNK_CUTOUTS]
                rows = wanted_rows[(wanted_rows // CHUNK_CUTOUTS) == c] - c * CHUNK_CUTOUTS
                out.append(slab[rows])
            return np.concatenate(out)

        def lensflow() -> np.ndarray:
            return read_cutouts(store, "Norder=5/Npix=1", wanted).images

        assert np.array_equal(bare(), lensflow())
        result = interleave(lensflow, bare, rounds=ROUNDS)
        chunks = len(np.unique(wanted_rows // CHUNK_CUTOUTS))
    mb = chunks * CHUNK_CUTOUTS * 3 * 64 * 64 * 4 / 1e6
    t_lensflow, t_bare = result.lensflow_median, result.bare_median
    write_result(
        "cutouts",
        [
            (
                f"# Cutout stage: {SURVIVORS} survivors of {N:,} cutouts, {chunks} chunks of "
                f"{CHUNK_CUTOUTS} touched, 1 process"
            ),
            "",
            f"machine: {machine()}; {ROUNDS} rounds",
            "",
            CONVENTION,
            "",
            "| reader | median ms | cutouts/s | MB/s decoded |",
            "| --- | ---: | ---: | ---: |",
            (
                f"| lensflow read_cutouts (A) | {t_lensflow * 1e3:.1f} | "
                f"{SURVIVORS / t_lensflow:,.0f} | {mb / t_lensflow:,.0f} |"
            ),
            (
                f"| bare zarr slabs (B) | {t_bare * 1e3:.1f} | {SURVIVORS / t_bare:,.0f} | "
                f"{mb / t_bare:,.0f} |"
            ),
            "",
            f"Rate ratio A/B: {result.ratio_cell()}; {result.load_text()}.",
        ],
    )
    row = summary_row(
        f"cutouts: {SURVIVORS} survivors of {N:,}, whole chunks",
        result,
        items=mb,
        unit="MB/s decoded",
        bare="zarr",
    )
    record("cutouts", [row], cutouts_per_second=round(SURVIVORS / t_lensflow))


if __name__ == "__main__":
    main()
