"""Catalog stage: lensflow's partition read (schema checks, cut, pixel check) vs bare pyarrow.

Both decode the same columns of one ~2-million-row partition file (lensflow reads
`_healpix_29` too, to check that every row lies in its pixel; one row of the table shows the
bare read without it) and apply the same cut, on one core (pyarrow's pools set to 1 thread).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from hats.pixel_math.spatial_index import spatial_index_to_healpix

from benchmarks.common import (
    CONVENTION,
    interleave,
    machine,
    record,
    summary_row,
    write_result,
)
from lensflow.catalog import open_catalog, read_partition
from lensflow.cuts import parse_cuts
from lensflow.layout import healpix_29, leaf_path, write_catalog_metadata
from lensflow.sky import HealpixPixel

ROWS = 2_000_000
CUT = "rKronMag < 21.5 and rPSFMag - rKronMag > 0.05 and not isnan(gKronMag)"
ROUNDS = 11
COLUMNS = ["objID", "raStack", "decStack", "gKronMag", "rKronMag", "iKronMag", "zKronMag"]


def _partition(root: Path) -> HealpixPixel:
    rng = np.random.default_rng(0)
    pixel = HealpixPixel(3, 300)
    # positions inside the pixel: draw around its centre and keep those that fall in it
    from hats.pixel_math.healpix_shim import radec2pix

    ra = rng.uniform(0, 360, 200_000)
    dec = np.degrees(np.arcsin(rng.uniform(-1, 1, 200_000)))
    inside = radec2pix(3, ra, dec) == pixel.pixel
    ra0, dec0 = ra[inside].mean(), dec[inside].mean()
    ra = ra0 + rng.uniform(-6, 6, ROWS * 4)
    dec = np.clip(dec0 + rng.uniform(-6, 6, ROWS * 4), -90, 90)
    inside = radec2pix(3, ra, dec) == pixel.pixel
    ra, dec = ra[inside][:ROWS], dec[inside][:ROWS]
    n = ra.size
    r = rng.uniform(16, 25, n)
    table = pa.table(
        {
            "objID": np.arange(n, dtype=np.int64) + (1 << 60),
            "raStack": ra,
            "decStack": dec,
            "gKronMag": r + 0.8,
            "rKronMag": r,
            "iKronMag": r - 0.4,
            "zKronMag": r - 0.6,
            "rPSFMag": r + rng.exponential(0.2, n),
            "_healpix_29": healpix_29(ra, dec),
        }
    )
    order = np.argsort(table["_healpix_29"].to_numpy())
    leaf_path(root, pixel).parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table.take(order), leaf_path(root, pixel), row_group_size=262_144)
    write_catalog_metadata(
        root, name="bench", pixels=[pixel], ra_column="raStack", dec_column="decStack", total_rows=n
    )
    assert (
        spatial_index_to_healpix(table["_healpix_29"].to_numpy(), target_order=3) == pixel.pixel
    ).all()
    return pixel


def _read_memory(root: Path, pixel: HealpixPixel) -> tuple[float, float]:
    """Peak and held Arrow memory (MB) of one read_partition call, in a fresh process."""
    code = (
        "import pyarrow as pa\n"
        "from lensflow.catalog import open_catalog, read_partition\n"
        "from lensflow.cuts import parse_cuts\n"
        "from lensflow.sky import HealpixPixel\n"
        f"catalog = open_catalog({str(root)!r})\n"
        f"table = read_partition(HealpixPixel({pixel.order}, {pixel.pixel}), catalog=catalog, "
        f"columns={COLUMNS!r}, cut=parse_cuts({CUT!r})).table\n"
        "pool = pa.default_memory_pool()\n"
        "print(pool.max_memory() / 1e6, pool.bytes_allocated() / 1e6)\n"
    )
    output = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True
    ).stdout.split()
    return float(output[0]), float(output[1])


def main() -> None:
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "catalog"
        (root / "dataset").mkdir(parents=True)
        pixel = _partition(root)
        catalog = open_catalog(root)
        cut = parse_cuts(CUT)
        file = leaf_path(root, pixel)
        rows = pq.ParquetFile(file).metadata.num_rows

        def bare(extra: tuple[str, ...] = ("rPSFMag", "_healpix_29")) -> int:
            parquet = pq.ParquetFile(file)
            expression = cut.to_arrow()
            kept = 0
            for batch in parquet.iter_batches(batch_size=262_144, columns=[*COLUMNS, *extra]):
                kept += batch.filter(expression).num_rows
            return kept

        def bare_without_index() -> int:
            return bare(("rPSFMag",))

        def lensflow() -> int:
            return int(
                read_partition(pixel, catalog=catalog, columns=COLUMNS, cut=cut).table.num_rows
            )

        assert bare() == lensflow()
        same = interleave(lensflow, bare, rounds=ROUNDS)
        less = interleave(bare_without_index, bare, rounds=ROUNDS)
        peak_mb, held_mb = _read_memory(root, pixel)
        decoded_mb = rows * 9 * 8 / 1e6
    write_result(
        "catalog",
        [
            "# Catalog stage: one partition, 9 columns decoded, cut applied, 1 core",
            "",
            f"machine: {machine()}; {rows:,} rows; cut `{CUT}`; {ROUNDS} rounds",
            "",
            CONVENTION,
            "",
            "| A | B (bare) | A rows/s | B rows/s | rate ratio A/B | load |",
            "| --- | --- | ---: | ---: | ---: | --- |",
            (
                f"| lensflow read_partition | pyarrow, same 9 columns (iter_batches + filter) | "
                f"{rows / same.lensflow_median:,.0f} | {rows / same.bare_median:,.0f} | "
                f"{same.ratio_cell()} | {same.load_text()} |"
            ),
            (
                "| pyarrow without the spatial index column (8 columns: not the same work) | "
                f"pyarrow, 9 columns | {rows / less.lensflow_median:,.0f} | "
                f"{rows / less.bare_median:,.0f} | {less.ratio:.2f} | {less.load_text()} |"
            ),
            "",
            (
                f"Memory (a fresh process, Arrow's pool): peak {peak_mb:.0f} MB during the read, "
                f"{held_mb:.0f} MB held by the survivors after it, against {decoded_mb:.0f} MB "
                "for the partition's 9 columns decoded at once: batches of 262,144 rows are "
                "filtered as they are decoded."
            ),
        ],
    )
    record(
        "catalog",
        [
            summary_row(
                "catalog: 2 M-row partition, 9 columns, cut (1 core)",
                same,
                items=rows,
                unit="rows/s",
                bare="pyarrow",
            )
        ],
        memory_mb={"peak": round(peak_mb), "held": round(held_mb), "decoded": round(decoded_mb)},
    )


if __name__ == "__main__":
    main()
