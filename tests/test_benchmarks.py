"""The benchmarks' harness: interleaved rounds, one ratio convention, the README's table."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from benchmarks import common, readme
from benchmarks.common import NOISE, Interleaved, interleave


def test_interleave_alternates_and_reports_the_rate_ratio() -> None:
    calls: list[str] = []

    def slow() -> None:
        calls.append("A")
        time.sleep(0.02)

    def fast() -> None:
        calls.append("B")
        time.sleep(0.01)

    result = interleave(slow, fast, rounds=5)
    assert calls == ["A", "B"] * 6  # a warm-up pair, then five rounds
    assert len(result.lensflow) == len(result.bare) == 5
    assert 0.3 < result.ratio < 0.8  # lensflow half as fast: a rate ratio near 0.5
    assert not result.noisy
    assert len(result.load_before) == len(result.load_after) == 3
    with pytest.raises(ValueError, match="at least 5"):
        interleave(slow, fast, rounds=4)


def test_a_ratio_above_one_for_identical_work_is_flagged() -> None:
    load = (1.0, 1.0, 1.0)
    quicker = Interleaved((1.0,) * 5, (1.1,) * 5, load, load)
    assert quicker.ratio == pytest.approx(1.1) and quicker.ratio > NOISE and quicker.noisy
    assert "noise" in quicker.ratio_cell()
    same = Interleaved((1.0, 1.01, 0.99, 1.0, 1.0), (1.0,) * 5, load, load)
    assert not same.noisy and same.ratio_cell().startswith("1.00 [0.99-1.01]")


def test_the_readme_table_is_rebuilt_between_its_markers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    results = tmp_path / "results"
    results.mkdir()
    row = {
        "stage": "catalog",
        "lensflow": "9 rows/s",
        "bare": "10 rows/s",
        "ratio": "0.90",
        "load": "load 1.00 -> 2.00",
    }
    (results / "catalog.json").write_text(json.dumps({"rows": [row]}))
    monkeypatch.setattr(common, "RESULTS", results)
    monkeypatch.setattr(readme, "RESULTS", results)
    path = tmp_path / "README.md"
    path.write_text(
        f"# x\n\n## Benchmarks\n\nbefore\n{readme.START}\nold table\n{readme.END}\nafter\n"
    )
    assert readme.update(path)
    text = path.read_text()
    assert "old table" not in text and text.startswith("# x\n\n## Benchmarks\n\nbefore\n")
    assert "| catalog | 9 rows/s | 10 rows/s | 0.90 | 1.00 -> 2.00 |" in text
    assert text.endswith(f"{readme.END}\nafter\n")
    path.write_text("no markers")
    assert not readme.update(path)
