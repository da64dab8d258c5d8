"""The ensemble run: members trained, exported, evaluated on held-out sets, and resumed."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from lensflow.errors import TrainingError
from lensflow.registry import load_manifest
from lensflow.train.config import CutoutSet, EvaluationSet, MemberConfig, TrainConfig
from lensflow.train.data import load_cutouts
from lensflow.train.ensemble import held_out_sets, train_ensemble
from tests.train.helpers import write_labelled_store


def test_held_out_sets_are_the_test_set_then_the_evaluation_sets(tmp_path: Path) -> None:
    members = (MemberConfig(name="m", architecture="resnet"),)
    test = CutoutSet(n_lenses=2, n_non_lenses=3, seed=9)
    shifted = EvaluationSet(name="shifted", seeing_factor=1.2)
    natural = EvaluationSet(name="natural", mix="natural")
    config = TrainConfig(members=members, test_set=test, evaluation_sets=(shifted, natural))
    assert held_out_sets(config) == [("test", test), ("shifted", shifted), ("natural", natural)]
    without = TrainConfig(members=members, test_set=None, evaluation_sets=(natural,))
    assert held_out_sets(without) == [("natural", natural)]


def test_a_tiny_ensemble_trains_exports_and_evaluates(tmp_path: Path) -> None:
    train_store = write_labelled_store(tmp_path / "train", 48, seed=1)
    test_store = write_labelled_store(tmp_path / "test", 30, seed=2)
    other_store = write_labelled_store(tmp_path / "other", 18, seed=3)
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
        assert (member["survey"], member["bands"]) == ("lsst", ["g", "r", "i"])
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


def test_a_store_of_other_bands_than_the_survey_is_refused(tmp_path: Path) -> None:
    store = write_labelled_store(tmp_path / "train", 12, seed=1)
    config = TrainConfig(
        members=(MemberConfig(name="m", architecture="resnet"),),
        survey="hsc",
        training_set=CutoutSet(store=store),
        test_set=None,
        device="cpu",
        work=tmp_path / "work",
        output=tmp_path / "models",
    )
    with pytest.raises(TrainingError, match="not those of survey 'hsc'"):
        train_ensemble(config)
