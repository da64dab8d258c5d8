"""The modelling training: flips and transposes turn the parameters with the cutout, the smoke
config trains, exports ONNX that matches torch, calibrates and evaluates, and resumes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from lensflow.errors import ConfigError, TrainingError
from lensflow.evaluate.modelling import load_lenses
from lensflow.modelling import load_modelling
from lensflow.simulate.lensing import SIE, ExternalShear, LensModel
from lensflow.simulate.render import pixel_centres
from lensflow.surveys import survey_profile
from lensflow.train.modelling import build_network, fit_network, network_tag, train_modelling
from lensflow.train.modelling_config import PARAMETERS, ModellingConfig
from lensflow.train.modelling_data import split_rows
from lensflow.train.modelling_net import flip_transpose, gaussian_nll

SMOKE = Path(__file__).resolve().parents[2] / "configs" / "train" / "modelling-smoke.toml"


def lens_maps(truth: np.ndarray, n: int = 32, scale: float = 0.2) -> np.ndarray:
    """det A, a lensed round Gaussian source and kappa of SIE + shear truth (P,): (3, n, n)."""
    theta_e, e1, e2, cx, cy, g1, g2, sx, sy = (float(v) for v in truth)
    lens = LensModel((SIE(theta_e, e1, e2, cx, cy), ExternalShear(g1, g2, cx, cy)))
    c = pixel_centres(n, scale)
    x, y = np.meshgrid(c, c)
    bx, by = lens.ray_shoot(x, y)
    source = np.exp(-((bx - sx) ** 2 + (by - sy) ** 2) / (2 * 0.15**2))
    return np.stack([lens.det_a(x, y), source, lens.convergence(x, y)]).astype(np.float32)


def test_flips_and_transposes_turn_the_lens_with_the_cutout() -> None:
    """Each turned cutout is the one its turned parameters would render, for all 8 symmetries."""
    assert [p.name for p in PARAMETERS][:3] == ["theta_E", "e1", "e2"]
    truth = np.array([1.1, 0.2, -0.1, 0.05, -0.08, 0.03, 0.06, 0.3, -0.2])
    images = torch.from_numpy(np.stack([lens_maps(truth)] * 32))
    t = torch.from_numpy(np.stack([truth] * 32)).float()
    roles = [p.role for p in PARAMETERS]
    out, turned = flip_transpose(images, t, roles, torch.Generator().manual_seed(3))
    seen = {tuple(np.sign(row[[1, 2, 3, 7]]).tolist()) for row in turned.numpy()}
    assert len(seen) == 8  # every symmetry drawn: the signs of e1, e2, x and source x differ
    for k in range(32):
        expected = lens_maps(turned[k].double().numpy())
        assert np.abs(out[k].numpy() - expected).max() < 1e-5
    assert np.allclose(turned[:, 0], 1.1)  # theta_E does not turn


def test_the_loss_is_the_gaussian_nll() -> None:
    survey = survey_profile("lsst")
    config = ModellingConfig.from_toml(SMOKE)
    model = build_network(config, survey)
    model.fit_standardisation(np.random.default_rng(0).normal(1.0, 0.3, size=(50, 9)))
    x = torch.zeros((4, 3, 64, 64))
    truth = torch.ones((4, 9))
    z_mean, z_log_var = model.standardised(x)
    z = (truth - model.loc) / model.scale
    by_hand = 0.5 * (z_log_var + (z - z_mean) ** 2 / torch.exp(z_log_var))
    loss = float(gaussian_nll(model, x, truth).detach())
    assert loss == pytest.approx(float(by_hand.detach().mean()), rel=1e-6)
    out = model(x).detach()
    assert out.shape == (4, 18)  # means, then log-variances in the parameters' units
    assert torch.allclose(out[:, :9], model.loc + model.scale * z_mean.detach(), atol=1e-6)


def test_sets_sharing_a_seed_are_refused(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        SMOKE.read_text().replace("n_lenses = 12\nseed = 1302", "n_lenses = 12\nseed = 1301")
    )
    with pytest.raises(ConfigError, match="share a simulator and seed"):
        ModellingConfig.from_toml(config)


def test_the_split_holds_a_fraction() -> None:
    fit, val = split_rows(100, fraction=0.1, seed=3)
    assert val.size == 10 and fit.size == 90
    assert not set(fit) & set(val)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory: pytest.TempPathFactory) -> tuple[ModellingConfig, Path]:
    """The smoke config run into a temporary folder: (config, manifest)."""
    work = tmp_path_factory.mktemp("modelling")
    config = ModellingConfig.from_toml(SMOKE).model_copy(
        update={"work": work, "output": work / "models", "reports": work / "reports"}
    )
    return config, train_modelling(config)


def test_the_smoke_config_trains_exports_and_evaluates(
    smoke: tuple[ModellingConfig, Path],
) -> None:
    config, manifest = smoke
    modelling = load_modelling(manifest)
    assert [m.name for m in modelling.members] == ["modelling_0", "modelling_1"]
    assert modelling.names == tuple(p.name for p in PARAMETERS)
    assert set(modelling.sigma_scale) == set(modelling.names)
    assert all(m.flops is not None and m.flops < 100_000_000 for m in modelling.members)
    assert modelling.metrics["test"]["n_lenses"] == 12
    assert modelling.training["n_fit"] + modelling.training["n_val"] == 48
    reports = config.report_folder
    assert "| theta_E | arcsec |" in (reports / "modelling.md").read_text()
    assert (reports / "modelling_test.png").stat().st_size > 10_000


def test_the_exported_networks_match_torch(smoke: tuple[ModellingConfig, Path]) -> None:
    config, manifest = smoke
    survey = survey_profile(config.survey)
    modelling = load_modelling(manifest)
    store = config.work / "test-lenses" / "cutouts.zarr"
    lenses = load_lenses(store, store.parent / "labels.parquet", columns=["theta_e"])
    for k, member in enumerate(modelling.members):
        state = torch.load(config.checkpoint_folder / f"{member.name}.pt", weights_only=True)
        model = build_network(config, survey)
        model.load_state_dict(state["best_model"])
        model.train(False)
        with torch.no_grad():
            expected = model(torch.from_numpy(lenses.images)).numpy()
        session = ort.InferenceSession(str(modelling.path_of(member.file)))
        (found,) = session.run(None, {"images": lenses.images})
        assert found.shape == (12, 18)
        assert np.allclose(found, expected, rtol=1e-4, atol=1e-4), k


def test_a_rerun_resumes_finished_networks(smoke: tuple[ModellingConfig, Path]) -> None:
    config, manifest = smoke
    before = load_modelling(manifest)
    checkpoint = config.checkpoint_folder / "modelling_0.pt"
    stamp = checkpoint.stat().st_mtime_ns
    again = load_modelling(train_modelling(config))
    assert checkpoint.stat().st_mtime_ns == stamp  # not retrained
    assert [m.sha256 for m in again.members] == [m.sha256 for m in before.members]


def test_a_checkpoint_of_another_config_is_refused(smoke: tuple[ModellingConfig, Path]) -> None:
    config, _ = smoke
    survey = survey_profile(config.survey)
    store = config.work / "test-lenses" / "cutouts.zarr"
    lenses = load_lenses(
        store, store.parent / "labels.parquet", columns=[p.truth for p in PARAMETERS]
    )
    other = config.model_copy(update={"lr": 1e-4})
    assert network_tag(other, 0, survey) != network_tag(config, 0, survey)
    with pytest.raises(TrainingError, match="checkpoint of another config"):
        fit_network(
            build_network(other, survey),
            lenses,
            lenses,
            config=other,
            seed=0,
            checkpoint=config.checkpoint_folder / "modelling_0.pt",
            tag=network_tag(other, 0, survey),
        )


def test_both_simulators_share_the_truth_conventions() -> None:
    """The independent set's truth columns mean what lensflow's do: its lenstronomy EPL
    (slope 2) + SHEAR from the same theta_E, e1, e2, centre, gamma_ext1, gamma_ext2 puts a
    source's images where lensflow's SIE + external shear does."""
    from lensflow.independent.population import Deflector
    from lensflow.independent.sources import image_positions

    rng = np.random.default_rng(4)
    for _ in range(6):
        theta_e = rng.uniform(0.8, 2.0)
        e1, e2, cx, cy = rng.uniform(-0.2, 0.2, 2).tolist() + rng.uniform(-0.1, 0.1, 2).tolist()
        g1, g2 = rng.normal(0.0, 0.05, 2).tolist()
        sx, sy = cx + rng.uniform(-0.3, 0.3), cy + rng.uniform(-0.3, 0.3)
        theirs = np.column_stack(
            image_positions(Deflector(theta_e, 2.0, e1, e2, cx, cy, g1, g2), sx, sy)
        )
        lens = LensModel((SIE(theta_e, e1, e2, cx, cy), ExternalShear(g1, g2, cx, cy)))
        ours = np.column_stack(lens.image_positions(sx, sy)[:2])
        assert len(ours) == len(theirs) >= 2
        for point in theirs:
            assert np.min(np.hypot(*(ours - point).T)) < 1e-6
