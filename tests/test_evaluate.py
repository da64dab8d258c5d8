"""The field's metrics on hand-computable cases and properties, and a store evaluated end to end."""

from __future__ import annotations

import json
from itertools import product
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lensflow.cutouts import create_store, write_group
from lensflow.evaluate import (
    EvaluationError,
    auroc,
    evaluate_store,
    metrics_of,
    roc_curve,
    tpr0,
    tpr10,
    write_plots,
    write_report_json,
    write_roc_panels,
)
from lensflow.registry import sha256_of


def test_perfect_ranking() -> None:
    scores = np.array([0.9, 0.8, 0.2, 0.1])
    labels = np.array([True, True, False, False])
    assert auroc(scores, labels) == 1.0
    assert tpr0(scores, labels) == 1.0
    assert tpr10(scores, labels) == 1.0


def test_reversed_ranking() -> None:
    scores = np.array([0.1, 0.2, 0.8, 0.9])
    labels = np.array([1, 1, 0, 0])
    assert auroc(scores, labels) == 0.0
    assert tpr0(scores, labels) == 0.0
    assert tpr10(scores, labels) == 1.0  # two false positives are fewer than ten


def test_ties_fall_on_the_same_side() -> None:
    # lens 0.9; lens 0.5 tied with a non-lens 0.5; non-lens 0.1
    scores = np.array([0.9, 0.5, 0.5, 0.1])
    labels = np.array([True, True, False, False])
    assert auroc(scores, labels) == pytest.approx(3.5 / 4)
    assert tpr0(scores, labels) == 0.5  # the tied lens comes only with its false positive
    curve = roc_curve(scores, labels)
    np.testing.assert_array_equal(curve.true_positives, [0, 1, 2, 2])
    np.testing.assert_array_equal(curve.false_positives, [0, 0, 1, 2])
    np.testing.assert_array_equal(curve.thresholds, [np.inf, 0.9, 0.5, 0.1])


def test_every_lens_tied_with_the_top_non_lens() -> None:
    scores = np.array([0.7, 0.7, 0.7, 0.2])
    labels = np.array([True, True, False, False])
    assert tpr0(scores, labels) == 0.0
    assert auroc(scores, labels) == pytest.approx((0.5 + 0.5 + 1 + 1) / 4)


def _nine_or_ten(tenth_non_lens: float) -> tuple[np.ndarray, np.ndarray]:
    """5 lenses at 1.0, 5 at 0.5; nine non-lenses at 0.8, one at `tenth_non_lens`, 90 at 0.1."""
    lenses = [1.0] * 5 + [0.5] * 5
    non_lenses = [0.8] * 9 + [tenth_non_lens] + [0.1] * 90
    scores = np.array(lenses + non_lenses)
    labels = np.array([True] * len(lenses) + [False] * len(non_lenses))
    return scores, labels


def test_tpr10_allows_nine_false_positives_not_ten() -> None:
    assert tpr10(*_nine_or_ten(0.4)) == 1.0  # all lenses above 0.5 come with 9 false positives
    assert tpr10(*_nine_or_ten(0.6)) == 0.5  # a tenth false positive above the lower lenses
    assert tpr10(*_nine_or_ten(0.5)) == 0.5  # ...or tied with them
    assert tpr0(*_nine_or_ten(0.4)) == 0.5


def test_metrics_of_counts_classes() -> None:
    scores, labels = _nine_or_ten(0.4)
    m = metrics_of(scores, labels)
    assert (m.n_lenses, m.n_non_lenses) == (10, 100)
    assert m.auroc == pytest.approx(auroc(scores, labels))
    assert (m.tpr0, m.tpr10) == (tpr0(scores, labels), tpr10(scores, labels))


@pytest.mark.parametrize(
    ("scores", "labels", "message"),
    [
        ([0.1, 0.2], [True, True], "at least one lens and one non-lens"),
        ([0.1, 0.2], [False, False], "at least one lens and one non-lens"),
        ([0.1, np.nan], [True, False], "not finite"),
        ([0.1, 0.2, 0.3], [True, False], "3 scores for 2 labels"),
        ([0.1, 0.2], [2, 0], "booleans or 0/1"),
    ],
)
def test_unusable_inputs_are_refused(scores: list[float], labels: list[int], message: str) -> None:
    with pytest.raises(EvaluationError, match=message):
        auroc(np.array(scores), np.array(labels))


def _both_classes(pairs: list[tuple[int, bool]]) -> bool:
    return any(lab for _, lab in pairs) and not all(lab for _, lab in pairs)


_scored = st.lists(st.tuples(st.integers(0, 12), st.booleans()), min_size=2, max_size=60).filter(
    _both_classes
)


@settings(max_examples=200, deadline=None)
@given(_scored)
def test_auroc_is_the_mann_whitney_fraction(pairs: list[tuple[int, bool]]) -> None:
    scores = np.array([s for s, _ in pairs], dtype=float)
    labels = np.array([lab for _, lab in pairs])
    pos, neg = scores[labels], scores[~labels]
    u = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in product(pos, neg))
    assert auroc(scores, labels) == pytest.approx(u / (pos.size * neg.size), abs=1e-12)


@settings(max_examples=200, deadline=None)
@given(_scored)
def test_metrics_ignore_monotone_transforms(pairs: list[tuple[int, bool]]) -> None:
    scores = np.array([s for s, _ in pairs], dtype=float)
    labels = np.array([lab for _, lab in pairs])
    transformed = np.arctan(0.7 * scores**3 - 4.0)  # strictly increasing, no ties made
    for metric in (auroc, tpr0, tpr10):
        assert metric(transformed, labels) == pytest.approx(metric(scores, labels), abs=1e-12)


@settings(max_examples=100, deadline=None)
@given(_scored)
def test_tpr_matches_brute_force(pairs: list[tuple[int, bool]]) -> None:
    scores = np.array([s for s, _ in pairs], dtype=float)
    labels = np.array([lab for _, lab in pairs])
    best = {0: 0.0, 9: 0.0}
    for t in np.unique(scores):
        chosen = scores >= t
        fp = int((chosen & ~labels).sum())
        tpr = float((chosen & labels).sum() / labels.sum())
        for limit in (0, 9):
            if fp <= limit:
                best[limit] = max(best[limit], tpr)
    assert tpr0(scores, labels) == best[0]
    assert tpr10(scores, labels) == best[9]


# --- a store evaluated end to end, with ONNX members whose scores are known ---


def _mean_sigmoid_model(path: Path, *, input_name: str, rank: int, gain: float) -> None:
    """An ONNX graph giving sigmoid(gain x mean over every axis but the first), (N,)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    axes = list(range(1, rank))
    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", [input_name], ["mean"], axes=axes, keepdims=0),
            helper.make_node("Mul", ["mean", "gain"], ["scaled"]),
            helper.make_node("Sigmoid", ["scaled"], ["probability"]),
        ],
        "mean_sigmoid",
        [
            helper.make_tensor_value_info(
                input_name, TensorProto.FLOAT, ["batch", *[None] * (rank - 1)]
            )
        ],
        [helper.make_tensor_value_info("probability", TensorProto.FLOAT, ["batch"])],
        [helper.make_tensor("gain", TensorProto.FLOAT, [], [gain])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))


@pytest.fixture
def labelled_store(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A 2-group store: 4 lenses (mean +2), 3 spirals (mean +1), 5 rings (mean -3); manifest."""
    models = tmp_path / "models"
    models.mkdir()
    _mean_sigmoid_model(models / "photometry.onnx", input_name="magnitudes", rank=2, gain=1.0)
    _mean_sigmoid_model(models / "a.onnx", input_name="images", rank=4, gain=1.0)
    _mean_sigmoid_model(models / "b.onnx", input_name="images", rank=4, gain=0.5)
    member = 'bands = ["g", "r", "i"]\nsize = 8\npixel_scale_arcsec = 0.2\nunits = "nJy"\n'
    (models / "manifest.toml").write_text(
        f"""version = 1
[photometry]
name = "p"
file = "photometry.onnx"
sha256 = "{sha256_of(models / "photometry.onnx")}"
threshold = 0.5
features = ["mag_g", "mag_r", "mag_i", "mag_z"]
[ensemble]
threshold = 0.5
[[ensemble.members]]
name = "a"
file = "a.onnx"
sha256 = "{sha256_of(models / "a.onnx")}"
{member}
[[ensemble.members]]
name = "b"
file = "b.onnx"
sha256 = "{sha256_of(models / "b.onnx")}"
{member}"""
    )
    store = tmp_path / "cutouts.zarr"
    create_store(
        store,
        bands=["g", "r", "i"],
        pixel_scale_arcsec=0.2,
        psf_fwhm_arcsec={"g": 0.85, "r": 0.75, "i": 0.7},
        cutout_size=8,
    )
    classes = ["lens"] * 4 + ["spiral"] * 3 + ["ring"] * 5
    level = {"lens": 2.0, "spiral": 1.0, "ring": -3.0}
    ids = np.arange(100, 100 + len(classes), dtype=np.int64) * 7
    images = np.stack([np.full((3, 8, 8), level[c], np.float32) for c in classes])
    write_group(store, "first", ids=ids[::2], images=images[::2])
    write_group(store, "nested/second", ids=ids[1::2], images=images[1::2])
    labels = tmp_path / "labels.parquet"
    order = np.random.default_rng(3).permutation(ids.size)
    pq.write_table(
        pa.table(
            {
                "id": pa.array(ids[order], pa.int64()),
                "is_lens": [classes[i] == "lens" for i in order],
                "class": [classes[i] for i in order],
            }
        ),
        labels,
    )
    return store, labels, models / "manifest.toml"


def test_store_evaluated_end_to_end(
    labelled_store: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    store, labels, manifest = labelled_store
    report = evaluate_store(store, labels, manifest=manifest, batch=3)
    assert set(report.scores) == {"a", "b", "ensemble"}
    assert report.ids.size == 12
    level = np.where(report.is_lens, 2.0, np.where(report.classes == "spiral", 1.0, -3.0))
    expected_a, expected_b = 1 / (1 + np.exp(-level)), 1 / (1 + np.exp(-level / 2))
    np.testing.assert_allclose(report.scores["a"], expected_a, rtol=1e-6)
    np.testing.assert_allclose(report.scores["ensemble"], (expected_a + expected_b) / 2, rtol=1e-6)
    for name in ("a", "b", "ensemble"):
        m = report.metrics[name]
        assert (m.auroc, m.tpr0, m.tpr10, m.n_lenses, m.n_non_lenses) == (1.0, 1.0, 1.0, 4, 8)
    assert report.fpr_by_class == {"ring": 0.0, "spiral": 1.0}
    out = write_report_json(report, tmp_path / "out" / "report.json")
    written = json.loads(out.read_text())
    assert list(written) == ["ensemble", "a", "b"]
    assert set(written["a"]) == {"auroc", "tpr0", "tpr10", "n_lenses", "n_non_lenses"}
    assert set(written["ensemble"]) == {
        "auroc",
        "tpr0",
        "tpr10",
        "n_lenses",
        "n_non_lenses",
        "fpr_by_class",
        "false_positives_by_class",
        "top_non_lenses_by_class",
    }
    assert written["ensemble"]["false_positives_by_class"] == {"ring": 0, "spiral": 3}
    assert written["ensemble"]["top_non_lenses_by_class"] == {"ring": 5, "spiral": 3}
    assert report.score_seconds is not None and set(report.score_seconds) == {"a", "b"}
    plots = write_plots(report, tmp_path / "plots")
    assert [p.name for p in plots] == ["roc.png", "roc_scores.png"]
    assert all(p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" for p in plots)


def test_side_by_side_sessions_give_the_same_scores(
    labelled_store: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    store, labels, manifest = labelled_store
    alone = evaluate_store(store, labels, manifest=manifest, batch=2)
    together = evaluate_store(store, labels, manifest=manifest, batch=2, workers=3)
    for name, scores in alone.scores.items():
        np.testing.assert_array_equal(together.scores[name], scores)
    panels = write_roc_panels({"one": alone, "two": together}, tmp_path / "panels.png")
    assert panels.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_ids_missing_from_either_side_are_refused(
    labelled_store: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    store, labels, manifest = labelled_store
    table = pq.read_table(labels)
    fewer = tmp_path / "fewer.parquet"
    pq.write_table(table.slice(1), fewer)
    missing = int(table["id"][0].as_py())
    with pytest.raises(EvaluationError, match=rf"1 cutouts in the store are absent.*{missing}"):
        evaluate_store(store, fewer, manifest=manifest)
    more = tmp_path / "more.parquet"
    extra = pa.table({"id": pa.array([1], pa.int64()), "is_lens": [False], "class": ["ring"]})
    pq.write_table(pa.concat_tables([table, extra]), more)
    with pytest.raises(EvaluationError, match=r"1 labelled ids are absent.*\[1\]"):
        evaluate_store(store, more, manifest=manifest)


def test_labels_without_the_needed_columns_are_refused(
    labelled_store: tuple[Path, Path, Path], tmp_path: Path
) -> None:
    store, _, manifest = labelled_store
    bad = tmp_path / "bad.parquet"
    pq.write_table(pa.table({"id": pa.array([1], pa.int64())}), bad)
    with pytest.raises(EvaluationError, match="lack columns"):
        evaluate_store(store, bad, manifest=manifest)
    floats = tmp_path / "floats.parquet"
    pq.write_table(pa.table({"id": [1.0], "is_lens": [True]}), floats)
    with pytest.raises(EvaluationError, match="must be int64"):
        evaluate_store(store, floats, manifest=manifest)
