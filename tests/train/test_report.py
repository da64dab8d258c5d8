"""The run report: JSON rewritten atomically after every change, steps, set summaries."""

from __future__ import annotations

import dataclasses
import json
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from lensflow.evaluate import build_report
from lensflow.labels import Labels
from lensflow.train.report import AIMS, RunReport, environment, summarise


def _read(path: Path) -> dict[str, Any]:
    written: dict[str, Any] = json.loads(path.read_text())
    return written


def test_every_change_leaves_a_valid_json_file_and_no_temp_file(tmp_path: Path) -> None:
    path = tmp_path / "run" / "report.json"
    run = RunReport(path)
    run.update(config={"work": tmp_path, "rate": np.float32(2.5), "loss": float("nan")})
    written = _read(path)
    assert written["config"] == {"work": str(tmp_path), "rate": 2.5, "loss": None}
    assert written["steps"] == []
    with run.step("simulate"):
        assert [s["step"] for s in _read(path)["steps"]] == []  # recorded when it ends
    with pytest.raises(RuntimeError, match="boom"), run.step("train"):
        raise RuntimeError("boom")
    run.merge("members", "a", {"epochs": np.int64(3)})
    run.merge("members", "a", {"seconds": 1.5})
    written = _read(path)
    assert [(s["step"], s["status"]) for s in written["steps"]] == [
        ("simulate", "done"),
        ("train", "failed"),
    ]
    assert all(s["seconds"] >= 0 and "T" in s["started"] for s in written["steps"])
    assert written["members"] == {"a": {"epochs": 3, "seconds": 1.5}}
    assert written["elapsed_seconds"] >= 0
    assert sorted(p.name for p in path.parent.iterdir()) == ["report.json"]


def test_steps_in_two_threads_are_all_recorded(tmp_path: Path) -> None:
    path = tmp_path / "report.json"
    run = RunReport(path)

    def steps(prefix: str) -> None:
        for i in range(20):
            with run.step(f"{prefix} {i}"):
                run.merge("sets", prefix, {str(i): i})

    threads = [threading.Thread(target=steps, args=(p,)) for p in ("left", "right")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    written = _read(path)
    assert len(written["steps"]) == 40
    assert written["sets"] == {p: {str(i): i for i in range(20)} for p in ("left", "right")}


def test_without_a_path_nothing_is_written(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run = RunReport(None)
    with run.step("only"):
        run.update(finished="now")
    assert run.data["steps"][0]["status"] == "done"
    assert run.data["finished"] == "now"
    assert list(tmp_path.iterdir()) == []


def test_the_environment_names_versions_and_the_device() -> None:
    env = environment(torch.device("cpu"))
    assert env["torch"] == torch.__version__
    assert env["cpu_count"] == os.cpu_count()
    assert env["device"] == "cpu"
    assert "gpu" not in env


def test_a_set_summary_names_the_best_member_the_aims_and_the_top_class() -> None:
    classes = np.array(["lens"] * 4 + ["ring"] * 6 + ["star"] * 2, dtype=object)
    is_lens = classes == "lens"
    labels = Labels(ids=np.arange(classes.size, dtype=np.int64), is_lens=is_lens, classes=classes)
    perfect = np.where(is_lens, 0.9, 0.1).astype(np.float32)
    weak = perfect.copy()
    weak[4] = 0.95  # a ring above every lens: TPR0 falls to 0
    scores: dict[str, np.ndarray] = {
        "weak": weak,
        "good": perfect,
        "ensemble": (weak + perfect) / 2,
    }
    report = build_report(labels, scores, threshold=0.5)
    report = dataclasses.replace(report, score_seconds={"weak": 0.5, "good": 2.0})
    summary = summarise(report)
    assert summary["best_member_by_tpr10"] == "good"
    assert summary["ensemble_beats_best_member_on_tpr10"] is False  # ties with "good"
    assert set(summary["aims"]) == set(AIMS)
    assert summary["aims"]["auroc"] == {"aim": AIMS["auroc"], "value": 1.0, "reached": True}
    assert summary["most_false_positives_class"] == "ring"
    assert summary["onnxruntime_images_per_second"] == {"weak": 24, "good": 6}
    assert summary["metrics"] == report.as_dict()
