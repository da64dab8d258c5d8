"""How well the modelling networks recover lens parameters on held-out lenses.

Per parameter: the bias (median of predicted - true), the scatter (1.4826 x MAD and RMS of
predicted - true), and the coverage of the 68 % and 95 % intervals: the fraction of lenses
with |predicted - true| <= z sigma (z = 0.994, 1.960, the two-sided Gaussian quantiles). A
Markdown table, a JSON file and a figure of predicted against true per parameter.
`fit_sigma_scales` fits the one scale per parameter that brings both coverages to nominal.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow.parquet as pq

from lensflow.cutouts import StoreInfo, list_groups, open_store, read_group
from lensflow.errors import EvaluationError
from lensflow.io import write_text
from lensflow.labels import check_same_ids, read_labels
from lensflow.modelling import LensPredictions, ModellingModels, predict_lenses

Z68 = 0.994457883209753
Z95 = 1.959963984540054
NOMINAL = {"68": 0.68, "95": 0.95}


@dataclass(frozen=True)
class HeldOutLenses:
    """The lenses of a labelled store: ids int64 (N,), images float32 (N, bands, H, W) in the
    store's units, truth float64 (N, P) in the order of `columns`."""

    ids: np.ndarray
    images: np.ndarray
    truth: np.ndarray
    columns: tuple[str, ...]
    info: StoreInfo


def load_lenses(store: Path, labels: Path, *, columns: Sequence[str]) -> HeldOutLenses:
    """The rows of a labelled cutout store that are lenses, with their truth columns.

    Read group by group, keeping only lenses (a store may hold many non-lenses). Refuses
    labels lacking a column, and lenses with a null or non-finite truth.
    """
    store, labels = Path(store), Path(labels)
    info = open_store(store)
    truth_ids = read_labels(labels)
    names = pq.read_schema(labels).names
    absent = [c for c in columns if c not in names]
    if absent:
        raise EvaluationError(f"{labels}: no truth columns {absent} for modelling; has {names}")
    table = pq.read_table(labels, columns=["id", *columns]).sort_by("id")
    lens_ids = truth_ids.ids[truth_ids.is_lens]
    parts_ids, parts_images = [], []
    seen = []
    for group in list_groups(store):
        ids, images = read_group(store, group)
        seen.append(ids)
        keep = np.isin(ids, lens_ids)
        parts_ids.append(ids[keep])
        parts_images.append(images[keep])
    all_ids = np.concatenate(seen) if seen else np.empty(0, np.int64)
    check_same_ids(np.sort(all_ids), truth_ids, store=store, path=labels)
    ids = np.concatenate(parts_ids) if parts_ids else np.empty(0, np.int64)
    if ids.size == 0:
        raise EvaluationError(f"{store}: no lenses among its labelled cutouts ({labels})")
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    images = np.concatenate(parts_images)[order]
    rows = np.searchsorted(table["id"].to_numpy(), ids)
    truth = np.column_stack(
        [table[c].to_numpy(zero_copy_only=False).astype(np.float64)[rows] for c in columns]
    )
    bad = ~np.isfinite(truth)
    if bad.any():
        column = columns[int(np.flatnonzero(bad.any(axis=0))[0])]
        raise EvaluationError(
            f"{labels}: {int(bad.any(axis=1).sum())} lenses lack a finite {column!r}; "
            "modelling needs every truth column of every lens"
        )
    return HeldOutLenses(ids, images, truth, tuple(columns), info)


@dataclass(frozen=True)
class ParameterMetrics:
    """Recovery of one parameter on n lenses (units of the parameter; coverages as fractions).

    truth_spread: 1.4826 MAD of the true values (the set's prior width, for comparison).
    """

    name: str
    unit: str
    n: int
    bias: float
    scatter_mad: float
    rms: float
    coverage_68: float
    coverage_95: float
    truth_spread: float
    median_sigma: float


def parameter_metrics(
    name: str, unit: str, predicted: np.ndarray, sigma: np.ndarray, truth: np.ndarray
) -> ParameterMetrics:
    """Bias, scatter and coverage of predictions (N,) with sigmas (N,) against truth (N,)."""
    residual = np.asarray(predicted, np.float64) - np.asarray(truth, np.float64)
    bias = float(np.median(residual))
    spread = 1.4826 * float(np.median(np.abs(truth - np.median(truth))))
    ratio = np.abs(residual) / np.asarray(sigma, np.float64)
    return ParameterMetrics(
        name=name,
        unit=unit,
        n=int(residual.size),
        bias=bias,
        scatter_mad=1.4826 * float(np.median(np.abs(residual - bias))),
        rms=float(np.sqrt(np.mean(residual**2))),
        coverage_68=float(np.mean(ratio <= Z68)),
        coverage_95=float(np.mean(ratio <= Z95)),
        truth_spread=spread,
        median_sigma=float(np.median(sigma)),
    )


@dataclass(frozen=True)
class ModellingReport:
    """Per-parameter recovery on one held-out set (name, its spec and size)."""

    name: str
    n_lenses: int
    spec: Mapping[str, Any]
    parameters: tuple[ParameterMetrics, ...]

    def as_dict(self) -> dict[str, Any]:
        """Plain numbers for JSON or the manifest: the set, then each parameter's metrics."""
        return {
            "n_lenses": self.n_lenses,
            "set": dict(self.spec),
            "parameters": {p.name: asdict(p) for p in self.parameters},
        }

    def markdown(self) -> str:
        """A Markdown table: one row per parameter."""
        lines = [
            f"{self.name}: {self.n_lenses:,} lenses ({_spec_text(self.spec)})",
            "",
            (
                "| parameter | unit | bias | scatter (1.4826 MAD) | RMS | median sigma "
                "| coverage 68 % | coverage 95 % | truth spread |"
            ),
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ]
        for p in self.parameters:
            lines.append(
                f"| {p.name} | {p.unit or '-'} | {p.bias:+.4f} | {p.scatter_mad:.4f} | "
                f"{p.rms:.4f} | {p.median_sigma:.4f} | {100 * p.coverage_68:.1f} | "
                f"{100 * p.coverage_95:.1f} | {p.truth_spread:.4f} |"
            )
        return "\n".join(lines) + "\n"


def _spec_text(spec: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {v}" for k, v in spec.items())


def build_modelling_report(
    name: str,
    predictions: LensPredictions,
    truth: np.ndarray,
    *,
    units: Sequence[str],
    spec: Mapping[str, Any] | None = None,
) -> ModellingReport:
    """The report of predictions (N, P) against truth (N, P) for one set."""
    metrics = tuple(
        parameter_metrics(n, u, predictions.mean[:, k], predictions.sigma[:, k], truth[:, k])
        for k, (n, u) in enumerate(zip(predictions.names, units, strict=True))
    )
    return ModellingReport(name, int(truth.shape[0]), dict(spec or {}), metrics)


def evaluate_lens_store(
    store: Path,
    labels: Path,
    *,
    modelling: ModellingModels,
    name: str,
    spec: Mapping[str, Any] | None = None,
) -> tuple[ModellingReport, LensPredictions, np.ndarray]:
    """Model every lens of a labelled store: its report, the predictions and the truth (N, P)."""
    lenses = load_lenses(store, labels, columns=[p.truth for p in modelling.parameters])
    predictions = predict_lenses(lenses.images, modelling=modelling)
    units = [p.unit for p in modelling.parameters]
    report = build_modelling_report(name, predictions, lenses.truth, units=units, spec=spec)
    return report, predictions, lenses.truth


def fit_sigma_scales(
    mean: np.ndarray, sigma: np.ndarray, truth: np.ndarray, *, grid: int = 801
) -> np.ndarray:
    """One sigma scale per parameter, float64 (P,): on a log grid from 1/8 to 8, the scale
    whose 68 % and 95 % coverages are together nearest nominal (sum of squared misses).

    mean, sigma, truth float (N, P), e.g. a validation split's predictions.
    """
    ratio = np.abs(np.asarray(mean) - np.asarray(truth)) / np.asarray(sigma)
    scales = np.exp(np.linspace(math.log(1 / 8), math.log(8), grid))
    out = np.empty(ratio.shape[1])
    for k in range(ratio.shape[1]):
        r = np.sort(ratio[:, k])
        c68 = np.searchsorted(r, Z68 * scales, side="right") / r.size
        c95 = np.searchsorted(r, Z95 * scales, side="right") / r.size
        miss = (c68 - NOMINAL["68"]) ** 2 + (c95 - NOMINAL["95"]) ** 2
        out[k] = scales[int(np.argmin(miss))]
    return out


def write_modelling_reports(
    reports: Sequence[ModellingReport], folder: Path, *, stem: str = "modelling"
) -> tuple[Path, Path]:
    """Write the reports as one Markdown file and one JSON file in folder; their paths."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join(r.markdown() for r in reports)
    md = folder / f"{stem}.md"
    write_text(md, text)
    js = folder / f"{stem}.json"
    write_text(js, json.dumps({r.name: r.as_dict() for r in reports}, indent=2) + "\n")
    return md, js


def write_scatter_figure(
    predictions: LensPredictions,
    truth: np.ndarray,
    path: Path,
    *,
    title: str,
    units: Sequence[str] = (),
) -> Path:
    """Predicted against true (with 1-sigma bars on a subsample) per parameter, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from lensflow.evaluate.plots import save_png

    names = predictions.names
    cols = 3
    rows = math.ceil(len(names) / cols)
    figure, axes = plt.subplots(rows, cols, figsize=(4.0 * cols, 3.8 * rows), squeeze=False)
    rng = np.random.default_rng(0)
    shown = rng.permutation(truth.shape[0])[: min(300, truth.shape[0])]
    for k, name in enumerate(names):
        ax = axes[k // cols][k % cols]
        t, m, s = truth[:, k], predictions.mean[:, k], predictions.sigma[:, k]
        ax.scatter(t, m, s=2, alpha=0.25, color="tab:blue", linewidths=0)
        ax.errorbar(t[shown], m[shown], yerr=s[shown], fmt="none", lw=0.4, alpha=0.3, color="k")
        lo, hi = np.percentile(np.concatenate([t, m]), [0.5, 99.5])
        ax.plot([lo, hi], [lo, hi], color="tab:red", lw=1)
        ax.set_xlim(lo, hi)
        ax.set_ylim(lo, hi)
        unit = f" ({units[k]})" if k < len(units) and units[k] else ""
        ax.set_xlabel(f"true {name}{unit}")
        ax.set_ylabel(f"predicted {name}")
    for k in range(len(names), rows * cols):
        axes[k // cols][k % cols].set_visible(False)
    figure.suptitle(f"{title}: {truth.shape[0]:,} lenses")
    figure.tight_layout()
    try:
        return save_png(figure, path, dpi=90)
    finally:
        plt.close(figure)
