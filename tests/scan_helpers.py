"""Helpers the scan tests share: configs pointed at a mock sky and a private output folder."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from lensflow.config import ScanConfig
from lensflow.simulate.mock_sky import MockSky


def sky_config(sky: MockSky, output: Path, **changes: Any) -> ScanConfig:
    """The mock sky's own scan config, writing to `output`, with sections replaced by changes."""
    config = ScanConfig.from_toml(sky.config)
    update: dict[str, Any] = {"output": config.output.model_copy(update={"path": output})}
    for section, values in changes.items():
        update[section] = getattr(config, section).model_copy(update=values)
    return config.model_copy(update=update)


def copy_sky(sky: MockSky, target: Path) -> MockSky:
    """A private copy of a mock sky (catalog, cutouts, truth, config) to damage."""
    shutil.copytree(sky.root, target, ignore=shutil.ignore_patterns("scan"))
    return sky._replace(
        root=target,
        catalog=target / "catalog",
        cutouts=target / "cutouts.zarr",
        truth=target / "truth.parquet",
        config=target / "scan.toml",
    )
