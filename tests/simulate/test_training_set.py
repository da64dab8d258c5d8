"""Training sets: Zarr cutouts and Parquet labels, the same in-process and on a Dask cluster."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lensflow.cutouts import list_groups, open_store, read_group
from lensflow.errors import SimulationError
from lensflow.simulate import (
    LENS_PARAMS,
    NATURAL_MIX,
    NON_LENS_CLASSES,
    TrainingSet,
    make_training_set,
    simulate_cutouts,
)
from lensflow.simulate.training_set import plan_classes, survey_label_schema
from lensflow.surveys import survey_profile

LSST = survey_profile("lsst")

N_LENSES, N_NON_LENSES, SEED = 16, 48, 11


@pytest.fixture(scope="module")
def in_process(tmp_path_factory: pytest.TempPathFactory) -> TrainingSet:
    out = tmp_path_factory.mktemp("set") / "in-process"
    return make_training_set(
        out, n_lenses=N_LENSES, n_non_lenses=N_NON_LENSES, seed=SEED, chunk_size=20
    )


def _read_all(store: Path) -> tuple[np.ndarray, np.ndarray]:
    parts = [read_group(store, group) for group in list_groups(store)]
    ids = np.concatenate([p[0] for p in parts])
    images = np.concatenate([p[1] for p in parts])
    order = np.argsort(ids)
    return ids[order], images[order]


def test_store_holds_every_cutout_once(in_process: TrainingSet) -> None:
    assert in_process.store.name == "cutouts.zarr"
    assert in_process.labels.name == "labels.parquet"
    assert (in_process.n_lenses, in_process.n_non_lenses) == (N_LENSES, N_NON_LENSES)
    groups = list_groups(in_process.store)
    assert groups == [f"chunk-{k:06d}" for k in range(4)]
    ids, images = _read_all(in_process.store)
    np.testing.assert_array_equal(ids, np.arange(N_LENSES + N_NON_LENSES))
    assert images.dtype == np.float32
    assert images.shape == (N_LENSES + N_NON_LENSES, 3, 64, 64)
    assert np.all(np.isfinite(images))
    info = open_store(in_process.store)
    assert info.bands == LSST.bands
    assert info.cutout_size == 64
    assert info.pixel_scale_arcsec == 0.2
    assert info.units == "nJy"
    assert dict(info.psf_fwhm_arcsec) == {"g": 0.85, "r": 0.75, "i": 0.70}


def test_labels_schema_and_content(in_process: TrainingSet) -> None:
    table = pq.read_table(in_process.labels)
    assert table.schema.field("id").type == pa.int64()
    assert table.schema.field("is_lens").type == pa.bool_()
    assert table.schema.field("class").type == pa.string()
    for name in LENS_PARAMS:
        assert table.schema.field(name).type == pa.float64()
    assert table.schema.equals(survey_label_schema(LSST), check_metadata=False)
    labels = table.to_pydict()
    assert labels["id"] == list(range(N_LENSES + N_NON_LENSES))
    assert sum(labels["is_lens"]) == N_LENSES
    for k, is_lens in enumerate(labels["is_lens"]):
        assert (labels["class"][k] == "lens") == is_lens
        assert labels["class"][k] in ("lens", *NON_LENS_CLASSES)
        for name in LENS_PARAMS:
            assert (labels[name][k] is not None) == is_lens
    thetas = [t for t in labels["theta_e"] if t is not None]
    assert all(0.6 <= t <= 3.0 for t in thetas)
    for k, kind in enumerate(labels["class"]):
        mags = [labels[f"mag_{b}"][k] for b in LSST.bands]
        if kind == "artefact":  # an artefact may sit in one band only (infinite elsewhere)
            assert any(np.isfinite(mags))
        else:
            assert all(np.isfinite(mags))


def test_set_equals_the_same_ids_simulated_directly(in_process: TrainingSet) -> None:
    labels = pq.read_table(in_process.labels).to_pydict()
    ids, images = _read_all(in_process.store)
    pick = [0, 5, 17, 63]
    scenes, direct = simulate_cutouts([labels["class"][k] for k in pick], ids[pick], seed=SEED)
    np.testing.assert_array_equal(direct, images[pick])
    for k, scene in zip(pick, scenes, strict=True):
        assert labels["mag_r"][k] == scene.mag["r"]


def test_dask_cluster_builds_the_same_set(
    in_process: TrainingSet, dask_client: object, tmp_path: Path
) -> None:
    made = make_training_set(
        tmp_path / "on-dask",
        n_lenses=N_LENSES,
        n_non_lenses=N_NON_LENSES,
        seed=SEED,
        chunk_size=7,
        client=dask_client,  # type: ignore[arg-type]
    )
    assert len(list_groups(made.store)) == 10
    ids_a, images_a = _read_all(in_process.store)
    ids_b, images_b = _read_all(made.store)
    np.testing.assert_array_equal(ids_a, ids_b)
    np.testing.assert_array_equal(images_a, images_b)
    assert pq.read_table(in_process.labels).equals(pq.read_table(made.labels))


def test_an_existing_set_is_not_overwritten(in_process: TrainingSet) -> None:
    with pytest.raises(SimulationError, match="already holds"):
        make_training_set(in_process.store.parent, n_lenses=1, n_non_lenses=1, seed=0)


def test_class_plan_follows_the_mix() -> None:
    kinds = plan_classes(100, 4000, seed=3, mix=NATURAL_MIX)
    assert kinds == plan_classes(100, 4000, seed=3, mix=NATURAL_MIX)
    assert kinds.count("lens") == 100
    spirals = kinds.count("spiral") / 4000
    assert spirals == pytest.approx(NATURAL_MIX["spiral"], abs=0.03)
    only = plan_classes(0, 50, seed=3, mix={"ring": 1.0})
    assert set(only) == {"ring"}


def test_bad_mixes_and_sizes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(SimulationError, match="unknown non-lens classes"):
        plan_classes(1, 10, seed=0, mix={"lens": 1.0})
    with pytest.raises(SimulationError, match="positive sum"):
        plan_classes(1, 10, seed=0, mix={"ring": 0.0})
    with pytest.raises(SimulationError, match="not both 0"):
        plan_classes(0, 0, seed=0)
    with pytest.raises(SimulationError, match="chunk_size"):
        make_training_set(tmp_path / "x", n_lenses=1, n_non_lenses=1, seed=0, chunk_size=0)


def test_a_wide_set_records_its_population_and_differs_from_classic(
    in_process: TrainingSet, tmp_path: Path
) -> None:
    import zarr

    assert zarr.open_group(str(in_process.store), mode="r").attrs["population"] == "classic"
    wide = make_training_set(
        tmp_path / "wide", n_lenses=2, n_non_lenses=4, seed=SEED, population="wide"
    )
    assert zarr.open_group(str(wide.store), mode="r").attrs["population"] == "wide"
    _, images = _read_all(wide.store)
    kinds = plan_classes(2, 4, seed=SEED)
    scenes, direct = simulate_cutouts(kinds, np.arange(6), seed=SEED, population="wide")
    np.testing.assert_array_equal(images, direct)
    assert all(s.population == "wide" for s in scenes)
    _, classic = _read_all(in_process.store)
    assert not np.array_equal(images[0], classic[0])
    with pytest.raises(SimulationError, match="unknown population"):
        make_training_set(tmp_path / "bad", n_lenses=1, n_non_lenses=1, seed=1, population="x")


def test_an_interrupted_set_resumes_at_the_chunks_it_had_not_made(
    in_process: TrainingSet, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run stopped in its third chunk makes only the chunks it had not finished on a rerun."""
    from lensflow.simulate import training_set

    out = tmp_path / "resumed"
    made: list[int] = []
    real = training_set.simulate_cutouts

    def stopping_at(first_id: int | None) -> object:
        def simulate(kinds: list[str], ids: np.ndarray, **kwargs: object) -> object:
            if int(np.asarray(ids)[0]) == first_id:
                raise KeyboardInterrupt
            made.append(int(np.asarray(ids)[0]))
            return real(kinds, ids, **kwargs)  # type: ignore[arg-type]

        return simulate

    options = {"n_lenses": N_LENSES, "n_non_lenses": N_NON_LENSES, "seed": SEED, "chunk_size": 20}
    monkeypatch.setattr(training_set, "simulate_cutouts", stopping_at(40))
    with pytest.raises(KeyboardInterrupt):
        make_training_set(out, progress=False, **options)  # type: ignore[arg-type]
    assert made == [0, 20] and not (out / "labels.parquet").exists()
    (out / training_set.PARTS_FOLDER / "chunk-000001.parquet").unlink()  # a group without labels
    made.clear()
    monkeypatch.setattr(training_set, "simulate_cutouts", stopping_at(None))
    resumed = make_training_set(out, progress=False, **options)  # type: ignore[arg-type]
    assert made == [20, 40, 60]
    ids_a, images_a = _read_all(in_process.store)
    ids_b, images_b = _read_all(resumed.store)
    np.testing.assert_array_equal(ids_a, ids_b)
    np.testing.assert_array_equal(images_a, images_b)
    assert pq.read_table(in_process.labels).equals(pq.read_table(resumed.labels))
    assert not (out / training_set.PARTS_FOLDER).exists()


def test_an_interrupted_set_of_another_spec_starts_over(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lensflow.simulate import training_set

    out = tmp_path / "other"
    real = training_set.simulate_cutouts
    made: list[int] = []
    stop = [True]

    def simulate(kinds: list[str], ids: np.ndarray, **kwargs: object) -> object:
        if int(np.asarray(ids)[0]) == 10 and stop[0]:
            raise KeyboardInterrupt
        made.append(int(np.asarray(ids)[0]))
        return real(kinds, ids, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(training_set, "simulate_cutouts", simulate)
    with pytest.raises(KeyboardInterrupt):
        make_training_set(out, n_lenses=4, n_non_lenses=16, seed=1, chunk_size=10, progress=False)
    with pytest.raises(SimulationError, match="already holds"):
        make_training_set(out, n_lenses=4, n_non_lenses=16, seed=2, chunk_size=10)
    made.clear()
    stop[0] = False
    make_training_set(
        out, n_lenses=4, n_non_lenses=16, seed=2, chunk_size=10, overwrite=True, progress=False
    )
    assert made == [0, 10]
