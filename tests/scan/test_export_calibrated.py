"""A scan with a calibrated manifest: candidates and their export carry p_lens at the prior."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from distributed import Client

from lensflow.calibration import combined_score, lens_probability
from lensflow.errors import ScanStateError
from lensflow.registry import (
    EnsembleCalibration,
    EnsembleCombination,
    default_manifest_path,
    load_manifest,
)
from lensflow.scan import run_scan
from lensflow.scan.export import export_scan
from lensflow.scan.state import FINGERPRINT_FILE, read_markers
from lensflow.simulate.mock_sky import MockSky
from lensflow.testing import sky_config
from lensflow.train.calibrate import write_ensemble_tables

PRIOR = 1e-3


@pytest.fixture(scope="module")
def calibrated_models(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the shipped models with a combination and a calibration written in."""
    folder = tmp_path_factory.mktemp("calibrated") / "models"
    shutil.copytree(default_manifest_path().parent, folder)
    manifest = folder / "manifest.toml"
    names = [m.name for m in load_manifest(manifest).ensemble.members]
    write_ensemble_tables(
        manifest,
        combination=EnsembleCombination(
            weights={n: 0.5 + 0.25 * k for k, n in enumerate(names)}, bias=-1.0
        ),
        calibration=EnsembleCalibration(
            scores=(0.0, 0.2, 0.5, 0.8, 1.0),
            probabilities=(0.0005, 0.002, 0.05, 0.6, 0.95),
            lens_fraction=0.05,
        ),
    )
    return manifest


@pytest.fixture(scope="module")
def calibrated_scan(
    mock_sky: MockSky,
    dask_client: Client,
    calibrated_models: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    output = tmp_path_factory.mktemp("scan-calibrated") / "scan"
    config = sky_config(
        mock_sky,
        output,
        models={"manifest": calibrated_models},
        ensemble={"prior_lens_rate": PRIOR},
    )
    outcome = run_scan(config, client=dask_client)
    assert outcome.failed == 0
    return output


def test_candidates_get_p_lens_monotone_in_the_ensemble_score(
    calibrated_scan: Path, calibrated_models: Path, tmp_path: Path
) -> None:
    manifest = load_manifest(calibrated_models)
    assert manifest.ensemble.combination is not None
    assert manifest.ensemble.calibration is not None
    rows, _ = export_scan(calibrated_scan, tmp_path / "all.parquet", fmt="parquet", min_score=0.0)
    table = pq.read_table(tmp_path / "all.parquet")
    assert rows == table.num_rows > 0
    score = table["ensemble_score"].to_numpy()
    p_lens = table["p_lens"].to_numpy()
    assert np.all((p_lens >= 0) & (p_lens <= 1)) and len(set(p_lens.tolist())) > 1
    assert np.all(np.diff(p_lens) <= 0), "ranked by ensemble_score, p_lens never rises"
    members = {m.name: table[f"score_{m.name}"].to_numpy() for m in manifest.ensemble.members}
    np.testing.assert_allclose(score, combined_score(members, manifest.ensemble.combination))
    expected = lens_probability(score, manifest.ensemble.calibration, prior=PRIOR)
    np.testing.assert_allclose(p_lens, expected, rtol=1e-6)
    # every partition file has the column, the empty ones too
    for marker in read_markers(calibrated_scan):
        assert "p_lens" in pq.read_schema(calibrated_scan / str(marker.output)).names
    assert ",combination@" in table["model_versions"][0].as_py()


def test_the_prior_and_the_tables_are_in_the_fingerprint(
    calibrated_scan: Path,
    scanned: Path,
    mock_sky: MockSky,
    calibrated_models: Path,
    dask_client: Client,
) -> None:
    parts = json.loads((calibrated_scan / FINGERPRINT_FILE).read_text())["parts"]
    assert parts["prior_lens_rate"] == PRIOR
    assert {"ensemble_combination", "ensemble_calibration"} <= set(parts)
    old = json.loads((scanned / FINGERPRINT_FILE).read_text())["parts"]
    assert not {"prior_lens_rate", "ensemble_combination", "ensemble_calibration"} & set(old)
    marker = next(iter(read_markers(scanned)))
    assert "p_lens" not in pq.read_schema(scanned / str(marker.output)).names
    changed = sky_config(
        mock_sky,
        calibrated_scan,
        models={"manifest": calibrated_models},
        ensemble={"prior_lens_rate": 1e-4},
    )
    with pytest.raises(ScanStateError, match=r"prior_lens_rate: was 0.001, now 0.0001"):
        run_scan(changed, client=dask_client)
