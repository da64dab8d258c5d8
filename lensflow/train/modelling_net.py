"""The modelling network: lensflow's ResNet with a head of 2 x P outputs, its loss, its
augmentation (flips and transposes that turn the parameters with the cutout) and its export.

The graph takes cutouts float32 (N, bands, H, W) in nJy (the asinh stretch in the graph) and
gives float32 (N, 2 P): each parameter's mean in its own units, then the log-variance of its
Gaussian. Targets are standardised inside the graph (buffers `loc`, `scale` fitted on the
training lenses), so the head learns numbers of order one.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from torch import Tensor, nn

from lensflow.errors import ModelMismatchError
from lensflow.io import write_atomic
from lensflow.train.export import write_graph
from lensflow.train.models import ResNet

logger = logging.getLogger(__name__)

LOG_VARIANCE_LIMIT = 12.0
"""The standardised log-variance is clipped to +-this (sigma from 0.0025 to 400 prior widths)."""

INPUT_NAME = "images"
OUTPUT_NAME = "parameters"
TOLERANCE = 1e-4
"""ONNX Runtime and torch must agree within this x max(1, |value|) on every output."""


class ModellingNet(nn.Module):
    """ResNet features (lensflow.train.models.ResNet's stretch, stem and stages), then one
    linear layer from the flattened last map (size / 2^stages squared cells, so positions stay
    known) to 2 P standardised outputs, de-standardised in the graph."""

    loc: Tensor
    scale: Tensor

    def __init__(
        self,
        scales: Sequence[float],
        n_parameters: int,
        *,
        size: int = 64,
        widths: Sequence[int] = (12, 24, 48, 96),
        blocks: Sequence[int] = (1, 1, 1, 1),
    ) -> None:
        super().__init__()
        body = ResNet(scales, widths=widths, blocks=blocks)
        self.stretch = body.stretch
        self.features = body.features
        cells = size // 2 ** len(widths)
        if cells < 1 or cells * 2 ** len(widths) != size:
            raise ValueError(f"cutout size {size} is not a multiple of 2^{len(widths)} (stages)")
        self.head = nn.Linear(widths[-1] * cells * cells, 2 * n_parameters)
        nn.init.zeros_(self.head.bias)
        self.n_parameters = n_parameters
        self.register_buffer("loc", torch.zeros(n_parameters))
        self.register_buffer("scale", torch.ones(n_parameters))

    @torch.no_grad()
    def fit_standardisation(self, truth: np.ndarray) -> None:
        """Set loc and scale from the training truths float (N, P): median and 1.4826 MAD (the
        standard deviation where the MAD is zero)."""
        values = np.asarray(truth, dtype=np.float64)
        loc = np.median(values, axis=0)
        mad = 1.4826 * np.median(np.abs(values - loc), axis=0)
        spread = np.where(mad > 0, mad, values.std(axis=0))
        self.loc.copy_(torch.as_tensor(loc, dtype=torch.float32))
        self.scale.copy_(torch.as_tensor(np.maximum(spread, 1e-6), dtype=torch.float32))

    def standardised(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(z mean, z log-variance), (N, P) each, in units of the standardisation."""
        pooled = self.features(self.stretch(x)).flatten(1)
        out: Tensor = self.head(pooled)
        p = self.n_parameters
        return out[:, :p], out[:, p:].clamp(-LOG_VARIANCE_LIMIT, LOG_VARIANCE_LIMIT)

    def forward(self, x: Tensor) -> Tensor:
        z_mean, z_log_var = self.standardised(x)
        mean = self.loc + self.scale * z_mean
        log_var = z_log_var + 2.0 * torch.log(self.scale)
        return torch.cat([mean, log_var], dim=1)


def gaussian_nll(model: ModellingNet, x: Tensor, truth: Tensor) -> Tensor:
    """Mean Gaussian negative log-likelihood (less its constant) of truth (N, P) in the
    standardised units, over lenses and parameters."""
    z_mean, z_log_var = model.standardised(x)
    z = (truth - model.loc) / model.scale
    return (0.5 * (z_log_var + (z - z_mean) ** 2 * torch.exp(-z_log_var))).mean()


def flip_transpose(
    images: Tensor, truth: Tensor, roles: Sequence[str], generator: torch.Generator
) -> tuple[Tensor, Tensor]:
    """The 8 symmetries of the square, one draw per cutout, with the parameters turned to match.

    images (N, C, H, W) with x along W and y along H, pixel centres symmetric about the cutout
    centre; truth (N, P) with roles (x, y, spin2_1, spin2_2, scalar). Flipping x negates x and
    the spin-2 second components; flipping y negates y and the second components; transposing
    swaps x and y and negates the spin-2 first components (phi -> pi/2 - phi).
    """
    n = images.shape[0]
    bits = torch.randint(0, 2, (3, n), generator=generator, device=generator.device)
    bits = bits.to(images.device).bool()
    role = list(roles)
    xs = [k for k, r in enumerate(role) if r == "x"]
    ys = [k for k, r in enumerate(role) if r == "y"]
    first = [k for k, r in enumerate(role) if r == "spin2_1"]
    second = [k for k, r in enumerate(role) if r == "spin2_2"]
    out, t = images, truth.clone()
    for bit, axis, negate in ((bits[0], -1, xs), (bits[1], -2, ys)):
        out = torch.where(bit[:, None, None, None], out.flip(axis), out)
        sign = torch.where(bit, -1.0, 1.0)[:, None]
        t[:, negate + second] = t[:, negate + second] * sign
    swap = bits[2]
    out = torch.where(swap[:, None, None, None], out.transpose(-1, -2), out)
    swapped = t.clone()
    swapped[:, xs], swapped[:, ys] = t[:, ys], t[:, xs]
    swapped[:, first] = -t[:, first]
    t = torch.where(swap[:, None], swapped, t)
    return out.contiguous(), t


def export_modelling(
    model: ModellingNet, path: Path, *, example: np.ndarray, check: Sequence[np.ndarray] = ()
) -> float:
    """Export model (CPU, eval mode) to ONNX at path; returns the largest relative |ONNX -
    torch| over example, a batch of one and check. Refused (ModelMismatchError) beyond 1e-4."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.cpu()
    model.train(False)
    worst = 0.0

    def write(tmp: Path) -> None:
        nonlocal worst
        write_graph(model, tmp, example=example, input_name=INPUT_NAME, output_name=OUTPUT_NAME)
        worst = compare_onnx(model, tmp, [example, example[:1], *check])

    write_atomic(path, write)
    logger.info("%s: exported (ONNX vs torch within %.2e)", path, worst)
    return worst


def compare_onnx(
    model: ModellingNet, path: Path, batches: Sequence[np.ndarray], *, tol: float = TOLERANCE
) -> float:
    """Largest |ONNX Runtime - torch| / max(1, |torch|) over the batches; refused beyond tol."""
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    model = model.cpu()
    model.train(False)
    worst = 0.0
    for batch in batches:
        x = np.ascontiguousarray(batch, dtype=np.float32)
        (ours,) = session.run(None, {INPUT_NAME: x})
        with torch.no_grad():
            theirs = model(torch.from_numpy(x)).numpy()
        if np.shape(ours) != theirs.shape:
            raise ModelMismatchError(f"{path}: ONNX gives {np.shape(ours)}, torch {theirs.shape}")
        diff = np.abs(np.asarray(ours) - theirs) / np.maximum(1.0, np.abs(theirs))
        worst = max(worst, float(diff.max(initial=0.0)))
    if not worst <= tol:
        raise ModelMismatchError(f"{path}: ONNX Runtime and torch differ by {worst:.2e} > {tol}")
    return worst
