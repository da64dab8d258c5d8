"""The scan config: validated, unknown keys refused by name, paths relative to the file."""

from __future__ import annotations

from pathlib import Path

import pytest

from lensflow.config import PlanConfig, ScanConfig
from lensflow.errors import ConfigError

GOOD = """
[catalog]
path = "sky/catalog"
[catalog.columns]
id = "objID"
ra = "raStack"
dec = "decStack"
mag_g = "gKronMag"
mag_r = "rKronMag"
mag_i = "iKronMag"
mag_z = "zKronMag"
[cuts]
expression = "rKronMag < 21.5 and rPSFMag - rKronMag > 0.05 and not isnan(gKronMag)"
[cutouts]
path = "sky/cutouts.zarr"
[ensemble]
threshold = 0.7
"""


def test_paths_are_relative_to_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "conf").mkdir()
    path = tmp_path / "conf" / "scan.toml"
    path.write_text(GOOD)
    config = ScanConfig.from_toml(path)
    assert config.catalog.path == (tmp_path / "conf" / "sky" / "catalog").resolve()
    assert config.cutouts.path == (tmp_path / "conf" / "sky" / "cutouts.zarr").resolve()
    assert config.ensemble.threshold == 0.7
    assert config.photometry.threshold is None


@pytest.mark.parametrize(
    ("text", "named"),
    [
        (GOOD.replace("[cuts]", "[cuts]\nexpresion = 'true'"), "cuts.expresion"),
        (GOOD.replace("mag_z", "mag_y"), "mag_y"),
        (GOOD + "\n[clustr]\nn_workers = 2\n", "clustr"),
        (GOOD.replace("threshold = 0.7", "threshold = 1.7"), "ensemble.threshold"),
        (GOOD.replace('id = "objID"\n', ""), "catalog.columns.id"),
    ],
)
def test_bad_keys_and_values_are_named(tmp_path: Path, text: str, named: str) -> None:
    path = tmp_path / "scan.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=named.replace(".", r"\.")):
        ScanConfig.from_toml(path)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no scan config here"):
        ScanConfig.from_toml(tmp_path / "absent.toml")
    (tmp_path / "bad.toml").write_text("[catalog\npath=")
    with pytest.raises(ConfigError, match="not valid TOML"):
        ScanConfig.from_toml(tmp_path / "bad.toml")


def test_plan_needs_only_catalog_and_cuts(tmp_path: Path) -> None:
    path = tmp_path / "plan.toml"
    path.write_text(GOOD.split("[cutouts]")[0])
    config = PlanConfig.from_toml(path)
    assert config.catalog.columns.ra == "raStack"
    with pytest.raises(ConfigError):
        ScanConfig.from_toml(path)
