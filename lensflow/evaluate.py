"""The field's metrics (Metcalf et al. 2019) and the evaluation of a models manifest on a store.

AUROC, TPR0 (the highest true-positive rate at any score threshold with no false positive) and
TPR10 (the highest at any threshold with at most nine false positives). A threshold t selects
every cutout scoring >= t, so tied scores always fall on the same side: a lens tied with a
non-lens is selected only together with that false positive. TPR0 and TPR10 depend on how many
non-lenses were scored, so every report states n_lenses and n_non_lenses.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lensflow.cutouts import list_groups, open_store, read_group
from lensflow.ensemble import DEFAULT_BATCH, check_ensemble_inputs, load_session, run_batched
from lensflow.errors import LensflowError
from lensflow.registry import load_manifest

logger = logging.getLogger(__name__)

ENSEMBLE = "ensemble"
"""The report key of the ensemble's mean score."""

TOP_NON_LENSES = 100
"""How many of the highest-scoring non-lenses the report sorts by class."""


class EvaluationError(LensflowError):
    """Scores and labels cannot be evaluated (one class absent, ids unmatched, bad labels)."""


@dataclasses.dataclass(frozen=True)
class RocCurve:
    """A ROC curve: one point per distinct score threshold, from none selected to all.

    fpr, tpr float64 (K + 1,); thresholds float64 (K + 1,), descending, the first +inf.
    false_positives, true_positives int64 (K + 1,): the counts behind fpr and tpr.
    """

    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    false_positives: np.ndarray
    true_positives: np.ndarray


@dataclasses.dataclass(frozen=True)
class Metrics:
    """The field's metrics of one scorer on one labelled set."""

    auroc: float
    tpr0: float
    tpr10: float
    n_lenses: int
    n_non_lenses: int

    def as_dict(self) -> dict[str, float | int]:
        """The metrics as JSON/TOML-ready plain values."""
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class EvaluationReport:
    """Scores and metrics of every member and of the ensemble mean on one labelled store.

    ids int64 (N,) ascending; is_lens bool (N,); classes str (N,) or None when the labels have
    no `class`; scores maps each member and "ensemble" to float32 (N,) in the ids' order.
    fpr_by_class: fraction of each contaminant class scoring >= threshold with the ensemble;
    false_positives_by_class: how many of each class do; top_non_lenses_by_class: the classes
    of the TOP_NON_LENSES non-lenses the ensemble scores highest (the false positives of a
    strict threshold). score_seconds: ONNX Runtime time per member, when scored from a store.
    """

    ids: np.ndarray
    is_lens: np.ndarray
    classes: np.ndarray | None
    scores: Mapping[str, np.ndarray]
    metrics: Mapping[str, Metrics]
    threshold: float
    fpr_by_class: Mapping[str, float] | None
    false_positives_by_class: Mapping[str, int] | None = None
    top_non_lenses_by_class: Mapping[str, int] | None = None
    score_seconds: Mapping[str, float] | None = None

    def as_dict(self) -> dict[str, dict[str, Any]]:
        """`{"ensemble": {...}, "<member>": {...}}` with the metrics (and the class counts)."""
        out: dict[str, dict[str, Any]] = {}
        for name in [ENSEMBLE, *(n for n in self.metrics if n != ENSEMBLE)]:
            out[name] = self.metrics[name].as_dict()
        for key in ("fpr_by_class", "false_positives_by_class", "top_non_lenses_by_class"):
            value = getattr(self, key)
            if value is not None:
                out[ENSEMBLE][key] = dict(value)
        return out


def _checked(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    scores = np.asarray(scores, dtype=np.float64).reshape(-1)
    labels = np.asarray(labels).reshape(-1)
    if labels.dtype != np.bool_:
        if not np.isin(labels, (0, 1)).all():
            raise EvaluationError("labels must be booleans or 0/1 (1 = lens)")
        labels = labels.astype(bool)
    if scores.shape != labels.shape:
        raise EvaluationError(f"{scores.size} scores for {labels.size} labels")
    if not np.isfinite(scores).all():
        raise EvaluationError(f"{int((~np.isfinite(scores)).sum())} scores are not finite")
    n_pos = int(labels.sum())
    if n_pos == 0 or n_pos == labels.size:
        raise EvaluationError(
            f"metrics need at least one lens and one non-lens; got {n_pos} lenses and "
            f"{labels.size - n_pos} non-lenses"
        )
    return scores, labels


def roc_curve(scores: np.ndarray, labels: np.ndarray) -> RocCurve:
    """The ROC curve of scores (N,) against labels (N,) bool, 1 = lens; a tie is one point."""
    scores, labels = _checked(scores, labels)
    order = np.argsort(-scores, kind="stable")
    ranked, hits = scores[order], labels[order]
    # the last row of each run of equal scores closes a threshold
    last = np.flatnonzero(np.r_[ranked[1:] != ranked[:-1], True])
    tp = np.r_[0, np.cumsum(hits)[last]].astype(np.int64)
    fp = np.r_[0, np.cumsum(~hits)[last]].astype(np.int64)
    return RocCurve(
        fpr=fp / fp[-1],
        tpr=tp / tp[-1],
        thresholds=np.r_[np.inf, ranked[last]],
        false_positives=fp,
        true_positives=tp,
    )


def _area(curve: RocCurve) -> float:
    return float(np.trapezoid(curve.tpr, curve.fpr))


def _best_tpr(curve: RocCurve, max_false_positives: int) -> float:
    return float(curve.tpr[curve.false_positives <= max_false_positives].max())


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve: P(lens score > non-lens score) + P(tie) / 2."""
    return _area(roc_curve(scores, labels))


def tpr_at_false_positives(
    scores: np.ndarray, labels: np.ndarray, *, max_false_positives: int
) -> float:
    """The highest TPR at any threshold that selects at most `max_false_positives` non-lenses."""
    return _best_tpr(roc_curve(scores, labels), max_false_positives)


def tpr0(scores: np.ndarray, labels: np.ndarray) -> float:
    """TPR0: the highest TPR at any threshold with no false positive."""
    return tpr_at_false_positives(scores, labels, max_false_positives=0)


def tpr10(scores: np.ndarray, labels: np.ndarray) -> float:
    """TPR10: the highest TPR at any threshold with fewer than ten false positives."""
    return tpr_at_false_positives(scores, labels, max_false_positives=9)


def metrics_of(scores: np.ndarray, labels: np.ndarray) -> Metrics:
    """AUROC, TPR0, TPR10 and the class counts of one scorer, from one ROC curve."""
    curve = roc_curve(scores, labels)
    return Metrics(
        auroc=_area(curve),
        tpr0=_best_tpr(curve, 0),
        tpr10=_best_tpr(curve, 9),
        n_lenses=int(curve.true_positives[-1]),
        n_non_lenses=int(curve.false_positives[-1]),
    )


@dataclasses.dataclass(frozen=True)
class Labels:
    """A labels file sorted by id: ids int64 (N,), is_lens bool (N,), classes str (N,) or None."""

    ids: np.ndarray
    is_lens: np.ndarray
    classes: np.ndarray | None


def read_labels(path: Path) -> Labels:
    """Read a labels Parquet file (id int64, is_lens bool, optional class), sorted by id."""
    path = Path(path)
    try:
        schema = pq.read_schema(path)
    except FileNotFoundError:
        raise EvaluationError(f"{path}: no labels file here") from None
    except Exception as exc:  # pyarrow raises several types for a non-Parquet file
        raise EvaluationError(f"{path}: not a Parquet labels file ({exc})") from exc
    absent = [name for name in ("id", "is_lens") if name not in schema.names]
    if absent:
        raise EvaluationError(f"{path}: labels lack columns {absent}; has {schema.names}")
    if not pa.types.is_int64(schema.field("id").type):
        raise EvaluationError(f"{path}: label ids must be int64, got {schema.field('id').type}")
    columns = ["id", "is_lens"] + (["class"] if "class" in schema.names else [])
    table = pq.read_table(path, columns=columns)
    if table["id"].null_count or table["is_lens"].null_count:
        raise EvaluationError(f"{path}: null id or is_lens in the labels")
    ids = table["id"].to_numpy().astype(np.int64, copy=False)
    is_lens = table["is_lens"].to_numpy(zero_copy_only=False).astype(bool)
    classes = np.asarray(table["class"].to_pylist(), dtype=object) if "class" in columns else None
    order = np.argsort(ids, kind="stable")
    ids = ids[order]
    if ids.size > 1 and np.any(ids[1:] == ids[:-1]):
        raise EvaluationError(
            f"{path}: duplicate label ids, e.g. {ids[1:][ids[1:] == ids[:-1]][0]}"
        )
    return Labels(
        ids=ids, is_lens=is_lens[order], classes=None if classes is None else classes[order]
    )


def check_same_ids(ids: np.ndarray, labels: Labels, *, store: Path, path: Path) -> None:
    """Refuse cutout ids (N,) that are not exactly the labels' ids, both ascending.

    Once accepted, the cutouts and the labels correspond row by row. store and path name the
    two sides in the error message.
    """
    if ids.size > 1 and np.any(ids[1:] <= ids[:-1]):
        raise EvaluationError(f"{store}: cutout ids repeat across groups or are not sorted")
    for missing, where, what in (
        (ids[~np.isin(ids, labels.ids)], path, "cutouts in the store"),
        (labels.ids[~np.isin(labels.ids, ids)], store, "labelled ids"),
    ):
        if missing.size:
            raise EvaluationError(
                f"{where}: {missing.size} {what} are absent here, e.g. ids "
                f"{missing[:5].tolist()}; a store and its labels must hold the same ids"
            )


def build_report(
    labels: Labels, scores: Mapping[str, np.ndarray], *, threshold: float
) -> EvaluationReport:
    """Metrics of each scorer (members and "ensemble", (N,) in the labels' order) on labels.

    threshold: the ensemble's, at which fpr_by_class is counted (when labels have classes).
    """
    metrics = {name: metrics_of(values, labels.is_lens) for name, values in scores.items()}
    fpr_by_class: dict[str, float] | None = None
    false_positives: dict[str, int] | None = None
    top: dict[str, int] | None = None
    if labels.classes is not None and ENSEMBLE in scores:
        selected = scores[ENSEMBLE] >= threshold
        fpr_by_class, false_positives = {}, {}
        for name in sorted({str(c) for c in labels.classes[~labels.is_lens]}):
            members = (labels.classes == name) & ~labels.is_lens
            fpr_by_class[name] = float(selected[members].mean())
            false_positives[name] = int(selected[members].sum())
        non_lenses = np.flatnonzero(~labels.is_lens)
        ranked = non_lenses[np.argsort(-scores[ENSEMBLE][non_lenses], kind="stable")]
        names, counts = np.unique(
            labels.classes[ranked[:TOP_NON_LENSES]].astype(str), return_counts=True
        )
        top = {
            str(n): int(c)
            for n, c in sorted(zip(names, counts, strict=True), key=lambda nc: (-nc[1], nc[0]))
        }
    return EvaluationReport(
        ids=labels.ids,
        is_lens=labels.is_lens,
        classes=labels.classes,
        scores=dict(scores),
        metrics=metrics,
        threshold=threshold,
        fpr_by_class=fpr_by_class,
        false_positives_by_class=false_positives,
        top_non_lenses_by_class=top,
    )


def _blocks(
    store: Path, groups: Sequence[str], size: int, reader: Executor
) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """(ids, images) of consecutive groups joined into blocks of about `size` cutouts.

    The next block is read by reader while the caller works on this one.
    """
    batches: list[list[str]] = [[]]
    filled = 0
    for group in groups:
        if batches[-1] and filled >= size:
            batches.append([])
            filled = 0
        batches[-1].append(group)
        filled += _group_length(store, group)

    def read(names: list[str]) -> tuple[np.ndarray, np.ndarray]:
        parts = [read_group(store, name) for name in names]
        return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])

    pending = reader.submit(read, batches[0])
    for following in [*batches[1:], None]:
        block = pending.result()
        if following is not None:
            pending = reader.submit(read, following)
        yield block


def _group_length(store: Path, group: str) -> int:
    import zarr

    ids = zarr.open_group(str(store), mode="r")[f"{group}/ids"]
    return int(ids.shape[0])  # type: ignore[union-attr]


def _score_split(
    sessions: Sequence[Any], images: np.ndarray, *, batch: int, pool: Executor
) -> np.ndarray:
    """One member's probabilities (N,), the rows split among its sessions, run side by side."""
    images = np.ascontiguousarray(images, dtype=np.float32)
    per = -(-images.shape[0] // len(sessions))
    per = max(batch, -(-per // batch) * batch)
    slices = [images[start : start + per] for start in range(0, images.shape[0], per)]
    parts = pool.map(
        lambda job: run_batched(job[0], job[1], batch=batch), zip(sessions, slices, strict=False)
    )
    return np.concatenate(list(parts)) if slices else np.empty(0, np.float32)


def evaluate_store(
    store: Path,
    labels: Path,
    *,
    manifest: Path | None = None,
    batch: int = DEFAULT_BATCH,
    workers: int = 1,
) -> EvaluationReport:
    """Score every cutout of a store with each member and the ensemble mean; compute metrics.

    store: a Zarr cutout store, any groups; labels: Parquet with id, is_lens (and class).
    manifest: a models manifest (the shipped one when None). Every cutout id must have a label
    and every label a cutout. workers: ONNX Runtime sessions per member run side by side on
    parts of each block of cutouts, each with cpu_count / workers threads (small sessions scale
    better on many cores than one wide one). The report's score_seconds hold each member's
    scoring time.
    """
    store, labels = Path(store), Path(labels)
    models = load_manifest(manifest, verify=True)
    check_ensemble_inputs(models, open_store(store))
    truth = read_labels(labels)
    groups = list_groups(store)
    if not groups:
        raise EvaluationError(f"{store}: the store holds no cutout groups")
    workers = max(workers, 1)
    sessions: dict[str, list[Any]] = {}
    for m in models.ensemble.members:
        path = models.path_of(m.file)
        if workers == 1:
            sessions[m.name] = [load_session(path, m.sha256)]
        else:  # one session each: concurrent runs of one session share its thread pool
            threads = max(1, (os.cpu_count() or 1) // workers)
            sessions[m.name] = [
                load_session.__wrapped__(path, m.sha256, threads) for _ in range(workers)
            ]
    parts_ids: list[np.ndarray] = []
    parts_scores: dict[str, list[np.ndarray]] = {name: [] for name in sessions}
    seconds = dict.fromkeys(sessions, 0.0)
    with ThreadPoolExecutor(workers) as pool, ThreadPoolExecutor(1) as reader:
        for ids, images in _blocks(store, groups, 4 * batch * workers, reader):
            parts_ids.append(ids)
            for name, member_sessions in sessions.items():
                tick = time.perf_counter()
                parts_scores[name].append(
                    _score_split(member_sessions, images, batch=batch, pool=pool)
                )
                seconds[name] += time.perf_counter() - tick
    ids = np.concatenate(parts_ids)
    order = np.argsort(ids, kind="stable")
    check_same_ids(ids[order], truth, store=store, path=labels)
    scores = {name: np.concatenate(parts)[order] for name, parts in parts_scores.items()}
    stacked = np.stack(list(scores.values()))
    scores[ENSEMBLE] = stacked.mean(axis=0).astype(np.float32)
    logger.info(
        "%s: %d cutouts scored, %s",
        store,
        ids.size,
        ", ".join(f"{n} {ids.size / max(t, 1e-9):.0f}/s" for n, t in seconds.items()),
    )
    report = build_report(truth, scores, threshold=models.ensemble.threshold)
    return dataclasses.replace(report, score_seconds=seconds)


def write_report_json(report: EvaluationReport, path: Path) -> Path:
    """Write `{"ensemble": {...}, "<member>": {...}}` as indented JSON; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report.as_dict(), indent=2) + "\n")
    return path


def _draw_roc(ax: Any, report: EvaluationReport, *, title: str, ten_fp_line: bool) -> None:
    """Every scorer's ROC (log FPR, floored at half a false positive) on one matplotlib axis.

    The title may use {n_lenses} and {n_non}; ten_fp_line marks the TPR10 false-positive rate.
    """
    n_lenses = int(report.is_lens.sum())
    n_non = int(report.is_lens.size - n_lenses)
    floor = 0.5 / n_non
    for name in [ENSEMBLE, *(n for n in report.scores if n != ENSEMBLE)]:
        curve = roc_curve(report.scores[name], report.is_lens)
        m = report.metrics[name]
        ax.step(
            np.maximum(curve.fpr, floor),
            curve.tpr,
            where="post",
            lw=2.0 if name == ENSEMBLE else 1.2,
            label=f"{name}: AUROC {m.auroc:.3f}, TPR0 {m.tpr0:.2f}, TPR10 {m.tpr10:.2f}",
        )
    if ten_fp_line:
        ax.axvline(9.5 / n_non, color="k", lw=0.6, ls=":")
    ax.set_xscale("log")
    ax.set_xlim(floor, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false-positive rate")
    ax.set_ylabel("true-positive rate")
    ax.set_title(title.format(n_lenses=n_lenses, n_non=n_non), fontsize=10)
    ax.legend(loc="lower right", fontsize=7)


def write_plots(report: EvaluationReport, folder: Path, *, prefix: str = "roc") -> list[Path]:
    """ROC curves (log FPR) and score histograms of every scorer as PNGs in folder.

    Writes `<prefix>.png` and `<prefix>_scores.png`; returns their paths.
    """
    from matplotlib.figure import Figure

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    names = [ENSEMBLE, *(n for n in report.scores if n != ENSEMBLE)]

    roc = Figure(figsize=(6.0, 4.5), layout="constrained")
    _draw_roc(
        roc.subplots(),
        report,
        title="ROC on {n_lenses} lenses, {n_non} non-lenses",
        ten_fp_line=False,
    )
    roc_path = folder / f"{prefix}.png"
    roc.savefig(roc_path, dpi=110)

    hist = Figure(figsize=(3.2 * len(names), 3.2), layout="constrained")
    axes = np.atleast_1d(hist.subplots(1, len(names), sharey=True))
    bins = np.linspace(0.0, 1.0, 41)
    for ax, name in zip(axes, names, strict=True):
        values = report.scores[name]
        ax.hist(values[~report.is_lens], bins=bins, alpha=0.6, label="non-lenses")
        ax.hist(values[report.is_lens], bins=bins, alpha=0.6, label="lenses")
        ax.axvline(report.threshold, color="k", lw=0.8, ls="--")
        ax.set_yscale("log")
        ax.set_xlabel(f"{name} score")
        ax.set_title(name)
    axes[0].set_ylabel("cutouts")
    axes[0].legend(fontsize=7)
    hist_path = folder / f"{prefix}_scores.png"
    hist.savefig(hist_path, dpi=110)
    return [roc_path, hist_path]


def write_roc_panels(reports: Mapping[str, EvaluationReport], path: Path) -> Path:
    """One ROC panel (log FPR) per labelled set, every scorer in each, as one PNG; the path."""
    from matplotlib.figure import Figure

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(5.0 * max(len(reports), 1), 4.5), layout="constrained")
    axes = np.atleast_1d(figure.subplots(1, max(len(reports), 1), squeeze=False)[0])
    for ax, (label, report) in zip(axes, reports.items(), strict=False):
        title = f"{label}: {{n_lenses:,}} lenses, {{n_non:,}} non-lenses"
        _draw_roc(ax, report, title=title, ten_fp_line=True)
    figure.savefig(path, dpi=100)
    return path
