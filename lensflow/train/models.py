"""The networks: a photometry MLP and three kinds of small CNN, each ending in a probability.

Every network takes raw inputs (AB magnitudes, or images in nJy) and does its normalisation in
the graph, so the exported ONNX file needs no preprocessing. Each CNN stays under 0.1 GFLOP per
3x64x64 cutout (a multiply-add counted as two FLOPs; `count_flops`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from lensflow.surveys import Survey
from lensflow.train.config import Architecture

STRETCH_SIGMAS = 3.0
"""The asinh stretch turns from linear to logarithmic at this many sky sigmas."""

MAX_FLOPS = 100_000_000
"""The FLOP budget of one member per 3x64x64 cutout."""


def band_scales(survey: Survey, *, sigmas: float = STRETCH_SIGMAS) -> list[float]:
    """The asinh softening per image band of the survey, nJy: `sigmas` x its per-pixel sky
    noise (the nominal survey's, also for sets simulated in a shifted one)."""
    return [sigmas * survey.sky_sigma_njy[band] for band in survey.bands]


def normalisation_text(survey: Survey) -> str:
    """The manifest's words for the in-graph image normalisation."""
    pairs = zip(survey.bands, band_scales(survey), strict=True)
    scales = ", ".join(f"{b} {s:.3g}" for b, s in pairs)
    return f"in graph: asinh(x / s_band), s_band = {STRETCH_SIGMAS:g} x sky sigma ({scales} nJy)"


def _asinh(x: Tensor) -> Tensor:
    """asinh from elementary ops (sign, log, sqrt), which every ONNX exporter can write."""
    a = x.abs()
    return torch.sign(x) * torch.log(a + torch.sqrt(a * a + 1.0))


class AsinhStretch(nn.Module):
    """asinh(x / scale_band) per band: linear near the sky noise, logarithmic in bright cores.

    x float32 (N, bands, H, W) in nJy; scale a fixed buffer (bands,) in nJy.
    """

    scale: Tensor

    def __init__(self, scales: Sequence[float]) -> None:
        super().__init__()
        self.register_buffer("scale", torch.tensor(scales, dtype=torch.float32).view(1, -1, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return _asinh(x / self.scale)


class ProbabilityModel(nn.Module):
    """A network whose `logits` train with BCE and whose forward gives probabilities (N,)."""

    def logits(self, x: Tensor) -> Tensor:
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        return torch.sigmoid(self.logits(x))


class PhotometryMLP(ProbabilityModel):
    """Lens probability from AB magnitudes (N, 4) in g, r, i, z.

    Features: the four magnitudes and the colours g-r, r-i, i-z, standardised with buffers
    fitted on the training set (`fit_normalisation`); then hidden layers, ReLU, one logit.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, n_bands: int = 4, hidden: Sequence[int] = (64, 64)) -> None:
        super().__init__()
        n_features = 2 * n_bands - 1
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("std", torch.ones(n_features))
        layers: list[nn.Module] = []
        width = n_features
        for size in hidden:
            layers += [nn.Linear(width, size), nn.ReLU()]
            width = size
        layers.append(nn.Linear(width, 1))
        self.net = nn.Sequential(*layers)

    @staticmethod
    def features(mags: Tensor) -> Tensor:
        """Magnitudes and adjacent-band colours, (N, 2 bands - 1)."""
        return torch.cat([mags, mags[:, :-1] - mags[:, 1:]], dim=1)

    @torch.no_grad()
    def fit_normalisation(self, mags: Tensor) -> None:
        """Set the standardisation buffers from training magnitudes (N, bands)."""
        f = self.features(mags.to(self.mean))
        self.mean.copy_(f.mean(dim=0))
        self.std.copy_(f.std(dim=0).clamp_min(1e-3))

    def logits(self, x: Tensor) -> Tensor:
        out: Tensor = self.net((self.features(x) - self.mean) / self.std)
        return out.squeeze(1)


def _conv_bn(
    cin: int, cout: int, *, kernel: int = 3, stride: int = 1, groups: int = 1
) -> list[nn.Module]:
    return [
        nn.Conv2d(cin, cout, kernel, stride=stride, padding=kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a shortcut (1x1 projection when the shape changes)."""

    def __init__(self, cin: int, cout: int, *, stride: int = 1) -> None:
        super().__init__()
        self.body = nn.Sequential(
            *_conv_bn(cin, cout, stride=stride), nn.ReLU(inplace=True), *_conv_bn(cout, cout)
        )
        self.shortcut: nn.Module = (
            nn.Sequential(*_conv_bn(cin, cout, kernel=1, stride=stride))
            if stride != 1 or cin != cout
            else nn.Identity()
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.act(self.body(x) + self.shortcut(x))
        return out


class ResNet(ProbabilityModel):
    """A small residual network in the manner of CMU DeepLens: stem, four stages, pooling.

    Each stage halves the map (64 -> 4 px) with `blocks` basic blocks of `widths` channels.
    """

    def __init__(
        self,
        scales: Sequence[float],
        *,
        widths: Sequence[int] = (16, 32, 64, 128),
        blocks: Sequence[int] = (1, 2, 2, 1),
    ) -> None:
        super().__init__()
        self.stretch = AsinhStretch(scales)
        layers: list[nn.Module] = [*_conv_bn(len(scales), widths[0]), nn.ReLU(inplace=True)]
        cin = widths[0]
        for width, count in zip(widths, blocks, strict=True):
            layers.append(BasicBlock(cin, width, stride=2))
            layers += [BasicBlock(width, width) for _ in range(count - 1)]
            cin = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(cin, 1)

    def logits(self, x: Tensor) -> Tensor:
        pooled = self.features(self.stretch(x)).mean(dim=(2, 3))
        out: Tensor = self.head(pooled)
        return out.squeeze(1)


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expansion, 3x3 depthwise, 1x1 linear projection, shortcut."""

    def __init__(self, cin: int, cout: int, *, stride: int = 1, expand: int = 4) -> None:
        super().__init__()
        hidden = cin * expand
        self.body = nn.Sequential(
            *_conv_bn(cin, hidden, kernel=1),
            nn.ReLU6(inplace=True),
            *_conv_bn(hidden, hidden, stride=stride, groups=hidden),
            nn.ReLU6(inplace=True),
            *_conv_bn(hidden, cout, kernel=1),
        )
        self.residual = stride == 1 and cin == cout

    def forward(self, x: Tensor) -> Tensor:
        out: Tensor = self.body(x)
        return x + out if self.residual else out


class MobileNet(ProbabilityModel):
    """A compact MobileNetV2-like network of inverted residual (depthwise-separable) blocks."""

    STAGES: tuple[tuple[int, int, int], ...] = (
        (24, 2, 2),  # (width, blocks, stride of the first block)
        (40, 2, 2),
        (80, 3, 2),
        (112, 2, 1),
    )

    def __init__(self, scales: Sequence[float], *, stem: int = 24, head: int = 256) -> None:
        super().__init__()
        self.stretch = AsinhStretch(scales)
        layers: list[nn.Module] = [*_conv_bn(len(scales), stem, stride=2), nn.ReLU6(inplace=True)]
        layers.append(InvertedResidual(stem, 16, expand=1))
        cin = 16
        for width, blocks, stride in self.STAGES:
            for b in range(blocks):
                layers.append(InvertedResidual(cin, width, stride=stride if b == 0 else 1))
                cin = width
        layers += [*_conv_bn(cin, head, kernel=1), nn.ReLU6(inplace=True)]
        self.features = nn.Sequential(*layers)
        self.dropout = nn.Dropout(0.2)
        self.head = nn.Linear(head, 1)

    def logits(self, x: Tensor) -> Tensor:
        pooled = self.features(self.stretch(x)).mean(dim=(2, 3))
        out: Tensor = self.head(self.dropout(pooled))
        return out.squeeze(1)


class SelfAttention(nn.Module):
    """Multi-head self-attention written out, so its matmuls export plainly and can be counted.

    x (N, T, D) -> (N, T, D).
    """

    def __init__(self, dim: int, heads: int) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim {dim} is not divisible by heads {heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        n, t, d = x.shape
        qkv = self.qkv(x).reshape(n, t, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        weights = torch.softmax((q @ k.transpose(-2, -1)) * (d // self.heads) ** -0.5, dim=-1)
        out: Tensor = self.proj((weights @ v).transpose(1, 2).reshape(n, t, d))
        return out


class EncoderLayer(nn.Module):
    """A pre-norm transformer encoder layer: attention and an MLP, each with a shortcut."""

    def __init__(self, dim: int, heads: int, mlp: int) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attention = SelfAttention(dim, heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(nn.Linear(dim, mlp), nn.GELU(), nn.Linear(mlp, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attention(self.norm1(x))
        out: Tensor = x + self.mlp(self.norm2(x))
        return out


class AttentionNet(ProbabilityModel):
    """A convolutional stem to an 8x8 feature map, then self-attention over its 64 tokens.

    In the manner of the Lens Detector models: convolutions find local features, the encoder
    relates them across the cutout (arcs around a deflector), mean pooling, one logit.
    """

    def __init__(
        self, scales: Sequence[float], *, dim: int = 64, layers: int = 2, heads: int = 4
    ) -> None:
        super().__init__()
        self.stretch = AsinhStretch(scales)
        self.stem = nn.Sequential(
            *_conv_bn(len(scales), 24, stride=2),
            nn.ReLU(inplace=True),
            *_conv_bn(24, 48),
            nn.ReLU(inplace=True),
            *_conv_bn(48, dim, stride=2),
            nn.ReLU(inplace=True),
            *_conv_bn(dim, dim, stride=2),
            nn.ReLU(inplace=True),
        )
        self.position = nn.Parameter(torch.zeros(1, 64, dim))
        nn.init.trunc_normal_(self.position, std=0.02)
        self.encoder = nn.Sequential(*[EncoderLayer(dim, heads, 2 * dim) for _ in range(layers)])
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, 1)

    def logits(self, x: Tensor) -> Tensor:
        tokens = self.stem(self.stretch(x)).flatten(2).transpose(1, 2)
        encoded = self.norm(self.encoder(tokens + self.position))
        out: Tensor = self.head(encoded.mean(dim=1))
        return out.squeeze(1)


ARCHITECTURES: Mapping[Architecture, Callable[[Sequence[float]], ProbabilityModel]] = {
    "resnet": ResNet,
    "mobilenet": MobileNet,
    "attention": AttentionNet,
}


def build_cnn(architecture: Architecture, survey: Survey) -> ProbabilityModel:
    """A freshly initialised CNN of the named architecture for the survey's image bands."""
    try:
        factory = ARCHITECTURES[architecture]
    except KeyError:
        raise ValueError(
            f"unknown architecture {architecture!r}; have {sorted(ARCHITECTURES)}"
        ) from None
    return factory(band_scales(survey))


def count_flops(model: nn.Module, input_shape: Sequence[int]) -> int:
    """FLOPs of one forward pass per sample (multiply-add = 2) in Conv2d, Linear and attention.

    input_shape excludes the batch, e.g. (3, 64, 64) or (4,).
    """
    total = 0

    def conv(module: nn.Module, _: tuple[Tensor, ...], out: Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Conv2d)
        k = module.kernel_size[0] * module.kernel_size[1]
        total += 2 * out.numel() * (module.in_channels // module.groups) * k

    def linear(module: nn.Module, _: tuple[Tensor, ...], out: Tensor) -> None:
        nonlocal total
        assert isinstance(module, nn.Linear)
        total += 2 * out.numel() * module.in_features

    def attention(module: nn.Module, inputs: tuple[Tensor, ...], _: Tensor) -> None:
        nonlocal total
        n, t, d = inputs[0].shape
        total += 2 * (2 * n * t * t * d)  # q k^T and weights v, over all heads

    hooks = {nn.Conv2d: conv, nn.Linear: linear, SelfAttention: attention}
    handles = [
        module.register_forward_hook(hook)
        for module in model.modules()
        for kind, hook in hooks.items()
        if isinstance(module, kind)
    ]
    was_training = model.training
    model.train(False)
    try:
        device = next(model.buffers(), torch.zeros(())).device
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return total
