"""The check set: the same whatever the chunking or the cluster, in the training-set format,
and scored by `lensflow evaluate`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from distributed import Client

from lensflow.cutouts import list_groups, open_store, read_group
from lensflow.errors import SimulationError
from lensflow.independent import (
    LENS_PARAMS,
    NON_LENS_CLASSES,
    CheckSet,
    check_bands,
    make_check_set,
    plan_classes,
)
from lensflow.labels import read_labels
from lensflow.surveys import survey_profile
from tests.independent.conftest import TINY

LSST = survey_profile("lsst")


def _read_all(store: Path) -> tuple[np.ndarray, np.ndarray]:
    parts = [read_group(store, group) for group in list_groups(store)]
    ids = np.concatenate([p[0] for p in parts])
    order = np.argsort(ids)
    return ids[order], np.concatenate([p[1] for p in parts])[order]


def test_the_store_has_the_profiles_bands_scale_size_and_units(tiny_set: CheckSet) -> None:
    info = open_store(tiny_set.store)
    assert info.bands == LSST.bands
    assert info.pixel_scale_arcsec == LSST.pixel_scale_arcsec
    assert info.cutout_size == LSST.cutout_size
    assert info.units == "nJy" and info.zero_point_ab == 31.4
    assert list_groups(tiny_set.store) == [f"chunk-{k:06d}" for k in range(5)]
    ids, images = _read_all(tiny_set.store)
    n = TINY["n_lenses"] + TINY["n_non_lenses"]
    np.testing.assert_array_equal(ids, np.arange(n))
    assert images.shape == (n, 3, 64, 64) and images.dtype == np.float32
    assert np.all(np.isfinite(images))


def test_labels_hold_every_class_and_lens_parameters(tiny_set: CheckSet) -> None:
    truth = read_labels(tiny_set.labels)
    np.testing.assert_array_equal(truth.ids, np.arange(truth.ids.size))
    assert truth.classes is not None
    assert set(truth.classes[~truth.is_lens]) == set(NON_LENS_CLASSES)
    assert np.all(truth.classes[truth.is_lens] == "lens")
    assert int(truth.is_lens.sum()) == TINY["n_lenses"]
    table = pq.read_table(tiny_set.labels).to_pandas()
    assert {f"mag_{b}" for b in LSST.catalog_bands} <= set(table.columns)
    lenses = table[table.is_lens]
    assert (
        lenses[list(LENS_PARAMS)]
        .drop(columns=["n_images", "counter_image_snr"])
        .notna()
        .all()
        .all()
    )
    assert table[~table.is_lens][list(LENS_PARAMS)].isna().all().all()
    fwhm = lenses.psf_fwhm_mean
    assert np.all(lenses.theta_e >= 0.5 * fwhm) and np.all(lenses.magnification >= 2.0)
    assert np.all(lenses.arc_snr >= 40.0)


def test_a_set_is_the_same_whatever_the_chunking_and_the_cluster(
    tiny_set: CheckSet, tmp_path: Path, dask_client: Client
) -> None:
    other = make_check_set(
        tmp_path / "dask", **TINY, chunk_size=8, client=dask_client, progress=False
    )
    assert len(list_groups(other.store)) == 3
    for a, b in zip(_read_all(tiny_set.store), _read_all(other.store), strict=True):
        np.testing.assert_array_equal(a, b)
    assert pq.read_table(tiny_set.labels).equals(pq.read_table(other.labels))


def test_another_seed_gives_another_set(tmp_path: Path) -> None:
    assert plan_classes(10, 30, seed=1) != plan_classes(10, 30, seed=2)
    assert plan_classes(10, 30, seed=1) == plan_classes(10, 30, seed=1)
    kinds = plan_classes(0, 90, seed=3)
    assert {kinds.count(c) for c in NON_LENS_CLASSES} == {10}


def test_lensflow_evaluate_scores_the_set(tiny_set: CheckSet) -> None:
    from lensflow.evaluate import evaluate_store

    report = evaluate_store(tiny_set.store, tiny_set.labels)
    metrics = report.as_dict()["ensemble"]
    assert metrics["n_lenses"] == TINY["n_lenses"]
    assert metrics["n_non_lenses"] == TINY["n_non_lenses"]
    assert 0.0 <= metrics["auroc"] <= 1.0
    assert report.fpr_by_class is not None and set(report.fpr_by_class) == set(NON_LENS_CLASSES)


def test_an_existing_set_is_never_replaced(tiny_set: CheckSet) -> None:
    with pytest.raises(SimulationError, match="already holds a cutout set"):
        make_check_set(tiny_set.store.parent, n_lenses=1, n_non_lenses=1, seed=0)


def test_bands_outside_the_seds_are_refused() -> None:
    from dataclasses import replace

    from lensflow.surveys import frozen

    infrared = replace(LSST, wavelength_nm=frozen({**LSST.wavelength_nm, "z": 1650.0}))
    with pytest.raises(SimulationError, match=r"z \(1650 nm\) lie outside"):
        check_bands(infrared)
    check_bands(survey_profile("hsc"))
