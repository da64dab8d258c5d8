"""The networks: in-graph normalisation, shapes, probabilities, and the FLOP budget."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from lensflow.surveys import survey_profile
from lensflow.train.models import (
    ARCHITECTURES,
    MAX_FLOPS,
    AsinhStretch,
    PhotometryMLP,
    band_scales,
    build_cnn,
    count_flops,
)

LSST = survey_profile("lsst")


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_each_architecture_is_under_the_flop_budget(architecture: str) -> None:
    model = build_cnn(architecture, LSST)  # type: ignore[arg-type]
    flops = count_flops(model, (3, 64, 64))
    assert 5_000_000 < flops <= MAX_FLOPS


@pytest.mark.parametrize("architecture", sorted(ARCHITECTURES))
def test_each_architecture_gives_probabilities(architecture: str) -> None:
    torch.manual_seed(0)
    model = build_cnn(architecture, LSST)  # type: ignore[arg-type]
    model.train(False)
    images = torch.randn(3, 3, 64, 64) * 50.0
    with torch.no_grad():
        p = model(images)
        logits = model.logits(images)
    assert p.shape == (3,)
    assert bool(((p >= 0) & (p <= 1)).all())
    torch.testing.assert_close(p, torch.sigmoid(logits))


def test_flops_count_by_hand() -> None:
    model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),  # 8*16*16 outputs x 27 MACs
        torch.nn.Conv2d(8, 8, 3, padding=1, groups=8),  # depthwise: 8*16*16 x 9
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 16 * 16, 4),  # 4 x 2048
    )
    expected = 2 * (8 * 256 * 27 + 8 * 256 * 9 + 4 * 2048)
    assert count_flops(model, (3, 16, 16)) == expected


def test_attention_matmuls_are_counted() -> None:
    from lensflow.train.models import SelfAttention

    layer = SelfAttention(16, heads=4)
    tokens, dim = 10, 16
    linear = 2 * tokens * dim * 3 * dim + 2 * tokens * dim * dim
    matmuls = 2 * 2 * tokens * tokens * dim
    assert count_flops(layer, (tokens, dim)) == linear + matmuls


def test_asinh_stretch_is_asinh_of_scaled_flux() -> None:
    stretch = AsinhStretch(band_scales(LSST))
    x = torch.linspace(-1e4, 1e5, 3 * 4 * 5).reshape(1, 3, 4, 5)
    scale = torch.tensor([3 * 2.85, 3 * 3.88, 3 * 6.60]).view(1, 3, 1, 1)
    torch.testing.assert_close(stretch(x), torch.asinh(x / scale), rtol=1e-5, atol=1e-5)


def test_photometry_mlp_standardises_its_colour_features() -> None:
    torch.manual_seed(0)
    mags = torch.tensor(
        [[22.0, 21.0, 20.5, 20.2], [24.0, 22.5, 21.5, 21.0], [23.0, 22.0, 21.0, 20.0]]
    )
    model = PhotometryMLP()
    model.fit_normalisation(mags)
    features = PhotometryMLP.features(mags)
    assert features.shape == (3, 7)
    torch.testing.assert_close(features[:, 4:], mags[:, :-1] - mags[:, 1:])
    standard = (features - model.mean) / model.std
    torch.testing.assert_close(standard.mean(0), torch.zeros(7), atol=1e-5, rtol=0)
    p = model(mags)
    assert p.shape == (3,)
    assert bool(((p > 0) & (p < 1)).all())
