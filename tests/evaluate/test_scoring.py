"""A labelled store evaluated end to end, with ONNX members whose scores are known."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lensflow.errors import EvaluationError
from lensflow.evaluate import EvaluationReport, evaluate_store


def test_store_evaluated_end_to_end(evaluated: EvaluationReport) -> None:
    report = evaluated
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
    assert report.score_seconds is not None and set(report.score_seconds) == {"a", "b"}


def test_side_by_side_sessions_give_the_same_scores(
    labelled_store: tuple[Path, Path, Path],
) -> None:
    store, labels, manifest = labelled_store
    alone = evaluate_store(store, labels, manifest=manifest, batch=2)
    together = evaluate_store(store, labels, manifest=manifest, batch=2, workers=3)
    for name, scores in alone.scores.items():
        np.testing.assert_array_equal(together.scores[name], scores)


def test_a_store_read_in_several_blocks_gives_the_same_scores(
    labelled_store: tuple[Path, Path, Path], evaluated: EvaluationReport
) -> None:
    store, labels, manifest = labelled_store
    # blocks of about 4 cutouts: each 6-cutout group is a block of its own
    blocks = evaluate_store(store, labels, manifest=manifest, batch=1)
    np.testing.assert_array_equal(blocks.ids, evaluated.ids)
    for name, scores in evaluated.scores.items():
        np.testing.assert_allclose(blocks.scores[name], scores, rtol=1e-6)


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
