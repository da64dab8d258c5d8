"""Zarr v3 cutout stores: groups sorted by id, whole-chunk reads, atomic group writes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lensflow.cutouts import (
    CHUNK_CUTOUTS,
    create_store,
    list_groups,
    open_store,
    read_cutout_blocks,
    read_cutouts,
    read_group,
    write_group,
)
from lensflow.errors import CutoutError


@pytest.fixture
def store(tmp_path: Path) -> Path:
    path = tmp_path / "cutouts.zarr"
    create_store(
        path,
        bands="gri",
        pixel_scale_arcsec=0.2,
        psf_fwhm_arcsec={"g": 0.85, "r": 0.75, "i": 0.7},
        cutout_size=16,
    )
    return path


def _images(ids: np.ndarray) -> np.ndarray:
    """Images whose pixels encode their id, so any mix-up shows."""
    return np.broadcast_to(
        ids[:, None, None, None].astype(np.float32), (ids.size, 3, 16, 16)
    ).copy()


def test_store_is_zarr_v3_with_survey_attributes(store: Path) -> None:
    meta = json.loads((store / "zarr.json").read_text())
    assert meta["zarr_format"] == 3
    info = open_store(store)
    assert info.bands == ("g", "r", "i") and info.cutout_size == 16 and info.units == "nJy"


def test_read_by_id_returns_the_right_images(store: Path) -> None:
    rng = np.random.default_rng(0)
    ids = rng.choice(10_000, size=300, replace=False).astype(np.int64)
    write_group(store, "Norder=4/Npix=17", ids=ids, images=_images(ids))
    wanted = np.concatenate([rng.choice(ids, 40, replace=False), [10_001, 10_002]])
    got = read_cutouts(store, "Norder=4/Npix=17", wanted)
    assert np.array_equal(got.ids, np.sort(wanted[:40]))
    assert np.array_equal(got.missing, [10_001, 10_002])
    assert np.array_equal(got.images[:, 0, 0, 0], got.ids.astype(np.float32))
    stored_ids, _ = read_group(store, "Norder=4/Npix=17")
    assert np.all(np.diff(stored_ids) > 0)


def test_groups_are_chunked_by_cutouts(store: Path) -> None:
    import zarr

    ids = np.arange(200, dtype=np.int64)
    write_group(store, "g1", ids=ids, images=_images(ids))
    assert zarr.open_group(str(store), mode="r")["g1/images"].chunks == (CHUNK_CUTOUTS, 3, 16, 16)


def test_rewrite_replaces_group_without_leftovers(store: Path) -> None:
    ids = np.arange(10, dtype=np.int64)
    write_group(store, "Norder=3/Npix=1", ids=ids, images=_images(ids))
    write_group(store, "Norder=3/Npix=1", ids=ids + 100, images=_images(ids + 100))
    assert list_groups(store) == ["Norder=3/Npix=1"]
    assert read_group(store, "Norder=3/Npix=1")[0][0] == 100
    assert not list((store / "Norder=3").glob("*.tmp"))


@pytest.mark.bad_input
def test_misshapen_and_duplicate_input_is_refused(store: Path) -> None:
    ids = np.arange(4, dtype=np.int64)
    with pytest.raises(CutoutError, match="shape"):
        write_group(store, "x", ids=ids, images=np.zeros((4, 3, 8, 8), np.float32))
    with pytest.raises(CutoutError, match="duplicate"):
        write_group(store, "x", ids=np.array([1, 1, 2, 3]), images=_images(ids))


@pytest.mark.bad_input
def test_missing_store_and_group(tmp_path: Path, store: Path) -> None:
    with pytest.raises(CutoutError, match="no cutout store"):
        open_store(tmp_path / "nowhere.zarr")
    with pytest.raises(CutoutError, match="no cutout group"):
        read_cutouts(store, "Norder=9/Npix=1", np.array([1]))


def test_blocks_of_wanted_ids_join_to_the_whole_read(tmp_path: Path) -> None:
    store = tmp_path / "cutouts.zarr"
    create_store(
        store, bands=["g"], pixel_scale_arcsec=0.2, psf_fwhm_arcsec={"g": 0.8}, cutout_size=4
    )
    ids = np.arange(0, 400, 2, dtype=np.int64)
    images = np.arange(ids.size * 16, dtype=np.float32).reshape(ids.size, 1, 4, 4)
    write_group(store, "g", ids=ids, images=images)
    wanted = np.concatenate([ids[::3], [1, 3, 999]])  # three ids the group lacks
    whole = read_cutouts(store, "g", wanted)
    blocks = list(read_cutout_blocks(store, "g", wanted[::-1], block=7))
    assert all(b.ids.size + b.missing.size <= 7 for b in blocks)
    assert np.array_equal(np.concatenate([b.ids for b in blocks]), whole.ids)
    assert np.array_equal(np.concatenate([b.images for b in blocks]), whole.images)
    assert sorted(np.concatenate([b.missing for b in blocks])) == [1, 3, 999]
    assert np.array_equal(whole.images[:, 0, 0, 0], images[whole.ids // 2, 0, 0, 0])
