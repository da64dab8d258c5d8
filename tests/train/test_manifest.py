"""The models manifest as training writes it: merged entries, set metrics, a copied gate."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lensflow.errors import TrainingError
from lensflow.evaluate import build_report
from lensflow.io import file_digest
from lensflow.labels import Labels
from lensflow.registry import load_manifest
from lensflow.surveys import survey_profile
from lensflow.train.export import export_onnx
from lensflow.train.manifest import (
    read_manifest_table,
    record_metrics,
    take_photometry,
    write_manifest,
)
from lensflow.train.models import PhotometryMLP, build_cnn

LSST = survey_profile("lsst")


def _entries(tmp_path: Path) -> tuple[dict[str, object], dict[str, object]]:
    torch.manual_seed(4)
    mags = np.random.default_rng(3).uniform(19, 25, size=(16, 4)).astype(np.float32)
    export_onnx(PhotometryMLP(), tmp_path / "p.onnx", kind="photometry", example=mags)
    images = np.zeros((2, 3, 64, 64), np.float32)
    export_onnx(build_cnn("attention", LSST), tmp_path / "a.onnx", kind="cnn", example=images)
    photometry = {
        "name": "p",
        "file": "p.onnx",
        "sha256": file_digest(tmp_path / "p.onnx"),
        "threshold": np.float32(0.25),
        "features": ["mag_g", "mag_r", "mag_i", "mag_z"],
        "training": {"seed": 1, "nothing": None},
        "metrics": {"n_lenses": np.int64(3), "n_non_lenses": 7},
    }
    member = {
        "name": "a",
        "file": "a.onnx",
        "sha256": file_digest(tmp_path / "a.onnx"),
        "bands": ["g", "r", "i"],
        "size": 64,
        "pixel_scale_arcsec": 0.2,
        "units": "nJy",
        "flops": 123,
        "metrics": {"auroc": 0.5, "n_lenses": 1, "n_non_lenses": 2},
    }
    return photometry, member


def test_manifest_entries_merge_and_validate(tmp_path: Path) -> None:
    photometry, member = _entries(tmp_path)
    path = tmp_path / "manifest.toml"
    write_manifest(path, members=[member], threshold=0.5)  # half a manifest: sections validated
    write_manifest(path, photometry=photometry)
    manifest = load_manifest(path, verify=True)
    assert manifest.photometry.threshold == pytest.approx(0.25)
    assert manifest.photometry.metrics["n_lenses"] == 3
    assert "nothing" not in manifest.photometry.training
    renamed = {**member, "name": "b"}
    write_manifest(path, members=[renamed, {**member, "flops": 456}], ensemble_metrics={"x": 1})
    manifest = load_manifest(path, verify=True)
    assert [(m.name, m.flops) for m in manifest.ensemble.members] == [("a", 456), ("b", 123)]
    assert manifest.ensemble.threshold == 0.5
    assert manifest.ensemble.metrics == {"x": 1}


def test_manifest_entries_that_do_not_validate_are_refused(tmp_path: Path) -> None:
    photometry, _ = _entries(tmp_path)
    with pytest.raises(TrainingError, match="threshold"):
        write_manifest(tmp_path / "manifest.toml", photometry={**photometry, "threshold": 2.0})
    assert not (tmp_path / "manifest.toml").exists()


def test_set_metrics_go_top_level_for_the_test_set_and_nested_otherwise(tmp_path: Path) -> None:
    photometry, member = _entries(tmp_path)
    path = write_manifest(
        tmp_path / "manifest.toml", photometry=photometry, members=[member], threshold=0.5
    )
    is_lens = np.array([True, True, False, False, False])
    labels = Labels(ids=np.arange(5, dtype=np.int64), is_lens=is_lens, classes=None)
    good = np.where(is_lens, 0.8, 0.2).astype(np.float32)
    bad = 1.0 - good
    record_metrics(
        path,
        "test",
        spec={"n_lenses": 2, "seed": 1},
        report=build_report(labels, {"a": good, "ensemble": good}, threshold=0.5),
    )
    record_metrics(
        path,
        "shifted",
        spec={"seeing_factor": 1.3},
        report=build_report(labels, {"a": bad, "ensemble": bad}, threshold=0.5),
    )
    raw = read_manifest_table(path)
    metrics = raw["ensemble"]["members"][0]["metrics"]
    assert (metrics["auroc"], metrics["n_lenses"], metrics["n_non_lenses"]) == (1.0, 2, 3)
    assert metrics["test_set"] == {"n_lenses": 2, "seed": 1}
    shifted = metrics["evaluation_sets"]["shifted"]
    assert (shifted["auroc"], shifted["set"]) == (0.0, {"seeing_factor": 1.3})
    assert raw["ensemble"]["metrics"]["test_set"] == {"n_lenses": 2, "seed": 1}
    assert raw["ensemble"]["metrics"]["evaluation_sets"]["shifted"]["tpr0"] == 0.0
    load_manifest(path, verify=True)


def test_the_output_takes_a_photometry_gate_with_its_file(tmp_path: Path) -> None:
    photometry, member = _entries(tmp_path)
    source = write_manifest(tmp_path / "manifest.toml", photometry=photometry)
    output = tmp_path / "out"
    write_manifest(output / "manifest.toml", members=[member], threshold=0.5)
    (output / "a.onnx").write_bytes((tmp_path / "a.onnx").read_bytes())
    take_photometry(output, source=source)
    assert file_digest(output / "p.onnx") == photometry["sha256"]
    manifest = load_manifest(output / "manifest.toml", verify=True)
    assert manifest.photometry.name == "p"
    assert [m.name for m in manifest.ensemble.members] == ["a"]
    with source.open("rb") as f:
        assert (
            tomllib.load(f)["photometry"]
            == read_manifest_table(output / "manifest.toml")["photometry"]
        )


def test_a_photometry_gate_whose_file_changed_is_not_taken(tmp_path: Path) -> None:
    photometry, _ = _entries(tmp_path)
    source = write_manifest(tmp_path / "manifest.toml", photometry=photometry)
    (tmp_path / "p.onnx").write_bytes(b"not the exported graph")
    with pytest.raises(TrainingError, match="sha256 does not match"):
        take_photometry(tmp_path / "out", source=source)
    assert not (tmp_path / "out" / "manifest.toml").exists()
