"""The models manifest: files pinned by sha256, ONNX only, confined to the manifest's folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from lensflow.errors import ConfigError, ModelMismatchError
from lensflow.registry import default_manifest_path, load_manifest


@pytest.fixture
def models(tmp_path: Path) -> Path:
    folder = tmp_path / "models"
    shutil.copytree(default_manifest_path().parent, folder)
    return folder / "manifest.toml"


def test_shipped_manifest_verifies() -> None:
    manifest = load_manifest()
    assert len(manifest.ensemble.members) >= 2
    assert manifest.photometry.features == ("mag_g", "mag_r", "mag_i", "mag_z")


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
