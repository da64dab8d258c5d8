"""The models manifest: files pinned by sha256, ONNX only, confined to the manifest's folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lensflow.errors import ConfigError, ModelMismatchError
from lensflow.registry import default_manifest_path, load_manifest

pytestmark = pytest.mark.bad_input


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    shutil.copytree(default_manifest_path().parent, folder)
    return folder / "manifest.toml"


def test_shipped_manifest_verifies() -> None:
    manifest = load_manifest()
    assert len(manifest.ensemble.members) >= 2
    assert manifest.photometry.features[:4] == ("mag_g", "mag_r", "mag_i", "mag_z")


def test_changed_model_file_is_refused(models: Path) -> None:
    manifest = load_manifest(models)
    member = manifest.ensemble.members[0]
    with (models.parent / member.file).open("ab") as f:
        f.write(b"\0")
    with pytest.raises(ModelMismatchError, match=rf"{member.file}.*sha256"):
        load_manifest(models)


@pytest.mark.parametrize(
    ("replacement", "message"),
    [("model.pkl", "only .onnx"), ("../../outside.onnx", "inside"), ("absent.onnx", "missing")],
)
def test_pickles_escapes_and_missing_files_are_refused(
    models: Path, replacement: str, message: str
) -> None:
    text = models.read_text()
    first = load_manifest(models).ensemble.members[0].file
    models.write_text(text.replace(f'file = "{first}"', f'file = "{replacement}"', 1))
    (models.parent / "model.pkl").write_bytes(b"not loaded")
    with pytest.raises(ModelMismatchError, match=message):
        load_manifest(models)


def test_unknown_manifest_key_is_named(models: Path) -> None:
    models.write_text(models.read_text().replace("[ensemble]", "[ensemble]\nthreshhold = 0.3", 1))
    with pytest.raises(ConfigError, match="threshhold"):
        load_manifest(models)


CALIBRATED = """
[ensemble.combination]
method = "logistic"
bias = -1.5
[ensemble.combination.weights]
resnet = 0.5
mobilenet = 0.25
attention = 0.25
[ensemble.combination.fitted_on]
n_lenses = 500
n_non_lenses = 20000
seed = 505
[ensemble.calibration]
method = "isotonic"
scores = [0.01, 0.5, 0.99]
probabilities = [0.001, 0.2, 0.9]
lens_fraction = 0.024
"""


def _with_tables(models: Path, tables: str) -> Path:
    models.write_text(models.read_text() + tables)
    return models


def test_a_manifest_with_a_combination_and_a_calibration_round_trips(models: Path) -> None:
    plain = load_manifest(models)
    assert plain.ensemble.combination is None and plain.ensemble.calibration is None
    assert plain.ensemble_tables() == {}
    manifest = load_manifest(_with_tables(models, CALIBRATED))
    combination, calibration = manifest.ensemble.combination, manifest.ensemble.calibration
    assert combination is not None and calibration is not None
    assert combination.weights == {"resnet": 0.5, "mobilenet": 0.25, "attention": 0.25}
    assert (combination.bias, combination.fitted_on["seed"]) == (-1.5, 505)
    assert calibration.scores == (0.01, 0.5, 0.99) and calibration.lens_fraction == 0.024
    assert set(manifest.ensemble_tables()) == {"combination", "calibration"}
    # the tables' hashes join the model versions; a manifest without them keeps its string
    assert manifest.versions().startswith(plain.versions() + ",combination@")
    assert ",calibration@" in manifest.versions()
    again = load_manifest(models)
    assert again == manifest


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("probabilities = [0.001, 0.2, 0.9]", "must not decrease"),
        ("scores = [0.01, 0.5, 0.99]", "increase strictly"),
        ("lens_fraction = 0.024", "lens_fraction"),
        ("resnet = 0.5", "combination weights name"),
        ('method = "isotonic"', "method"),
    ],
)
def test_a_bad_calibration_or_combination_is_refused(
    models: Path, change: str, message: str
) -> None:
    replacement = {
        "probabilities = [0.001, 0.2, 0.9]": "probabilities = [0.3, 0.2, 0.9]",
        "scores = [0.01, 0.5, 0.99]": "scores = [0.01, 0.5, 0.5]",
        "lens_fraction = 0.024": "lens_fraction = 1.0",
        "resnet = 0.5": "resnt = 0.5",
        'method = "isotonic"': 'method = "pickled"',
    }[change]
    _with_tables(models, CALIBRATED.replace(change, replacement))
    with pytest.raises(ConfigError, match=message):
        load_manifest(models)


def test_a_member_may_not_take_a_reserved_scorer_name(models: Path) -> None:
    models.write_text(models.read_text().replace('name = "mobilenet"', 'name = "mean"', 1))
    with pytest.raises(ConfigError, match=r"\['mean'\] are reserved"):
        load_manifest(models, verify=False)


@pytest.mark.parametrize("content", [b"<html>a saved web page</html>\n", b"\x80\x04\x95pickle"])
def test_a_file_named_onnx_that_is_not_onnx_is_named(models: Path, content: bytes) -> None:
    import hashlib

    member = load_manifest(models).ensemble.members[0]
    path = models.parent / member.file
    path.write_bytes(content)  # the manifest updated to its hash: only the format is wrong
    digest = hashlib.sha256(content).hexdigest()
    models.write_text(models.read_text().replace(member.sha256, digest, 1))
    with pytest.raises(ModelMismatchError, match=rf"{member.file}: not an ONNX model"):
        load_manifest(models)


def test_a_truncated_onnx_file_is_not_a_model(models: Path) -> None:
    import hashlib

    member = load_manifest(models).ensemble.members[0]
    path = models.parent / member.file
    path.write_bytes(path.read_bytes()[:2_000])
    digest = hashlib.sha256(path.read_bytes()).hexdigest()
    models.write_text(models.read_text().replace(member.sha256, digest, 1))
    with pytest.raises(ModelMismatchError, match=r"not an ONNX model \(truncated\)"):
        load_manifest(models)
