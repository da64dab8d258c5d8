"""Domain randomisation: the blur's width and flux, the added noise's level, the flux scale."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from lensflow.train.options import RandomiseConfig
from lensflow.train.randomise import Randomisation, gaussian_blur, randomise

SKY = (2.0, 3.0, 6.0)


def _settings(**values: object) -> Randomisation:
    made = Randomisation.of(RandomiseConfig.model_validate(values), SKY)
    assert made is not None
    return made


def _generator(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_no_randomisation_is_asked_for_by_default() -> None:
    assert Randomisation.of(RandomiseConfig(), SKY) is None


def test_a_blurred_point_keeps_its_flux_and_has_the_kernels_width() -> None:
    images = torch.zeros(2, 3, 41, 41)
    images[:, :, 20, 20] = 100.0
    sigma = torch.tensor([[0.8, 1.0, 1.5], [2.0, 0.0, 1.2]])
    blurred = gaussian_blur(images, sigma)
    torch.testing.assert_close(blurred.sum(dim=(2, 3)), torch.full((2, 3), 100.0))
    x = torch.arange(41.0) - 20.0
    for axis in (2, 3):  # second moments along x and y: sigma^2, 0 for sigma 0
        variance = (blurred.sum(dim=axis) * x**2).sum(dim=-1) / 100.0
        torch.testing.assert_close(variance, sigma**2, atol=1e-4, rtol=0.01)
    torch.testing.assert_close(blurred[1, 1], images[1, 1])  # sigma 0: the identity


def test_added_noise_has_the_asked_fraction_of_the_sky_sigma_per_band() -> None:
    images = torch.zeros(64, 3, 32, 32)
    out = randomise(images, _generator(), settings=_settings(noise_fraction=(0.5, 0.5)))
    measured = out.std(dim=(0, 2, 3))
    torch.testing.assert_close(measured, 0.5 * torch.tensor(SKY), rtol=0.02, atol=0.0)


def test_the_flux_scale_is_one_per_cutout_within_the_depth_range() -> None:
    images = torch.ones(200, 3, 8, 8)
    out = randomise(images, _generator(), settings=_settings(depth_mag=0.3))
    scale = out[:, :, 0, 0]
    assert torch.allclose(scale, scale[:, :1].expand_as(scale))  # colours kept
    lo, hi = 10 ** (-0.4 * 0.3), 10 ** (0.4 * 0.3)
    assert float(scale.min()) >= lo - 1e-6
    assert float(scale.max()) <= hi + 1e-6
    assert float(scale.max() - scale.min()) > 0.5 * (hi - lo)
    torch.testing.assert_close(out, images * scale[:, :, None, None])


def test_only_the_chosen_fraction_is_randomised_and_draws_repeat_with_the_seed() -> None:
    images = torch.randn(400, 3, 16, 16)
    settings = _settings(psf_sigma_px=(0.5, 1.0), noise_fraction=(0.1, 0.3), probability=0.25)
    out = randomise(images, _generator(3), settings=settings)
    changed = (out != images).flatten(1).any(dim=1).float().mean()
    assert 0.15 < float(changed) < 0.35
    torch.testing.assert_close(out, randomise(images, _generator(3), settings=settings))
    assert not torch.equal(out, randomise(images, _generator(4), settings=settings))


def test_a_mismatch_of_bands_and_sky_sigmas_is_refused() -> None:
    with pytest.raises(ValueError, match="3 sky sigmas for 4 bands"):
        randomise(torch.zeros(2, 4, 8, 8), _generator(), settings=_settings(depth_mag=0.1))
