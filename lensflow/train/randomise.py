"""Domain randomisation of training batches: PSF blur, extra noise and flux scale, in torch.

Applied by the training loop to each batch after the rotations and flips (see
lensflow.train.options for the ranges and why). Every draw comes from the epoch's generator, on
the images' device, without host synchronisation, so a resumed epoch is the same epoch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor
from torch.nn import functional

from lensflow.train.options import RandomiseConfig

SIGMA_FLOOR = 1e-3
"""Blur sigmas (px) are clipped up to this: a kernel this narrow is the identity to 1e-100."""


@dataclass(frozen=True)
class Randomisation:
    """A RandomiseConfig with the survey's sky sigma per image band (nJy), as the loop uses it."""

    psf_sigma_px: tuple[float, float]
    noise_fraction: tuple[float, float]
    depth_mag: float
    probability: float
    sky_sigma_njy: tuple[float, ...]

    @classmethod
    def of(cls, config: RandomiseConfig, sky_sigma_njy: Sequence[float]) -> Randomisation | None:
        """The randomisation of a config in a survey; None when the config asks for none."""
        if not config.active:
            return None
        return cls(
            psf_sigma_px=config.psf_sigma_px,
            noise_fraction=config.noise_fraction,
            depth_mag=config.depth_mag,
            probability=config.probability,
            sky_sigma_njy=tuple(float(s) for s in sky_sigma_njy),
        )


def _uniform(shape: tuple[int, ...], lo: float, hi: float, generator: torch.Generator) -> Tensor:
    u = torch.rand(shape, generator=generator, device=generator.device)
    return lo + (hi - lo) * u


def gaussian_blur(images: Tensor, sigma: Tensor) -> Tensor:
    """Each band of each cutout blurred by its own Gaussian; images (N, C, H, W), sigma (N, C) px.

    A separable convolution (one kernel per cutout and band, grouped), reflected at the edges,
    each kernel the Gaussian sampled at pixel centres, normalised to sum 1 (flux kept); radius
    ceil(4 max sigma) px, at least 1. The sampled kernel's variance is sigma^2 to < 1 % from
    sigma 0.8 px up; narrower ones are wider than that (sigma 0.5: ~15 %).
    """
    n, c, h, w = images.shape
    radius = max(1, math.ceil(4.0 * float(sigma.max())))
    radius = min(radius, (min(h, w) - 1) // 2)
    offsets = torch.arange(-radius, radius + 1, device=images.device, dtype=images.dtype)
    s = sigma.to(images.dtype).clamp_min(SIGMA_FLOOR).reshape(n * c, 1)
    kernel = torch.exp(-0.5 * (offsets[None, :] / s) ** 2)
    kernel = kernel / kernel.sum(dim=1, keepdim=True)
    x = images.reshape(1, n * c, h, w)
    x = functional.pad(x, (radius, radius, radius, radius), mode="reflect")
    x = functional.conv2d(x, kernel[:, None, None, :], groups=n * c)
    x = functional.conv2d(x, kernel[:, None, :, None], groups=n * c)
    return x.reshape(n, c, h, w)


def randomise(images: Tensor, generator: torch.Generator, *, settings: Randomisation) -> Tensor:
    """A batch (N, C, H, W) nJy randomised: flux scale, then PSF blur, then added noise.

    Each cutout is randomised with probability settings.probability, drawing its flux scale
    10^(-0.4 U(-a, a)) (all bands), and per band a blur sigma U(psf_sigma_px) and a noise sigma
    U(noise_fraction) x sky sigma. The others pass unchanged. Returns a new tensor.
    """
    n, c = images.shape[:2]
    if len(settings.sky_sigma_njy) != c:
        raise ValueError(f"{len(settings.sky_sigma_njy)} sky sigmas for {c} bands")
    chosen = _uniform((n,), 0.0, 1.0, generator) < settings.probability
    x = images
    if settings.depth_mag > 0.0:
        mag = _uniform((n,), -settings.depth_mag, settings.depth_mag, generator)
        x = x * torch.pow(10.0, -0.4 * mag).to(x.device, x.dtype)[:, None, None, None]
    if settings.psf_sigma_px[1] > 0.0:
        sigma = _uniform((n, c), *settings.psf_sigma_px, generator).to(x.device)
        x = gaussian_blur(x, sigma)
    if settings.noise_fraction[1] > 0.0:
        fraction = _uniform((n, c), *settings.noise_fraction, generator).to(x.device, x.dtype)
        sky = torch.tensor(settings.sky_sigma_njy, device=x.device, dtype=x.dtype)
        noise = torch.randn(x.shape, generator=generator, device=generator.device)
        x = x + noise.to(x.device, x.dtype) * (fraction * sky)[:, :, None, None]
    keep = chosen.to(x.device)[:, None, None, None]
    return torch.where(keep, x, images)
