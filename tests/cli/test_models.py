"""`lensflow train calibrate` and `lensflow evaluate`: what they print and write, and refusals."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lensflow.cli import app
from lensflow.errors import USER_ERRORS
from tests.evaluate.helpers import noisy_set, write_models

runner = CliRunner()
PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def sets(tmp_path: Path) -> dict[str, Path]:
    """A manifest of two members, a validation set and a second set of other ids."""
    manifest = write_models(tmp_path / "models", {"sharp": 1.5, "soft": 0.5})
    store, labels = noisy_set(tmp_path / "validation", n_lenses=80, n_non_lenses=400, seed=1)
    other, other_labels = noisy_set(
        tmp_path / "evaluation", n_lenses=80, n_non_lenses=400, seed=2, first_id=5_000
    )
    return {
        "manifest": manifest,
        "store": store,
        "labels": labels,
        "other": other,
        "other_labels": other_labels,
    }


def _calibrate(sets: dict[str, Path], *extra: str) -> object:
    args = ["train", "calibrate", "--models", str(sets["manifest"]), "--store", str(sets["store"])]
    return runner.invoke(app, [*args, "--labels", str(sets["labels"]), *extra])


def test_calibrate_writes_the_tables_and_prints_the_fit(sets: dict[str, Path]) -> None:
    result = _calibrate(sets, "--prior", "1e-3")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    output = result.output  # type: ignore[attr-defined]
    assert "combination: bias" in output and "sharp" in output and "soft" in output
    assert "in-sample" in output and "purity at prior lens rate 0.001 on 80 lenses" in output
    with sets["manifest"].open("rb") as f:
        ensemble = tomllib.load(f)["ensemble"]
    assert ensemble["calibration"]["method"] == "isotonic"
    assert ensemble["combination"]["fitted_on"]["n_non_lenses"] == 400


def test_evaluate_gives_purity_and_both_ensemble_scores_when_calibrated(
    sets: dict[str, Path], tmp_path: Path
) -> None:
    assert _calibrate(sets).exit_code == 0  # type: ignore[attr-defined]
    out, plots = tmp_path / "report.json", tmp_path / "plots"
    args = [str(sets["other"]), str(sets["other_labels"]), "--models", str(sets["manifest"])]
    args += ["--json", str(out), "--plots", str(plots), "--prior", "1e-4"]
    result = runner.invoke(app, ["evaluate", *args])
    assert result.exit_code == 0, result.output
    assert "false-positive rate by class at 90% completeness" in result.output
    assert "p_lens>=" in result.output and "<p_lens>" in result.output
    report = json.loads(out.read_text())
    assert list(report) == ["ensemble", "mean", "sharp", "soft", "purity"]
    for name in ("ensemble", "mean", "sharp", "soft"):
        at = report[name]["at_completeness"]
        assert at["completeness"] == 0.9 and set(at["fpr_by_class"]) == {"ring", "spiral"}
        assert report[name]["n_non_lenses"] == 400
    purity = report["purity"]
    assert (purity["prior"], purity["thresholds_on"], purity["n_lenses"]) == (1e-4, "p_lens", 80)
    assert set(purity["by_completeness"]) == {"0.50", "0.80", "0.90", "0.95"}
    assert "0.99" in purity["by_threshold"] and "10000" in purity["by_rank"]
    assert purity["by_completeness"]["0.90"]["completeness"] >= 0.9
    assert purity["reliability"] and purity["calibration_error"] < 0.2
    names = sorted(p.name for p in plots.iterdir())
    assert names == ["roc.png", "roc_purity.png", "roc_scores.png"]
    assert all((plots / n).read_bytes()[:8] == PNG for n in names)


def test_evaluate_without_a_calibration_tabulates_the_ensemble_score(
    sets: dict[str, Path], tmp_path: Path
) -> None:
    out = tmp_path / "report.json"
    args = [str(sets["other"]), str(sets["other_labels"]), "--models", str(sets["manifest"])]
    result = runner.invoke(app, ["evaluate", *args, "--json", str(out)])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert list(report) == ["ensemble", "sharp", "soft", "purity"]
    assert report["purity"]["thresholds_on"] == "ensemble" and "reliability" not in report["purity"]
    assert "score>=" in result.output and "<p_lens>" not in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [(["--prior", "0"], "strictly between 0 and 1"), (["--prior", "1.5"], "between 0 and 1")],
)
def test_a_bad_prior_is_one_line(sets: dict[str, Path], extra: list[str], message: str) -> None:
    for result in (
        _calibrate(sets, *extra),
        runner.invoke(app, ["evaluate", str(sets["other"]), str(sets["other_labels"]), *extra]),
    ):
        assert result.exit_code in USER_ERRORS  # type: ignore[attr-defined]
        stderr = result.stderr  # type: ignore[attr-defined]
        assert stderr.startswith("error: ") and stderr.count("\n") == 1 and message in stderr


def test_calibrate_refuses_a_small_or_held_out_set_in_one_line(
    sets: dict[str, Path], tmp_path: Path
) -> None:
    store, labels = noisy_set(tmp_path / "small", n_lenses=20, n_non_lenses=400, seed=3)
    args = ["train", "calibrate", "--models", str(sets["manifest"]), "--store", str(store)]
    result = runner.invoke(app, [*args, "--labels", str(labels)])
    assert result.exit_code in USER_ERRORS and result.stdout == ""
    assert "20 lenses and 400 non-lenses" in result.stderr and result.stderr.count("\n") == 1
    with sets["manifest"].open("a") as f:
        f.write(f'[ensemble.metrics.test_set]\nstore = "{sets["store"]}"\n')
    result = _calibrate(sets)
    assert result.exit_code in USER_ERRORS  # type: ignore[attr-defined]
    assert "is the test set recorded in" in result.stderr  # type: ignore[attr-defined]
    none = str(tmp_path / "none.toml")
    missing = runner.invoke(
        app, ["train", "calibrate", "--models", none, "--store", "s", "--labels", "l"]
    )
    assert missing.exit_code in USER_ERRORS and "no models manifest here" in missing.stderr
