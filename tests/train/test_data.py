"""Training data: augmentation, epoch batches, validation split, cutout sets, catalogs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")

from lensflow.cutouts import open_store
from lensflow.surveys import survey_profile
from lensflow.train.catalogs import passes_cuts, simulate_catalog
from lensflow.train.config import CatalogCuts, CutoutSet
from lensflow.train.data import (
    augment,
    batch_rows,
    ensure_cutout_set,
    load_cutouts,
    split_validation,
)
from tests.train.helpers import noise_cutouts, write_labelled_store

LSST = survey_profile("lsst")


def test_augment_applies_one_symmetry_of_the_square_per_cutout() -> None:
    x = torch.arange(5 * 2 * 4 * 4, dtype=torch.float32).reshape(5, 2, 4, 4)
    out = augment(x, torch.Generator().manual_seed(0))
    for original, moved in zip(x, out, strict=True):
        candidates = [
            torch.rot90(f, k, dims=(-2, -1))
            for f in (original, original.flip(-1))
            for k in range(4)
        ]
        assert any(torch.equal(moved, c) for c in candidates)
    again = augment(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_every_symmetry_of_the_square_is_drawn() -> None:
    x = torch.arange(16, dtype=torch.float32).reshape(1, 1, 4, 4).expand(200, 1, 4, 4)
    out = augment(x, torch.Generator().manual_seed(1))
    assert len({tuple(o.flatten().tolist()) for o in out}) == 8


def test_an_epoch_runs_full_batches_of_distinct_rows() -> None:
    batches = list(batch_rows(10, 4, torch.Generator().manual_seed(0)))
    assert [b.numel() for b in batches] == [4, 4]
    assert torch.cat(batches).unique().numel() == 8
    (only,) = batch_rows(3, 4, torch.Generator().manual_seed(0))
    assert sorted(only.tolist()) == [0, 1, 2]


def test_validation_split_is_stratified_and_disjoint() -> None:
    is_lens = np.arange(100) % 4 == 0
    train, val = split_validation(is_lens, fraction=0.2, seed=1)
    assert np.intersect1d(train, val).size == 0
    assert np.union1d(train, val).size == 100
    assert is_lens[val].sum() == 5 and (~is_lens[val]).sum() == 15


def test_a_store_loads_sorted_by_id_with_its_labels(tmp_path: Path) -> None:
    store = write_labelled_store(tmp_path, 10, seed=4)
    images, is_lens = noise_cutouts(10, seed=4)
    data = load_cutouts(store, tmp_path / "labels.parquet", threads=2)
    np.testing.assert_array_equal(data.labels.ids, np.arange(10) * 3 + (1 << 60))
    np.testing.assert_array_equal(data.labels.is_lens, is_lens)
    np.testing.assert_array_equal(data.images, images)
    assert data.info.bands == ("g", "r", "i")
    subset = data.subset(np.array([7, 2]))
    np.testing.assert_array_equal(subset.images, images[[7, 2]])
    assert subset.labels.classes is not None
    assert subset.labels.classes.tolist() == ["spiral", "spiral"]


def test_a_shifted_set_is_simulated_in_the_shifted_survey(tmp_path: Path) -> None:
    spec = CutoutSet(n_lenses=1, n_non_lenses=2, seed=5, seeing_factor=1.3, depth_mag=-0.5)
    store, labels = ensure_cutout_set(spec, tmp_path / "shifted")
    info = open_store(store)
    for band in info.bands:
        assert info.psf_fwhm_arcsec[band] == pytest.approx(1.3 * LSST.psf_fwhm_arcsec[band])
    assert pq.read_table(labels).num_rows == 3
    stamp = json.loads((tmp_path / "shifted" / "spec.json").read_text())
    assert stamp["spec"]["depth_mag"] == -0.5
    assert stamp["survey"] == "lsst"
    assert ensure_cutout_set(spec, tmp_path / "shifted") == (store, labels)  # reused


def test_a_wide_set_is_simulated_in_the_wide_population(tmp_path: Path) -> None:
    import zarr

    spec = CutoutSet(n_lenses=1, n_non_lenses=2, seed=5, population="wide")
    store, _ = ensure_cutout_set(spec, tmp_path / "set")
    assert zarr.open_group(str(store), mode="r").attrs["population"] == "wide"
    assert json.loads((tmp_path / "set" / "spec.json").read_text())["spec"]["population"] == "wide"
    store, _ = ensure_cutout_set(CutoutSet(n_lenses=1, n_non_lenses=2, seed=5), tmp_path / "set")
    assert zarr.open_group(str(store), mode="r").attrs["population"] == "classic"  # remade


def test_a_set_of_another_survey_is_simulated_anew_in_it(tmp_path: Path) -> None:
    spec = CutoutSet(n_lenses=1, n_non_lenses=1, seed=5)
    ensure_cutout_set(spec, tmp_path / "set")
    store, _ = ensure_cutout_set(spec, tmp_path / "set", survey=survey_profile("hsc"))
    info = open_store(store)
    assert info.bands == ("g", "r", "i", "z", "y") and info.pixel_scale_arcsec == 0.168
    assert json.loads((tmp_path / "set" / "spec.json").read_text())["survey"] == "hsc"


def test_cuts_need_every_band_extent_and_the_r_range() -> None:
    cuts = CatalogCuts()
    good = {"g": 22.0, "r": 21.0, "i": 20.5, "z": 20.2}
    assert passes_cuts(good, True, cuts)
    assert not passes_cuts(good, False, cuts)
    assert not passes_cuts({**good, "z": float("nan")}, True, cuts)
    assert not passes_cuts({**good, "r": 22.5}, True, cuts)
    assert not passes_cuts({**good, "r": 16.0}, True, cuts)


def test_simulated_catalog_rows_pass_the_cuts_and_repeat() -> None:
    cuts = CatalogCuts()
    catalog = simulate_catalog(n_lenses=3, n_non_lenses=40, seed=5, cuts=cuts)
    assert catalog.mags.shape == (43, 4)
    assert catalog.is_lens.sum() == 3
    assert set(catalog.classes[~catalog.is_lens]) <= {
        "elliptical", "spiral", "disc_face_on", "disc_edge_on", "ring", "merger",
        "blue_neighbours", "group", "artefact",
    }  # fmt: skip
    assert np.isfinite(catalog.mags).all()
    assert catalog.errors.shape == catalog.mags.shape
    assert (np.isfinite(catalog.errors) & (catalog.errors > 0)).all()
    assert ((catalog.mags[:, 1] >= cuts.min_mag_r) & (catalog.mags[:, 1] < cuts.max_mag_r)).all()
    assert sum(catalog.drawn.values()) >= 43
    again = simulate_catalog(n_lenses=3, n_non_lenses=40, seed=5, cuts=cuts)
    np.testing.assert_array_equal(again.mags, catalog.mags)
    np.testing.assert_array_equal(again.errors, catalog.errors)
    assert catalog.bands == ("g", "r", "i", "z")


def test_a_simulated_catalog_has_the_catalog_bands_of_its_survey() -> None:
    hsc = survey_profile("hsc")
    catalog = simulate_catalog(n_lenses=2, n_non_lenses=10, seed=5, cuts=CatalogCuts(), survey=hsc)
    assert catalog.bands == hsc.catalog_bands
    assert catalog.mags.shape == (12, 5) and np.isfinite(catalog.mags).all()
