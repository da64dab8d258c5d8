"""Does learning from grades help? A trial with grades made by a script from the truth.

1. Candidates as a scan finds them: a natural-mix pool is simulated and scored with the
   members of a manifest; its `top` highest ensemble scores are the candidates.
2. Grades by a script, not by hand: each of `graders` graders is wrong with probability
   `error_rate` (a lens graded 0, a non-lens graded B); otherwise a lens is graded A or B at
   even odds and a non-lens 0. They are written into a SQLite grades database through
   lensflow.inspect.grades, as the inspection app writes them.
3. The members are fine-tuned from that database (lensflow.train.finetune).
4. A held-out set drawn the same way from another seed (its top candidates by the original
   members, with their true labels) is scored before and after: AUROC, TPR0, TPR10 with the
   number of non-lenses.

It lives in the package, not in benchmarks/ (which measures speed), so that the test suite runs
this very code at a small size. The full trial: `python -m lensflow.train.grade_trial --config
TRAIN.toml --models MANIFEST --folder OUT` (see --help); it writes OUT/trial.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lensflow.cutouts import open_store
from lensflow.errors import ConfigError
from lensflow.evaluate import ENSEMBLE, evaluate_store
from lensflow.inspect.grades import GradeBook
from lensflow.io import write_text
from lensflow.labels import read_labels
from lensflow.surveys import survey_profile
from lensflow.train.config import CutoutSet, TrainConfig
from lensflow.train.data import LabelledCutouts, ensure_cutout_set
from lensflow.train.finetune import FineTuneSettings, HeldOutSet, fine_tune_from_grades
from lensflow.train.grades import (
    labels_from_consensus,
    read_consensus,
    read_cutouts_by_id,
    write_labelled_store,
)
from lensflow.train.plain import plain

logger = logging.getLogger(__name__)

HELD_OUT = "candidates"
"""The name of the held-out candidates (true labels) in the fine-tuning report."""


@dataclasses.dataclass(frozen=True)
class Candidates:
    """The top candidates of a scored pool: their store and true labels, and the counts."""

    store: Path
    labels: Path
    pool: int
    lenses: int
    non_lenses: int


def draw_candidates(
    folder: Path, pool: CutoutSet, *, config: TrainConfig, manifest: Path, top: int
) -> Candidates:
    """Simulate `pool` into folder/pool (reused when made before), score it with manifest's
    ensemble (ONNX Runtime) and write its `top` best (ties by id) to folder/candidates."""
    survey = survey_profile(config.survey)
    store, labels = ensure_cutout_set(
        pool, folder / "pool", survey=survey, workers=config.simulation_workers
    )
    scored = evaluate_store(store, labels, manifest=manifest, workers=config.evaluation_workers)
    order = np.lexsort((scored.ids, -scored.scores[ENSEMBLE].astype(np.float64)))[:top]
    chosen = np.sort(scored.ids[order])
    truth = read_labels(labels)
    rows = np.searchsorted(truth.ids, chosen)
    found = read_cutouts_by_id(store, chosen)
    data = LabelledCutouts(
        images=found.images,
        labels=dataclasses.replace(
            truth,
            ids=chosen,
            is_lens=truth.is_lens[rows],
            classes=None if truth.classes is None else truth.classes[rows],
        ),
        info=open_store(store),
    )
    out_store, out_labels = write_labelled_store(folder / "candidates", data)
    lenses = int(data.labels.is_lens.sum())
    return Candidates(out_store, out_labels, int(truth.ids.size), lenses, int(chosen.size) - lenses)


def script_grades(
    db: Path,
    ids: np.ndarray,
    is_lens: np.ndarray,
    *,
    graders: int = 3,
    error_rate: float = 0.1,
    seed: int = 0,
) -> dict[str, Any]:
    """Grade every id by `graders` scripted graders into the SQLite database db (replaced).

    Each grade is wrong with probability error_rate (a lens 0, a non-lens B); a right one is A
    or B for a lens (even odds), 0 for a non-lens. Returns the grades given and how many of
    them were wrong.
    """
    if not 0.0 <= error_rate < 0.5:
        raise ConfigError(f"error rate {error_rate}: give a probability in [0, 0.5)")
    if graders < 1:
        raise ConfigError(f"graders {graders}: give 1 or more")
    db.unlink(missing_ok=True)
    rng = np.random.default_rng(seed)
    wrong = rng.random((graders, ids.size)) < error_rate
    sure = rng.random((graders, ids.size)) < 0.5
    right = np.where(is_lens, np.where(sure, "A", "B"), "0")
    given = np.where(wrong, np.where(is_lens, "0", "B"), right)
    book = GradeBook(f"sqlite:///{db.resolve()}")
    try:
        for k in range(graders):
            for candidate_id, grade in zip(ids.tolist(), given[k].tolist(), strict=True):
                book.add(candidate_id, grader=f"script-{k + 1}", grade=grade)
    finally:
        book.close()
    return {
        "graders": graders,
        "error_rate": error_rate,
        "grades": int(given.size),
        "wrong_grades": int(wrong.sum()),
    }


def consensus_accuracy(db: Path, truth_labels: Path, *, min_graders: int) -> dict[str, int]:
    """How the consensus labels of db compare with the truth: right, wrong and dropped."""
    _, agreed = read_consensus(db)
    labels = labels_from_consensus(agreed, min_graders=min_graders)
    truth = read_labels(truth_labels)
    rows = np.searchsorted(truth.ids, labels.ids)
    right = int((truth.is_lens[rows] == labels.is_lens).sum())
    return {
        "labelled": int(labels.ids.size),
        "right": right,
        "wrong": int(labels.ids.size) - right,
        "dropped": int(sum(labels.dropped.values())),
    }


def run_trial(
    folder: Path,
    *,
    config: TrainConfig,
    manifest: Path,
    pool_lenses: int,
    pool_non_lenses: int,
    top: int,
    graders: int = 3,
    error_rate: float = 0.1,
    seeds: tuple[int, int] = (7001, 7002),
    settings: FineTuneSettings | None = None,
) -> dict[str, Any]:
    """The whole trial in folder (pools reused on a rerun); its record, also in trial.json."""
    settings = settings or FineTuneSettings()
    used = {config.training_set.seed, *(s.seed for s in (config.test_set,) if s is not None)}
    if set(seeds) & used or seeds[0] == seeds[1]:
        raise ConfigError(f"trial seeds {seeds} must differ from each other and from {used}")
    pools = [
        CutoutSet(
            n_lenses=pool_lenses,
            n_non_lenses=pool_non_lenses,
            seed=seed,
            mix="natural",
            population=config.training_set.population,
        )
        for seed in seeds
    ]
    graded = draw_candidates(folder / "graded", pools[0], config=config, manifest=manifest, top=top)
    held = draw_candidates(folder / "held-out", pools[1], config=config, manifest=manifest, top=top)
    truth = read_labels(graded.labels)
    db = folder / "grades.sqlite"
    grading = script_grades(
        db, truth.ids, truth.is_lens, graders=graders, error_rate=error_rate, seed=seeds[0]
    )
    accuracy = consensus_accuracy(db, graded.labels, min_graders=settings.min_graders)
    result = fine_tune_from_grades(
        config,
        grades=db,
        cutouts=graded.store,
        manifest=manifest,
        output=folder / "models",
        work=folder / "fine-tune",
        held_out=[HeldOutSet(HELD_OUT, held.store, held.labels)],
        settings=settings,
    )
    record = {
        "pools": [p.spec() for p in pools],
        "top": top,
        "graded_candidates": dataclasses.asdict(graded),
        "held_out_candidates": dataclasses.asdict(held),
        "grading": grading,
        "consensus_vs_truth": accuracy,
        "fine_tuning": {"manifest": result.manifest, "report": result.report},
        "sets": result.sets,
    }
    write_text(folder / "trial.json", json.dumps(plain(record, target="json"), indent=2) + "\n")
    return record


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m lensflow.train.grade_trial`: run the trial, print the before/after metrics."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", type=Path, required=True, help="the members' training config")
    parser.add_argument("--models", type=Path, required=True, help="their manifest")
    parser.add_argument("--folder", type=Path, required=True, help="where the trial is written")
    parser.add_argument("--pool-lenses", type=int, default=600)
    parser.add_argument("--pool-non-lenses", type=int, default=9400)
    parser.add_argument("--top", type=int, default=2000)
    parser.add_argument("--graders", type=int, default=3)
    parser.add_argument("--error-rate", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--held-out-fraction", type=float, default=0.1)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s")
    record = run_trial(
        args.folder,
        config=TrainConfig.from_toml(args.config),
        manifest=args.models,
        pool_lenses=args.pool_lenses,
        pool_non_lenses=args.pool_non_lenses,
        top=args.top,
        graders=args.graders,
        error_rate=args.error_rate,
        settings=FineTuneSettings(epochs=args.epochs, held_out_fraction=args.held_out_fraction),
    )
    for name, when in record["sets"].items():
        for moment in ("before", "after"):
            print(name, moment, json.dumps(when[moment]["ensemble"]))


if __name__ == "__main__":
    main()
