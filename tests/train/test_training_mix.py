"""A training set mixed with extra labelled stores (injection sets): read from TOML, loaded with
the simulated set, refused when the stores' imaging differs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch")

from lensflow.cutouts import create_store, read_group, write_group
from lensflow.errors import TrainingError
from lensflow.labels import read_labels
from lensflow.simulate.inject import make_injection_set
from lensflow.train.config import CutoutSet, LabelledStore, TrainConfig, TrainingSetConfig
from lensflow.train.data import ensure_cutout_set, load_training_set
from tests.simulate.inject_store import make_injection_store
from tests.train.helpers import write_labelled_store


@pytest.fixture(scope="module")
def injected(tmp_path_factory: pytest.TempPathFactory) -> Path:
    base = tmp_path_factory.mktemp("injected")
    deflectors = make_injection_store(base / "deflectors")
    made = make_injection_set(
        deflectors.store, base / "set", n_lenses=3, seed=1, labels=deflectors.catalog,
        progress=False,
    )  # fmt: skip
    return made.store


def test_extra_sets_read_from_toml_relative_to_the_file(tmp_path: Path) -> None:
    path = tmp_path / "train.toml"
    path.write_text(
        """
[training_set]
store = "sim/cutouts.zarr"
[[training_set.extra]]
store = "inj/cutouts.zarr"
[[training_set.extra]]
store = "other/cutouts.zarr"
labels = "other/mine.parquet"
[[members]]
name = "res"
architecture = "resnet"
"""
    )
    config = TrainConfig.from_toml(path)
    first, second = config.training_set.extra
    assert first.store == tmp_path / "inj" / "cutouts.zarr"
    assert first.labels_path == tmp_path / "inj" / "labels.parquet"
    assert second.labels_path == tmp_path / "other" / "mine.parquet"
    assert config.training_set.spec()["extra"][0]["store"] == str(first.store)
    assert "extra" not in TrainConfig(members=config.members).training_set.spec()
    plain = TrainConfig(members=config.members, training_set=CutoutSet(store=first.store))
    assert isinstance(plain.training_set, TrainingSetConfig) and plain.training_set.extra == ()
    # the main set is what ensure_cutout_set sees: the extras never make it simulate again
    store, labels = ensure_cutout_set(config.training_set, tmp_path / "work")
    assert (store, labels) == (
        tmp_path / "sim" / "cutouts.zarr",
        tmp_path / "sim" / "labels.parquet",
    )


def test_a_training_set_loads_with_its_extra_injected_set(tmp_path: Path, injected: Path) -> None:
    store = write_labelled_store(tmp_path, 9, seed=3)
    spec = TrainingSetConfig(store=store, extra=(LabelledStore(store=injected),))
    data = load_training_set(spec, store, tmp_path / "labels.parquet", threads=2)
    extra = read_labels(injected.parent / "labels.parquet")
    assert data.images.shape[0] == 9 + extra.ids.size
    np.testing.assert_array_equal(data.labels.ids[9:], extra.ids)
    assert data.labels.is_lens.sum() == 3 + extra.is_lens.sum()
    assert data.labels.classes is not None
    assert set(data.labels.classes[9:]) == set(extra.classes)
    ids, images = read_group(store, "a")
    np.testing.assert_array_equal(data.images[: ids.size], images)
    alone = load_training_set(spec.simulated(), store, tmp_path / "labels.parquet")
    assert alone.images.shape[0] == 9


def test_an_extra_store_of_other_imaging_is_refused(tmp_path: Path, injected: Path) -> None:
    store = write_labelled_store(tmp_path, 6, seed=3)
    coarse = tmp_path / "coarse" / "cutouts.zarr"
    coarse.parent.mkdir()
    create_store(
        coarse,
        bands=["g", "r", "i"],
        pixel_scale_arcsec=0.168,
        psf_fwhm_arcsec={"g": 0.7, "r": 0.6, "i": 0.6},
        cutout_size=64,
    )
    for group in ("a", "b"):
        ids, images = read_group(store, group)
        write_group(coarse, group, ids=ids, images=images)
    (tmp_path / "labels.parquet").replace(coarse.parent / "labels.parquet")
    spec = TrainingSetConfig(store=injected, extra=(LabelledStore(store=coarse),))
    with pytest.raises(TrainingError, match=r"pixel_scale_arcsec 0.168 differs .* 0.2") as err:
        load_training_set(spec, injected, injected.parent / "labels.parquet")
    assert "\n" not in str(err.value)
