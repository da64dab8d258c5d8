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

from lensflow.cutouts import create_store, write_group
from lensflow.errors import ConfigError
from lensflow.train.config import (
    CutoutSet,
    MemberConfig,
    TrainConfig,
    TrainingError,
)
from lensflow.train.data import augment, load_cutouts, split_validation
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
    data = load_cutouts(train_store, tmp_path / "train" / "labels.parquet")
    assert data.images.shape == (48, 3, 64, 64)
    config = TrainConfig(
        members=(
            MemberConfig(name="att", architecture="attention", seed=1),
            MemberConfig(name="mob", architecture="mobilenet", seed=2),
        ),
        training_set=CutoutSet(store=train_store),
        test_set=CutoutSet(store=test_store),
        validation_fraction=0.25,
        epochs=1,
        batch_size=16,
        device="cpu",
        work=tmp_path / "work",
        output=tmp_path / "models",
    )
    manifest = train_ensemble(config)
    assert manifest == tmp_path / "models" / "manifest.toml"
    import tomllib

    with manifest.open("rb") as f:
        raw = tomllib.load(f)
    members = raw["ensemble"]["members"]
    assert [m["name"] for m in members] == ["att", "mob"]
    for member in members:
        assert (tmp_path / "models" / member["file"]).is_file()
        assert member["metrics"]["n_lenses"] == 10
        assert member["metrics"]["n_non_lenses"] == 20
        assert member["training"]["store"] == str(train_store)
        assert 0 < member["flops"] <= 100_000_000
    assert raw["ensemble"]["metrics"]["n_non_lenses"] == 20
    assert set(raw["ensemble"]["metrics"]["fpr_by_class"]) == {"spiral"}
    report = json.loads((tmp_path / "work" / "reports" / "ensemble.json").read_text())
    assert list(report) == ["ensemble", "att", "mob"]
    assert (tmp_path / "work" / "reports" / "roc.png").is_file()
    # a rerun resumes the finished members and writes the same files
    digests = [m["sha256"] for m in members]
    train_ensemble(config)
    with manifest.open("rb") as f:
        assert [m["sha256"] for m in tomllib.load(f)["ensemble"]["members"]] == digests
