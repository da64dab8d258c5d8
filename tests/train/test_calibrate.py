"""Calibrating a manifest: the fit written into its ensemble tables only, and the refusals."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import numpy as np
import pytest

from lensflow.errors import TrainingError
from lensflow.registry import load_manifest
from lensflow.train import calibrate
from lensflow.train.calibrate import calibrate_manifest
from tests.evaluate.helpers import noisy_set, write_models

GAINS = {"sharp": 1.5, "soft": 0.5}


def _raw(path: Path) -> dict:  # type: ignore[type-arg]
    with path.open("rb") as f:
        return tomllib.load(f)


def test_the_fit_replaces_only_the_ensemble_tables_even_when_the_file_changes_meanwhile(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    manifest = write_models(tmp_path / "models", GAINS)
    store, labels = noisy_set(tmp_path / "validation", n_lenses=80, n_non_lenses=400, seed=1)
    real_fit = calibrate.fit_isotonic

    def fit_while_another_process_edits(*args, **kwargs):  # type: ignore[no-untyped-def]
        text = manifest.read_text().replace("threshold = 0.5", "threshold = 0.25", 1)
        manifest.write_text(text)  # [photometry] changed while the members were scored
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(calibrate, "fit_isotonic", fit_while_another_process_edits)
    before = _raw(manifest)
    result = calibrate_manifest(manifest, store, labels, prior=1e-3)
    after = _raw(manifest)
    assert after["photometry"]["threshold"] == 0.25, "the edit made meanwhile is kept"
    assert after["ensemble"]["members"] == before["ensemble"]["members"]
    assert after["ensemble"]["threshold"] == before["ensemble"]["threshold"]
    combination = after["ensemble"]["combination"]
    assert set(combination["weights"]) == set(GAINS) and combination["method"] == "logistic"
    assert combination["fitted_on"]["n_lenses"] == 80
    assert combination["fitted_on"]["n_non_lenses"] == 400
    assert combination["fitted_on"]["store"] == str(store.resolve())
    calibration = load_manifest(manifest).ensemble.calibration
    assert calibration is not None and calibration.lens_fraction == pytest.approx(80 / 480)
    assert result.report.metrics["ensemble"].n_non_lenses == 400
    assert {"ensemble", "mean", *GAINS} == set(result.report.scores)
    assert result.purity.thresholds_on == "p_lens" and result.purity.prior == 1e-3
    # a second fit replaces the tables in place
    calibrate_manifest(manifest, store, labels)
    assert _raw(manifest)["photometry"]["threshold"] == 0.25


def test_a_small_set_is_refused(tmp_path: Path) -> None:
    manifest = write_models(tmp_path / "models", GAINS)
    store, labels = noisy_set(tmp_path / "small", n_lenses=49, n_non_lenses=400, seed=2)
    text = manifest.read_text()
    with pytest.raises(TrainingError, match=r"49 lenses and 400 non-lenses; .* at least 50"):
        calibrate_manifest(manifest, store, labels)
    assert manifest.read_text() == text


def test_a_recorded_test_store_or_overlapping_ids_are_refused(tmp_path: Path) -> None:
    store, labels = noisy_set(tmp_path / "validation", n_lenses=60, n_non_lenses=100, seed=3)
    other, _ = noisy_set(tmp_path / "other", n_lenses=5, n_non_lenses=5, seed=4, first_id=150)
    apart, apart_labels = noisy_set(
        tmp_path / "apart", n_lenses=60, n_non_lenses=100, seed=5, first_id=10_000
    )
    for held, message in ((store, "is the test set"), (other, r"ids \(e.g. \d+\) are also")):
        extra = f'[ensemble.metrics.test_set]\nstore = "{held}"\n'
        manifest = write_models(tmp_path / f"models-{held.parent.name}", GAINS, extra=extra)
        with pytest.raises(TrainingError, match=message):
            calibrate_manifest(manifest, store, labels)
        assert "combination" not in _raw(manifest)["ensemble"]
    calibrate_manifest(manifest, apart, apart_labels)  # ids 70,000 on: no overlap
    assert "combination" in _raw(manifest)["ensemble"]


def test_a_set_simulated_with_a_held_out_seed_is_refused(tmp_path: Path) -> None:
    store, labels = noisy_set(tmp_path / "validation", n_lenses=60, n_non_lenses=100, seed=3)
    spec = {"n_lenses": 60, "n_non_lenses": 100, "seed": 303, "mix": "natural"}
    stamp = {"spec": spec, "survey": "lsst", "store": str(store), "labels": str(labels)}
    (labels.parent / "spec.json").write_text(json.dumps(stamp))
    natural = (
        "[ensemble.metrics.evaluation_sets.natural.set]\n"
        'n_lenses = 2000\nn_non_lenses = 100000\nseed = 303\nmix = "natural"\n'
    )
    manifest = write_models(tmp_path / "models", GAINS, extra=natural)
    with pytest.raises(TrainingError, match="seed 303, like the natural set"):
        calibrate_manifest(manifest, store, labels)
    # the same seed in the training mix is another set of objects: accepted, and recorded
    other = write_models(tmp_path / "other", GAINS, extra=natural.replace('natural"', 'training"'))
    calibrate_manifest(other, store, labels)
    fitted_on = _raw(other)["ensemble"]["calibration"]["fitted_on"]
    assert fitted_on == {
        "n_lenses": 60,
        "n_non_lenses": 100,
        "seed": 303,
        "mix": "natural",
        "survey": "lsst",
    }
    assert np.isclose(_raw(other)["ensemble"]["calibration"]["lens_fraction"], 60 / 160)
