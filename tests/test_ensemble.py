"""The CNN ensemble: each member is its ONNX graph, the ensemble their mean or fitted
combination, p_lens from a calibration; misfits refused."""

from __future__ import annotations

import re
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from lensflow.calibration import combined_score, lens_probability
from lensflow.cutouts import StoreInfo
from lensflow.ensemble import check_ensemble_inputs, ensemble_score, score_cutouts
from lensflow.errors import ModelMismatchError
from lensflow.registry import (
    EnsembleCalibration,
    EnsembleCombination,
    ModelManifest,
    load_manifest,
)
from lensflow.testing import onnx_reference


def _with_tables(
    manifest: ModelManifest,
    *,
    combination: EnsembleCombination | None = None,
    calibration: EnsembleCalibration | None = None,
) -> ModelManifest:
    """The manifest with its ensemble's combination and calibration set (None: none)."""
    ensemble = manifest.ensemble.model_copy(
        update={"combination": combination, "calibration": calibration}
    )
    return manifest.model_copy(update={"ensemble": ensemble})


@pytest.fixture(scope="module")
def plain_manifest(shipped_manifest: ModelManifest) -> ModelManifest:
    """The shipped models without a fitted combination or calibration: an old manifest."""
    return _with_tables(shipped_manifest)


def _store(manifest: ModelManifest, **changes: object) -> StoreInfo:
    """The attributes of a cutout store that fits the manifest's first member, then changes."""
    member = manifest.ensemble.members[0]
    info = StoreInfo(
        path=Path("survey/cutouts.zarr"),
        bands=member.bands,
        pixel_scale_arcsec=member.pixel_scale_arcsec,
        units=member.units,
        zero_point_ab=31.4,
        psf_fwhm_arcsec=dict.fromkeys(member.bands, 0.7),
        cutout_size=member.size,
    )
    return replace(info, **changes)  # type: ignore[arg-type]


def _images(manifest: ModelManifest, n: int, seed: int) -> np.ndarray:
    member = manifest.ensemble.members[0]
    shape = (n, len(member.bands), member.size, member.size)
    return np.random.default_rng(seed).lognormal(2.0, 1.5, size=shape).astype(np.float32)


def test_members_are_their_graphs_and_the_ensemble_their_mean(
    plain_manifest: ModelManifest,
) -> None:
    images = _images(plain_manifest, 7, seed=0)
    scores = score_cutouts(images, manifest=plain_manifest, batch=3)
    members = [m.name for m in plain_manifest.ensemble.members]
    assert list(scores) == [*members, "ensemble"]
    for member in plain_manifest.ensemble.members:
        expected = onnx_reference(plain_manifest.path_of(member.file), images)
        assert scores[member.name].dtype == np.float32 and scores[member.name].shape == (7,)
        np.testing.assert_allclose(scores[member.name], expected, rtol=1e-4, atol=1e-6)
    mean = np.mean([scores[m] for m in members], axis=0)
    np.testing.assert_allclose(scores["ensemble"], mean, rtol=1e-6)
    assert len(set(scores["ensemble"].tolist())) > 1, "different cutouts, different scores"


def test_the_batch_size_does_not_change_a_score(shipped_manifest: ModelManifest) -> None:
    images = _images(shipped_manifest, 5, seed=1)
    one = score_cutouts(images, manifest=shipped_manifest, batch=1)
    many = score_cutouts(images, manifest=shipped_manifest, batch=64)
    for name, values in one.items():
        np.testing.assert_allclose(many[name], values, rtol=1e-5, atol=1e-7)


def test_no_cutouts_give_empty_scores(plain_manifest: ModelManifest) -> None:
    scores = score_cutouts(_images(plain_manifest, 0, seed=2), manifest=plain_manifest)
    assert set(scores) == {m.name for m in plain_manifest.ensemble.members} | {"ensemble"}
    assert all(v.shape == (0,) and v.dtype == np.float32 for v in scores.values())


def test_a_fitted_combination_is_the_ensemble_score_and_a_calibration_adds_p_lens(
    plain_manifest: ModelManifest,
) -> None:
    names = [m.name for m in plain_manifest.ensemble.members]
    combination = EnsembleCombination(weights={n: 1.0 + k for k, n in enumerate(names)}, bias=-2.0)
    calibration = EnsembleCalibration(
        scores=(0.0, 0.3, 0.7, 1.0), probabilities=(0.001, 0.01, 0.5, 0.99), lens_fraction=0.2
    )
    fitted = _with_tables(plain_manifest, combination=combination, calibration=calibration)
    images = _images(plain_manifest, 9, seed=3)
    old = score_cutouts(images, manifest=plain_manifest)
    new = score_cutouts(images, manifest=fitted, prior_lens_rate=1e-3)
    members = {n: old[n] for n in names}
    assert list(new) == [*names, "ensemble", "p_lens"]
    for name in names:
        np.testing.assert_array_equal(new[name], old[name])
    np.testing.assert_allclose(new["ensemble"], combined_score(members, combination), rtol=1e-6)
    assert not np.allclose(new["ensemble"], old["ensemble"])
    expected = lens_probability(new["ensemble"], calibration, prior=1e-3)
    np.testing.assert_array_equal(new["p_lens"], expected)
    assert new["p_lens"].dtype == np.float32 and ((new["p_lens"] >= 0) & (new["p_lens"] <= 1)).all()
    # without a combination, ensemble_score is the mean, whatever else is in the mapping
    mean = ensemble_score({**members, "extra": members[names[0]]}, models=plain_manifest.ensemble)
    np.testing.assert_allclose(mean, np.mean(list(members.values()), axis=0), rtol=1e-6)


def test_a_store_that_fits_is_accepted(shipped_manifest: ModelManifest) -> None:
    check_ensemble_inputs(shipped_manifest, _store(shipped_manifest))


@pytest.mark.parametrize(
    ("changes", "found"),
    [
        ({"bands": ("g", "r")}, r"has bands \['g', 'r'\]"),
        ({"bands": ("i", "r", "g")}, r"has bands \['i', 'r', 'g'\]"),
        ({"cutout_size": 48}, "48x48 px"),
        ({"pixel_scale_arcsec": 0.25}, '0.25"/px'),
        ({"units": "adu"}, "in adu$"),
    ],
)
def test_a_store_that_does_not_fit_is_refused_with_both_sides(
    shipped_manifest: ModelManifest, changes: dict[str, object], found: str
) -> None:
    member = shipped_manifest.ensemble.members[0]
    with pytest.raises(ModelMismatchError) as caught:
        check_ensemble_inputs(shipped_manifest, _store(shipped_manifest, **changes))
    message = str(caught.value)
    assert f"model {member.name!r} ({member.file}) expects bands {list(member.bands)}" in message
    assert "survey/cutouts.zarr" in message
    assert re.search(found, message), message


def test_a_graph_whose_input_differs_from_its_manifest_entry_is_refused(
    shipped_manifest: ModelManifest, tmp_path: Path
) -> None:
    """A manifest claiming 32x32 cutouts for graphs built for 64x64: the graph is checked too."""
    folder = Path(shutil.copytree(shipped_manifest.folder, tmp_path / "models"))
    manifest_file = folder / "manifest.toml"
    size = shipped_manifest.ensemble.members[0].size
    manifest_file.write_text(manifest_file.read_text().replace(f"size = {size}\n", "size = 32\n"))
    manifest = load_manifest(manifest_file)
    with pytest.raises(
        ModelMismatchError, match=rf"graph input 'images' has shape \['batch', 3, {size}, {size}\]"
    ) as caught:
        check_ensemble_inputs(manifest, _store(manifest, cutout_size=32))
    assert "gives (N, 3, 32, 32)" in str(caught.value)
