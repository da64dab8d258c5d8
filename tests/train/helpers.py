"""Small labelled cutout sets the training tests generate: noise with bright rings for lenses."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lensflow.cutouts import create_store, write_group


def noise_cutouts(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise cutouts (N, 3, 64, 64) nJy and is_lens (N,); lenses (every third) carry a ring."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 5.0, size=(n, 3, 64, 64)).astype(np.float32)
    is_lens = np.arange(n) % 3 == 0
    y, x = np.mgrid[:64, :64] - 31.5
    ring = (np.abs(np.hypot(x, y) - 10) < 1.5).astype(np.float32) * 60
    images[is_lens] += ring
    return images, is_lens


def write_labelled_store(folder: Path, n: int, seed: int, *, first_id: int = 1 << 60) -> Path:
    """noise_cutouts in a store of two groups (a, b) with labels.parquet beside it; the store.

    ids are first_id + 3 x row; classes "lens" and "spiral".
    """
    images, is_lens = noise_cutouts(n, seed)
    store = folder / "cutouts.zarr"
    create_store(
        store,
        bands=["g", "r", "i"],
        pixel_scale_arcsec=0.2,
        psf_fwhm_arcsec={"g": 0.85, "r": 0.75, "i": 0.7},
        cutout_size=64,
    )
    ids = np.arange(n, dtype=np.int64) * 3 + first_id
    write_group(store, "a", ids=ids[: n // 2], images=images[: n // 2])
    write_group(store, "b", ids=ids[n // 2 :], images=images[n // 2 :])
    classes = np.where(is_lens, "lens", "spiral")
    pq.write_table(
        pa.table({"id": pa.array(ids, pa.int64()), "is_lens": is_lens, "class": classes}),
        folder / "labels.parquet",
    )
    return store
