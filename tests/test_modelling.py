"""The shipped modelling networks: they recover theta_E on freshly simulated lenses with honest
uncertainties, combine as a mixture, and refuse bad input with a LensflowError."""

from __future__ import annotations

import shutil
import tomllib
from pathlib import Path

import numpy as np
import pytest
import tomli_w

from lensflow.cutouts import StoreInfo
from lensflow.errors import ConfigError, LensflowError, ModelMismatchError
from lensflow.evaluate.modelling import Z68, HeldOutLenses, load_lenses
from lensflow.modelling import (
    ERR_SUFFIX,
    ModellingModels,
    check_modelling_inputs,
    combine,
    load_modelling,
    model_lenses,
    modelling_columns,
    predict_lenses,
    scan_modelling,
)
from lensflow.registry import default_manifest_path, load_manifest
from lensflow.simulate import make_training_set


@pytest.fixture(scope="module")
def shipped() -> ModellingModels:
    return load_modelling()


@pytest.fixture(scope="module")
def fresh_lenses(
    tmp_path_factory: pytest.TempPathFactory, shipped: ModellingModels
) -> HeldOutLenses:
    """64 wide-population lenses of a seed no training or held-out set uses."""
    folder = tmp_path_factory.mktemp("lenses")
    made = make_training_set(
        folder, n_lenses=64, n_non_lenses=0, seed=97_531, population="wide", progress=False
    )
    return load_lenses(made.store, made.labels, columns=[p.truth for p in shipped.parameters])


def test_the_shipped_manifest_still_loads_with_its_modelling_table(
    shipped: ModellingModels,
) -> None:
    manifest = load_manifest()
    assert manifest.modelling["parameters"][0]["name"] == "theta_E"
    assert len(shipped.members) >= 3
    assert [p.unit for p in shipped.parameters][:1] == ["arcsec"]


def test_theta_e_is_recovered_on_fresh_lenses(
    shipped: ModellingModels, fresh_lenses: HeldOutLenses
) -> None:
    result = predict_lenses(fresh_lenses.images, modelling=shipped)
    k = shipped.names.index("theta_E")
    truth = fresh_lenses.truth[:, k]
    residual = result.mean[:, k] - truth
    prior = 1.4826 * np.median(np.abs(truth - np.median(truth)))
    scatter = 1.4826 * np.median(np.abs(residual - np.median(residual)))
    assert scatter < 0.5 * prior, (scatter, prior)  # well below: at most half the prior
    coverage = np.mean(np.abs(residual) <= Z68 * result.sigma[:, k])
    assert 0.45 <= coverage <= 0.9, coverage
    assert np.all(result.sigma > 0) and np.all(np.isfinite(result.mean))
    assert np.all(result.epistemic >= 0) and np.any(result.epistemic > 0)


def test_model_lenses_gives_each_parameter_and_its_error(
    shipped: ModellingModels, fresh_lenses: HeldOutLenses
) -> None:
    images = fresh_lenses.images[:5]
    table = model_lenses(images, modelling=shipped)
    expected = [c for n in shipped.names for c in (n, n + ERR_SUFFIX)]
    assert table.column_names == expected
    assert table.column_names[:4] == ["theta_E", "theta_E_err", "e1", "e1_err"]
    assert table.num_rows == 5
    again = predict_lenses(images, modelling=shipped)
    assert np.allclose(table["theta_E"].to_numpy(), again.column("theta_E")[0])
    assert table.schema.field("theta_E").metadata[b"unit"] == b"arcsec"


def test_the_mixture_adds_the_networks_spread() -> None:
    means = np.array([[[1.0, 0.0]], [[3.0, 0.0]]])  # (K=2, N=1, P=2)
    variances = np.array([[[0.5, 1.0]], [[1.5, 1.0]]])
    result = combine(means, variances, names=("a", "b"), scales=np.array([1.0, 2.0]))
    assert result.mean.tolist() == [[2.0, 0.0]]
    assert result.aleatoric.tolist() == [[1.0, 1.0]]
    assert result.epistemic.tolist() == [[1.0, 0.0]]
    assert np.allclose(result.sigma, [[np.sqrt(2.0), 2.0]])


def test_a_cutout_with_non_finite_pixels_gets_nan(
    shipped: ModellingModels, fresh_lenses: HeldOutLenses
) -> None:
    images = fresh_lenses.images[:3].copy()
    images[1, 0, 5, 5] = np.nan
    result = predict_lenses(images, modelling=shipped)
    assert np.isnan(result.mean[1]).all() and np.isnan(result.sigma[1]).all()
    assert np.isfinite(result.mean[[0, 2]]).all()


def test_the_wrong_band_count_is_refused(shipped: ModellingModels) -> None:
    with pytest.raises(ModelMismatchError, match=r"take \(N, 3, 64, 64\)"):
        predict_lenses(np.zeros((2, 4, 64, 64), np.float32), modelling=shipped)
    with pytest.raises(ModelMismatchError):
        model_lenses(np.zeros((3, 64, 64), np.float32), modelling=shipped)


def test_a_store_of_other_bands_is_refused(shipped: ModellingModels, tmp_path: Path) -> None:
    store = StoreInfo(tmp_path, ("g", "r", "z"), 0.2, "nJy", 31.4, {}, 64)
    with pytest.raises(ModelMismatchError, match="expect bands"):
        check_modelling_inputs(shipped, store)
    check_modelling_inputs(shipped, StoreInfo(tmp_path, ("g", "r", "i"), 0.2, "nJy", 31.4, {}, 64))


def _copy_manifest(folder: Path) -> tuple[Path, dict[str, object]]:
    """The shipped manifest and modelling files copied into folder; (path, parsed TOML)."""
    source = default_manifest_path()
    raw = tomllib.loads(source.read_text())
    for member in raw["modelling"]["members"]:
        target = folder / member["file"]
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source.parent / member["file"], target)
    return folder / "manifest.toml", raw


def test_a_manifest_without_a_modelling_table_is_refused(tmp_path: Path) -> None:
    path, raw = _copy_manifest(tmp_path)
    del raw["modelling"]
    path.write_text(tomli_w.dumps(raw))
    with pytest.raises(ConfigError, match=r"no \[modelling\] table; train the networks"):
        load_modelling(path)


def test_a_wrong_sha256_is_refused(tmp_path: Path) -> None:
    path, raw = _copy_manifest(tmp_path)
    members = raw["modelling"]["members"]  # type: ignore[index]
    members[1]["sha256"] = "0" * 64
    path.write_text(tomli_w.dumps(raw))
    with pytest.raises(ModelMismatchError, match="does not match the manifest"):
        load_modelling(path)


def test_a_file_outside_the_manifest_folder_is_refused(tmp_path: Path) -> None:
    path, raw = _copy_manifest(tmp_path / "inner")
    members = raw["modelling"]["members"]  # type: ignore[index]
    members[0]["file"] = "../" + str(members[0]["file"])
    path.write_text(tomli_w.dumps(raw))
    with pytest.raises(ModelMismatchError, match="must lie inside"):
        load_modelling(path)


def test_a_bad_table_names_the_key(tmp_path: Path) -> None:
    path, raw = _copy_manifest(tmp_path)
    raw["modelling"]["sigma_scale"] = {"theta_X": 1.0}  # type: ignore[index]
    path.write_text(tomli_w.dumps(raw))
    with pytest.raises(LensflowError, match="theta_X"):
        load_modelling(path)


def test_a_scan_runs_the_networks_that_fit_its_cutouts(
    shipped: ModellingModels, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fits = StoreInfo(tmp_path, ("g", "r", "i"), 0.2, "nJy", 31.4, {}, 64)
    other = StoreInfo(tmp_path, ("g", "r", "i"), 0.168, "nJy", 31.4, {}, 64)
    assert scan_modelling(None, enabled=None, store=fits) == shipped
    assert scan_modelling(None, enabled=True, store=fits) == shipped
    assert scan_modelling(None, enabled=False, store=fits) is None
    assert scan_modelling(None, enabled=None, store=other) is None
    assert "runs without them" in caplog.text
    with pytest.raises(ConfigError, match=r"enabled = true, but the modelling networks expect"):
        scan_modelling(None, enabled=True, store=other)
    assert modelling_columns(shipped)[:4] == ("theta_E", "theta_E_err", "e1", "e1_err")
    assert len(modelling_columns(shipped)) == 2 * len(shipped.parameters)


def test_a_scan_without_a_modelling_table_runs_without_unless_asked(tmp_path: Path) -> None:
    path, raw = _copy_manifest(tmp_path)
    del raw["modelling"]
    path.write_text(tomli_w.dumps(raw))
    store = StoreInfo(tmp_path, ("g", "r", "i"), 0.2, "nJy", 31.4, {}, 64)
    assert scan_modelling(path, enabled=None, store=store) is None
    with pytest.raises(ConfigError, match=r"no \[modelling\] table"):
        scan_modelling(path, enabled=True, store=store)
