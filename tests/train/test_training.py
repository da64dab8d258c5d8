"""Training: augmentation, deterministic resume from checkpoints, config files, a tiny run."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

torch = pytest.importorskip("torch")

from lensflow.cutouts import create_store, open_store, write_group
from lensflow.errors import ConfigError
from lensflow.simulate import LSST_LIKE
from lensflow.train.config import (
    CutoutSet,
    EvaluationSet,
    MemberConfig,
    TrainConfig,
    TrainingError,
)
from lensflow.train.data import (
    augment,
    batch_rows,
    ensure_cutout_set,
    load_cutouts,
    split_validation,
)
from lensflow.train.ensemble import train_ensemble
from lensflow.train.loop import FitSettings, fit
from lensflow.train.models import build_cnn


def _images(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Noise cutouts (N, 3, 64, 64) nJy; lenses carry a bright ring."""
    rng = np.random.default_rng(seed)
    images = rng.normal(0.0, 5.0, size=(n, 3, 64, 64)).astype(np.float32)
    is_lens = np.arange(n) % 3 == 0
    y, x = np.mgrid[:64, :64] - 31.5
    ring = (np.abs(np.hypot(x, y) - 10) < 1.5).astype(np.float32) * 60
    images[is_lens] += ring
    return images, is_lens


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


def _fit(folder: Path, images: np.ndarray, is_lens: np.ndarray) -> dict[str, Any]:
    torch.manual_seed(0)
    model = build_cnn("attention", ("g", "r", "i"))
    settings = FitSettings(
        epochs=2, patience=5, batch_size=8, lr=1e-3, weight_decay=1e-4, seed=3, augment=True
    )
    fit(
        model,
        (images[:24], is_lens[:24]),
        (images[24:], is_lens[24:]),
        settings=settings,
        device=torch.device("cpu"),
        checkpoints=folder,
        tag="t",
    )
    state = torch.load(folder / "epoch-002.pt", weights_only=True)
    assert state["stopped"]
    return dict(state["model"])


def test_a_resumed_run_ends_with_the_weights_of_an_uninterrupted_one(tmp_path: Path) -> None:
    images, is_lens = _images(32, seed=0)
    straight = _fit(tmp_path / "straight", images, is_lens)
    interrupted = tmp_path / "interrupted"
    _fit(interrupted, images, is_lens)
    (interrupted / "epoch-002.pt").unlink()  # as if stopped after the first epoch
    resumed = _fit(interrupted, images, is_lens)
    assert straight.keys() == resumed.keys()
    for name in straight:
        torch.testing.assert_close(resumed[name], straight[name], rtol=0, atol=0)
    first = torch.load(interrupted / "epoch-001.pt", weights_only=True)["model"]
    assert any(not torch.equal(first[k], straight[k]) for k in straight)


def test_a_checkpoint_of_another_config_is_refused(tmp_path: Path) -> None:
    images, is_lens = _images(32, seed=0)
    _fit(tmp_path, images, is_lens)
    model = build_cnn("attention", ("g", "r", "i"))
    settings = FitSettings(
        epochs=2, patience=5, batch_size=8, lr=1e-3, weight_decay=1e-4, seed=3, augment=True
    )
    with pytest.raises(TrainingError, match="checkpoint of another config"):
        fit(
            model,
            (images[:24], is_lens[:24]),
            (images[24:], is_lens[24:]),
            settings=settings,
            device=torch.device("cpu"),
            checkpoints=tmp_path,
            tag="other",
        )


def test_a_time_budget_sets_the_epochs_and_a_run_past_it_resumes(tmp_path: Path) -> None:
    images, is_lens = _images(32, seed=0)
    settings = FitSettings(
        epochs=3, patience=5, batch_size=8, lr=1e-3, weight_decay=1e-4, seed=3, augment=True
    )
    train, val = (images[:24], is_lens[:24]), (images[24:], is_lens[24:])
    cpu = torch.device("cpu")

    def run(folder: Path, max_seconds: float | None) -> Any:
        model = build_cnn("attention", ("g", "r", "i"))
        return fit(
            model,
            train,
            val,
            settings=settings,
            device=cpu,
            checkpoints=folder,
            tag="t",
            max_seconds=max_seconds,
        )

    budget = run(tmp_path / "budget", 1e-6)  # one epoch fits: the schedule ends after it
    assert (budget.epochs_run, budget.stopped_by) == (1, "budget")
    state = torch.load(tmp_path / "budget" / "epoch-001.pt", weights_only=True)
    assert state["stopped"] and state["schedule"]["T_max"] == 1
    assert budget.images_per_second > 0

    folder = tmp_path / "late"
    run(folder, None)
    for epoch in (2, 3):
        (folder / f"epoch-00{epoch}.pt").unlink()  # as if stopped after the first epoch
    late = run(folder, 1e-6)  # the second epoch passes the time: stopped, resumable
    assert (late.resumed_at, late.epochs_run, late.stopped_by) == (1, 2, "time")
    assert not torch.load(folder / "epoch-002.pt", weights_only=True)["stopped"]
    rest = run(folder, None)
    assert (rest.resumed_at, rest.epochs_run, rest.stopped_by) == (2, 3, "epochs")
    assert [h["epoch"] for h in rest.history] == [1.0, 2.0, 3.0]


def test_config_reads_toml_relative_to_its_file(tmp_path: Path) -> None:
    path = tmp_path / "train.toml"
    path.write_text(
        """
epochs = 3
device = "cpu"
work = "run"
[training_set]
store = "sets/cutouts.zarr"
[[members]]
name = "res"
architecture = "resnet"
seed = 4
"""
    )
    config = TrainConfig.from_toml(path)
    assert config.epochs == 3
    assert config.training_set.store == tmp_path / "sets" / "cutouts.zarr"
    assert config.checkpoint_folder == tmp_path / "run" / "checkpoints"
    assert config.members[0].seed == 4
    path.write_text(path.read_text().replace("epochs = 3", "epoch = 3"))
    with pytest.raises(ConfigError, match="epoch"):
        TrainConfig.from_toml(path)


def test_evaluation_sets_read_from_toml(tmp_path: Path) -> None:
    path = tmp_path / "train.toml"
    text = """
[[members]]
name = "res"
architecture = "resnet"
[[evaluation_sets]]
name = "shifted"
n_lenses = 20
n_non_lenses = 40
seed = 4
seeing_factor = 1.3
depth_mag = -0.5
folder = "sets/shifted"
[[evaluation_sets]]
name = "natural"
mix = "natural"
"""
    path.write_text(text)
    shifted, natural = TrainConfig.from_toml(path).evaluation_sets
    assert shifted.folder == tmp_path / "sets" / "shifted"
    assert shifted.spec() == {
        "n_lenses": 20,
        "n_non_lenses": 40,
        "seed": 4,
        "mix": "training",
        "seeing_factor": 1.3,
        "depth_mag": -0.5,
    }
    assert natural.mix == "natural"
    assert "seeing_factor" not in natural.spec()
    path.write_text(text.replace('name = "natural"', 'name = "shifted"'))
    with pytest.raises(ConfigError, match="evaluation set names repeat"):
        TrainConfig.from_toml(path)
    path.write_text(text.replace('name = "natural"', 'name = "test"'))
    with pytest.raises(ConfigError, match="evaluation set names"):
        TrainConfig.from_toml(path)
    path.write_text(text.replace("seeing_factor = 1.3", "seeing = 1.3"))
    with pytest.raises(ConfigError, match="seeing"):
        TrainConfig.from_toml(path)


def test_a_shifted_set_is_simulated_in_the_shifted_survey(tmp_path: Path) -> None:
    spec = CutoutSet(n_lenses=1, n_non_lenses=2, seed=5, seeing_factor=1.3, depth_mag=-0.5)
    store, labels = ensure_cutout_set(spec, tmp_path / "shifted")
    info = open_store(store)
    for band in info.bands:
        assert info.psf_fwhm_arcsec[band] == pytest.approx(1.3 * LSST_LIKE.psf_fwhm_arcsec[band])
    assert pq.read_table(labels).num_rows == 3
    stamp = json.loads((tmp_path / "shifted" / "spec.json").read_text())
    assert stamp["spec"]["depth_mag"] == -0.5
    assert ensure_cutout_set(spec, tmp_path / "shifted") == (store, labels)  # reused


def _store(folder: Path, n: int, seed: int) -> Path:
    images, is_lens = _images(n, seed)
    store = folder / "cutouts.zarr"
    create_store(
        store,
        bands=["g", "r", "i"],
        pixel_scale_arcsec=0.2,
        psf_fwhm_arcsec={"g": 0.85, "r": 0.75, "i": 0.7},
        cutout_size=64,
    )
    ids = np.arange(n, dtype=np.int64) * 3 + (1 << 60)
    write_group(store, "a", ids=ids[: n // 2], images=images[: n // 2])
    write_group(store, "b", ids=ids[n // 2 :], images=images[n // 2 :])
    classes = np.where(is_lens, "lens", "spiral")
    pq.write_table(
        pa.table({"id": pa.array(ids, pa.int64()), "is_lens": is_lens, "class": classes}),
        folder / "labels.parquet",
    )
    return store


def test_a_tiny_ensemble_trains_exports_and_evaluates(tmp_path: Path) -> None:
    train_store = _store(tmp_path / "train", 48, seed=1)
    test_store = _store(tmp_path / "test", 30, seed=2)
    other_store = _store(tmp_path / "other", 18, seed=3)
    data = load_cutouts(train_store, tmp_path / "train" / "labels.parquet", threads=2)
    assert data.images.shape == (48, 3, 64, 64)
    config = TrainConfig(
        members=(
            MemberConfig(name="att", architecture="attention", seed=1),
            MemberConfig(name="mob", architecture="mobilenet", seed=2),
        ),
        training_set=CutoutSet(store=train_store),
        test_set=CutoutSet(store=test_store),
        evaluation_sets=(EvaluationSet(name="other", store=other_store),),
        validation_fraction=0.25,
        epochs=1,
        batch_size=16,
        channels_last=True,
        preflight=True,
        device="cpu",
        evaluation_workers=2,
        work=tmp_path / "work",
        output=tmp_path / "models",
        summary=tmp_path / "out" / "report.json",
    )
    manifest = train_ensemble(config)
    assert manifest == tmp_path / "models" / "manifest.toml"
    import tomllib

    from lensflow.registry import load_manifest

    with manifest.open("rb") as f:
        raw = tomllib.load(f)
    members = raw["ensemble"]["members"]
    assert [m["name"] for m in members] == ["att", "mob"]
    for member in members:
        assert (tmp_path / "models" / member["file"]).is_file()
        assert member["metrics"]["n_lenses"] == 10
        assert member["metrics"]["n_non_lenses"] == 20
        assert member["metrics"]["test_set"] == {"store": str(test_store)}
        other = member["metrics"]["evaluation_sets"]["other"]
        assert (other["n_lenses"], other["n_non_lenses"]) == (6, 12)
        assert member["training"]["store"] == str(train_store)
        assert member["training"]["onnx_max_abs_diff"] <= 1e-4
        assert 0 < member["flops"] <= 100_000_000
    metrics = raw["ensemble"]["metrics"]
    assert metrics["n_non_lenses"] == 20
    assert set(metrics["fpr_by_class"]) == {"spiral"}
    assert metrics["evaluation_sets"]["other"]["n_non_lenses"] == 12
    assert set(metrics["evaluation_sets"]["other"]["top_non_lenses_by_class"]) == {"spiral"}
    assert load_manifest(manifest).photometry.name == "photometry_mlp"  # a complete model set
    report = json.loads((tmp_path / "work" / "reports" / "ensemble.json").read_text())
    assert list(report) == ["ensemble", "att", "mob"]
    for name in ("roc.png", "roc_other.png", "ensemble_other.json"):
        assert (tmp_path / "work" / "reports" / name).is_file()
    summary = json.loads((tmp_path / "out" / "report.json").read_text())
    steps = [s["step"] for s in summary["steps"]]
    assert steps[0] == "preflight"
    assert steps[-2:] == ["evaluate test set", "evaluate other set"]
    assert set(summary["members"]) == {"att", "mob"}
    assert summary["members"]["att"]["images_per_second"] > 0
    assert summary["sets"]["other"]["metrics"]["ensemble"]["n_lenses"] == 6
    assert set(summary["sets"]["test"]["onnxruntime_images_per_second"]) == {"att", "mob"}
    assert summary["sets"]["test"]["most_false_positives_class"] == "spiral"
    assert (tmp_path / "out" / "report.png").read_bytes()[:4] == b"\x89PNG"
    # a rerun resumes the finished members and writes the same files
    digests = [m["sha256"] for m in members]
    train_ensemble(config)
    with manifest.open("rb") as f:
        assert [m["sha256"] for m in tomllib.load(f)["ensemble"]["members"]] == digests
