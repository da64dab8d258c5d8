"""The ensemble fitted at training time: mining, members chosen, combination and calibration
written into the manifest the run produces, and a resumed run that ends where a straight one does.
"""

from __future__ import annotations

import json
import shutil
import tomllib
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from lensflow.registry import load_manifest
from lensflow.train.config import (
    CombinationConfig,
    CutoutSet,
    MemberConfig,
    TrainConfig,
)
from lensflow.train.ensemble import train_ensemble
from lensflow.train.options import MiningConfig, RandomiseConfig, SelectionConfig
from tests.train.helpers import write_labelled_store


def test_members_are_mined_chosen_combined_and_calibrated(tmp_path: Path) -> None:
    train_store = write_labelled_store(tmp_path / "train", 48, seed=1)
    natural = write_labelled_store(tmp_path / "natural", 150, seed=3, first_id=1 << 59)
    config = TrainConfig(
        members=(
            MemberConfig(name="att", architecture="attention", seed=1),
            MemberConfig(name="mob", architecture="attention", seed=2),
        ),
        training_set=CutoutSet(store=train_store),
        test_set=None,
        validation_fraction=0.25,
        epochs=1,
        batch_size=16,
        device="cpu",
        work=tmp_path / "work",
        output=tmp_path / "models",
        summary=tmp_path / "report.json",
        randomise=RandomiseConfig(psf_sigma_px=(0.0, 1.0), noise_fraction=(0.0, 0.5)),
        mining=MiningConfig(rounds=2, pool=12, keep=3, epochs_per_round=1, seed=500),
        selection=SelectionConfig(size=1),
        combination=CombinationConfig(set=CutoutSet(store=natural)),
    )
    manifest = train_ensemble(config)
    with manifest.open("rb") as f:
        raw = tomllib.load(f)
    ensemble = raw["ensemble"]
    (member,) = ensemble["members"]
    summary = json.loads((tmp_path / "report.json").read_text())
    fitted = summary["ensemble_fit"]
    assert fitted["selection"]["chosen"] == [member["name"]]
    assert set(fitted["selection"]["spearman"]) == {"att", "mob"}
    assert fitted["selection"]["steps"][0]["n_non_lenses"] == 100
    dropped = ({"att", "mob"} - {member["name"]}).pop()
    assert not (tmp_path / "models" / f"{dropped}.onnx").exists()
    assert set(ensemble["combination"]["weights"]) == {member["name"]}
    assert ensemble["combination"]["fitted_on"]["n_lenses"] == 50
    assert ensemble["calibration"]["lens_fraction"] == pytest.approx(50 / 150)
    models = load_manifest(manifest, verify=True)
    assert models.ensemble.combination is not None
    assert fitted["weights"] == ensemble["combination"]["weights"]
    assert fitted["in_sample"]["ensemble"]["n_non_lenses"] == 100
    rounds = member["training"]["mining"]
    assert [r["round"] for r in rounds] == [1, 2]
    for r in rounds:
        assert (r["pool"], r["pool_scored"], r["kept"]) == (12, 12, 3)
        assert sum(r["classes"].values()) == 3
        assert r["threshold"] <= r["top_score"]
        assert r["validation"]["n_lenses"] == 4  # a quarter of the 16 lenses
    assert [r["n_train"] for r in rounds] == [36 + 3, 36 + 6]
    assert member["training"]["n_train"] == 42
    assert "added noise" in member["training"]["augmentation"]
    # a run killed during round 2 restarts there and ends with the same member
    folder = tmp_path / "work" / "checkpoints" / member["name"] / "round-2"
    for checkpoint in folder.glob("epoch-*.pt"):
        checkpoint.unlink()
    shutil.rmtree(tmp_path / "work" / "checkpoints" / dropped / "round-2")
    train_ensemble(config)
    with manifest.open("rb") as f:
        again = tomllib.load(f)["ensemble"]
    assert [m["sha256"] for m in again["members"]] == [member["sha256"]]
    assert again["combination"] == ensemble["combination"]
