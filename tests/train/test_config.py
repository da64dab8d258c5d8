"""Training configs: TOML read relative to its file, misspelt keys named, evaluation sets."""

from __future__ import annotations

from pathlib import Path

import pytest

from lensflow.errors import ConfigError
from lensflow.train.config import CutoutSet, PhotometryConfig, TrainConfig


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


def test_a_sets_population_is_in_its_spec_unless_classic() -> None:
    assert "population" not in CutoutSet().spec()
    assert CutoutSet(population="wide").spec()["population"] == "wide"
    with pytest.raises(ValueError, match="population"):
        CutoutSet(population="broad")  # type: ignore[arg-type]


def test_the_survey_is_a_name_or_a_file_beside_the_config(tmp_path: Path) -> None:
    folder = tmp_path / "configs"
    folder.mkdir()
    (folder / "a.toml").write_text('survey = "hsc"\n')
    assert PhotometryConfig.from_toml(folder / "a.toml").survey == "hsc"
    assert PhotometryConfig().survey == "lsst"
    (folder / "b.toml").write_text('survey = "profiles/mine.toml"\n')
    assert PhotometryConfig.from_toml(folder / "b.toml").survey == str(
        folder / "profiles" / "mine.toml"
    )
    config = PhotometryConfig().with_survey("legacy")
    assert config.survey == "legacy" and config.with_survey(None) == config
    with pytest.raises(ConfigError, match="unknown survey 'euclid'"):
        PhotometryConfig().with_survey("euclid")
