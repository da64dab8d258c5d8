"""Learning from grades: consensus to labels, fine-tuning from a grades database, the trial."""

from __future__ import annotations

import json
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from typer.testing import CliRunner

from lensflow.cli import app
from lensflow.errors import (
    USER_ERRORS,
    ConfigError,
    MissingInputError,
    StorageError,
    TrainingError,
)
from lensflow.inspect.grades import GradeBook
from lensflow.registry import load_manifest
from lensflow.sessions import load_session, run_batched
from lensflow.train.config import CutoutSet, MemberConfig, TrainConfig
from lensflow.train.data import load_cutouts, split_validation
from lensflow.train.finetune import FineTuneSettings, fine_tune_from_grades
from lensflow.train.grade_trial import HELD_OUT, run_trial, script_grades
from lensflow.train.grades import (
    Mixing,
    labels_from_consensus,
    load_graded_set,
    read_consensus,
)
from lensflow.train.manifest import take_photometry, write_manifest
from lensflow.train.members import train_member
from tests.train.helpers import write_labelled_store

runner = CliRunner()


def _graded(tmp_path: Path, grades: dict[int, Sequence[str]]) -> Path:
    """A SQLite grades database: candidate id -> one grade per grader (g1, g2, ...)."""
    db = tmp_path / "grades.sqlite"
    book = GradeBook(f"sqlite:///{db}")
    for candidate_id, given in grades.items():
        for k, grade in enumerate(given):
            book.add(candidate_id, grader=f"g{k + 1}", grade=grade)
    book.close()
    return db


def test_consensus_becomes_labels_by_the_rule(tmp_path: Path) -> None:
    db = _graded(
        tmp_path,
        {
            1: "AA0",  # mean 2: B, a lens
            2: "AB",  # 2.5: A, a lens
            3: "000",  # a non-lens
            4: "BB0",  # 1.33: C, dropped
            5: "A0",  # 1.5 exactly: a tie, dropped
            6: "000B",  # 0.5 exactly: a tie, dropped
            7: "0000B",  # 0.4: a non-lens
            8: "A",  # one grader: too few
            9: "CC",  # C, dropped
        },
    )
    _, agreed = read_consensus(db)
    labels = labels_from_consensus(agreed, min_graders=2)
    assert labels.ids.tolist() == [1, 2, 3, 7]
    assert labels.is_lens.tolist() == [True, True, False, False]
    assert labels.grade_class.tolist() == ["B", "A", "0", "0"]
    assert dict(labels.dropped) == {"few_graders": 1, "tie": 2, "consensus_C": 2}
    one = labels_from_consensus(agreed, min_graders=1)
    assert 8 in one.ids.tolist() and one.dropped["few_graders"] == 0


def test_a_graders_latest_grade_counts(tmp_path: Path) -> None:
    db = _graded(tmp_path, {1: "00"})
    book = GradeBook(f"sqlite:///{db}")
    book.add(1, grader="g1", grade="A")
    book.add(1, grader="g2", grade="A")  # both looked again: now a sure lens
    book.close()
    labels = labels_from_consensus(read_consensus(db)[1])
    assert labels.is_lens.tolist() == [True] and labels.grade_class.tolist() == ["A"]


def test_a_missing_or_garbage_database_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(MissingInputError, match=r"no grades database here.*lensflow inspect"):
        read_consensus(tmp_path / "none.sqlite")
    assert not (tmp_path / "none.sqlite").exists()  # reading never creates one
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database" * 50)
    with pytest.raises(StorageError, match=r"garbage\.sqlite"):
        read_consensus(garbage)
    empty = tmp_path / "empty"
    empty.mkdir()
    GradeBook(f"sqlite:///{empty / 'grades.sqlite'}").close()
    with pytest.raises(TrainingError, match="holds no grades"):
        read_consensus(empty)  # a scan folder: its grades.sqlite
    with pytest.raises(ConfigError):
        read_consensus("nonsense-driver://x/y")


def test_the_mixing_rule_gives_the_stated_fraction() -> None:
    assert Mixing().simulated_rows(100) == 100
    assert Mixing(graded_fraction=0.25, repeats=2).simulated_rows(100) == 600
    assert Mixing(graded_fraction=0.25, repeats=2).simulated_rows(100, repeated=False) == 300
    with pytest.raises(ConfigError, match="between 0 and 1"):
        Mixing(graded_fraction=1.0)


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A training run of one small member on noise cutouts: its checkpoints, ONNX, manifest."""
    base = tmp_path_factory.mktemp("run")
    store = write_labelled_store(base / "train", 48, seed=1)
    config = TrainConfig(
        members=(MemberConfig(name="att", architecture="attention", seed=1),),
        training_set=CutoutSet(store=store),
        test_set=None,
        validation_fraction=0.25,
        epochs=1,
        batch_size=16,
        device="cpu",
        work=base / "work",
        output=base / "models",
    )
    data = load_cutouts(store, base / "train" / "labels.parquet")
    fit_rows, val_rows = split_validation(data.labels.is_lens, fraction=0.25, seed=1)
    manifest = base / "models" / "manifest.toml"
    take_photometry(config.output)
    from lensflow.surveys import survey_profile

    for member in config.members:
        entry = train_member(
            member,
            train=data.subset(fit_rows),
            val=data.subset(val_rows),
            config=config,
            device=torch.device("cpu"),
            survey=survey_profile("lsst"),
        )
        write_manifest(manifest, members=[entry], threshold=0.5)
    return {"config": config, "manifest": manifest, "base": base}


@pytest.fixture(scope="module")
def trial(trained: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """The trial at a small size: pools of 50, the top 40 graded by 3 scripts wrong 10 %."""
    folder = tmp_path_factory.mktemp("trial")
    record = run_trial(
        folder,
        config=trained["config"],
        manifest=trained["manifest"],
        pool_lenses=12,
        pool_non_lenses=38,
        top=40,
        graders=3,
        error_rate=0.1,
        settings=FineTuneSettings(epochs=1, lr_scale=1.0, test_set=False),
    )
    return {"record": record, "folder": folder}


def test_the_trial_grades_by_script_into_a_real_database(trial: dict[str, Any]) -> None:
    record, folder = trial["record"], trial["folder"]
    grading = record["grading"]
    assert (
        grading["grades"] == 3 * 40
        and len(GradeBook(f"sqlite:///{folder / 'grades.sqlite'}").history()) == 120
    )
    assert 0 < grading["wrong_grades"] < 40  # about 12 of 120 at 10 %
    accuracy = record["consensus_vs_truth"]
    assert accuracy["labelled"] + accuracy["dropped"] == 40
    assert accuracy["right"] > accuracy["wrong"]
    graded = record["graded_candidates"]
    assert graded["pool"] == 50 and graded["lenses"] + graded["non_lenses"] == 40


def test_fine_tuning_changes_the_members_and_reports_before_and_after(
    trained: dict[str, Any], trial: dict[str, Any]
) -> None:
    manifest = Path(trial["record"]["fine_tuning"]["manifest"])
    old, new = load_manifest(trained["manifest"]), load_manifest(manifest)
    assert [m.name for m in new.ensemble.members] == ["att"]
    for before, after in zip(old.ensemble.members, new.ensemble.members, strict=True):
        assert after.sha256 != before.sha256
        tuned = after.training["fine_tuning"]
        assert tuned["from"]["sha256"] == before.sha256
        assert tuned["n_simulated_train"] == tuned["n_graded_train"]  # half graded, half not
    held = trial["record"]["held_out_candidates"]
    sets = trial["record"]["sets"]
    assert set(sets) == {"graded", HELD_OUT}
    for when in ("before", "after"):
        scored = sets[HELD_OUT][when]["ensemble"]
        assert (scored["n_lenses"], scored["n_non_lenses"]) == (held["lenses"], held["non_lenses"])
        assert {"auroc", "tpr0", "tpr10"} <= set(scored)
    images = load_cutouts(Path(held["store"]), Path(held["labels"])).images
    for before, after in zip(old.ensemble.members, new.ensemble.members, strict=True):
        p_before = run_batched(
            load_session(old.path_of(before.file), before.sha256), images, batch=64
        )
        p_after = run_batched(load_session(new.path_of(after.file), after.sha256), images, batch=64)
        assert np.max(np.abs(p_after - p_before)) > 1e-3
    with manifest.open("rb") as f:
        raw = tomllib.load(f)
    recorded = raw["ensemble"]["metrics"]["evaluation_sets"][HELD_OUT]
    assert recorded["tpr10"] == sets[HELD_OUT]["after"]["ensemble"]["tpr10"]
    report = json.loads((manifest.parent / "from-grades.json").read_text())
    assert report["sets"][HELD_OUT]["before"] == sets[HELD_OUT]["before"]
    assert "ties" in report["rule"]


def test_the_shipped_manifest_is_left_alone(trained: dict[str, Any], trial: dict[str, Any]) -> None:
    manifest = Path(trial["record"]["fine_tuning"]["manifest"])
    assert manifest.parent != trained["manifest"].parent
    assert (
        load_manifest(trained["manifest"]).ensemble.members[0].training.get("fine_tuning") is None
    )


def test_missing_or_foreign_checkpoints_are_refused(
    trained: dict[str, Any], trial: dict[str, Any], tmp_path: Path
) -> None:
    config: TrainConfig = trained["config"]
    folder = trial["folder"]
    common = {
        "grades": folder / "grades.sqlite",
        "cutouts": folder / "graded" / "candidates" / "cutouts.zarr",
        "output": tmp_path / "models",
        "settings": FineTuneSettings(epochs=1, test_set=False),
    }
    elsewhere = config.model_copy(update={"work": tmp_path / "nowhere"})
    with pytest.raises(TrainingError, match=r"no checkpoints of member 'att'.*only ONNX"):
        fine_tune_from_grades(elsewhere, manifest=trained["manifest"], **common)
    tuned = Path(trial["record"]["fine_tuning"]["manifest"])  # other weights than the checkpoints
    with pytest.raises(TrainingError, match=r"these weights are not those of att\.onnx"):
        fine_tune_from_grades(config, manifest=tuned, **common)


def test_too_few_graded_lenses_are_refused(trained: dict[str, Any], tmp_path: Path) -> None:
    store = write_labelled_store(tmp_path / "cands", 12, seed=4, first_id=1 << 58)
    ids = np.arange(12, dtype=np.int64) * 3 + (1 << 58)
    db = tmp_path / "g.sqlite"
    script_grades(db, ids, np.zeros(12, dtype=bool), graders=2, error_rate=0.0)
    assert load_graded_set(db, store).labels.n_non_lenses == 12
    with pytest.raises(TrainingError, match=r"0 lenses.*grade more candidates"):
        fine_tune_from_grades(
            trained["config"], grades=db, cutouts=store, manifest=trained["manifest"]
        )


def _config_file(tmp_path: Path, trained: dict[str, Any]) -> Path:
    config: TrainConfig = trained["config"]
    path = tmp_path / "train.toml"
    path.write_text(
        f'work = "{config.work}"\ndevice = "cpu"\n'
        f'[training_set]\nstore = "{config.training_set.store}"\n'
        '[[members]]\nname = "att"\narchitecture = "attention"\nseed = 1\n'
    )
    return path


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--from-grades", "{tmp}/garbage.sqlite", "--cutouts", "{tmp}"], "garbage.sqlite"),
        (["--from-grades", "{tmp}/none.sqlite", "--cutouts", "{tmp}"], "no grades database"),
        (["--from-grades", "{tmp}/garbage.sqlite", "--scan", "{tmp}"], "not a scan folder"),
        (["--from-grades", "{tmp}/garbage.sqlite"], "--scan SCAN_DIR"),
        (["--scan", "{tmp}"], "need --from-grades"),
    ],
)
def test_the_command_refuses_bad_input_in_one_line(
    trained: dict[str, Any], tmp_path: Path, extra: list[str], message: str
) -> None:
    (tmp_path / "garbage.sqlite").write_bytes(b"not sqlite" * 100)
    args = [a.format(tmp=tmp_path) for a in extra]
    config = _config_file(tmp_path, trained)
    result = runner.invoke(app, ["train", "ensemble", "--config", str(config), *args])
    assert result.exit_code in USER_ERRORS, result.output
    stderr = result.stderr  # type: ignore[attr-defined]
    assert stderr.startswith("error: ") and stderr.count("\n") == 1 and message in stderr
    assert "Traceback" not in result.output
