"""Labels from visual grades: the candidates people graded, as a labelled set to train on.

The grades come from the inspection's database (lensflow.inspect.grades: a SQLite file, a scan
folder holding grades.sqlite, or any SQLAlchemy URL, as `lensflow inspect --db` takes it) and
are agreed per candidate as lensflow.inspect.consensus does: each grader's latest grade counts
(A=3, B=2, C=1, 0=0) and the consensus is their mean. The rule turning it into a label:

- fewer than `min_graders` graders: dropped (one opinion is not a consensus);
- a mean on the edge between a label and a dropped class (exactly 1.5, e.g. one A and one 0,
  or exactly 0.5): a tie, dropped;
- consensus A or B (mean above 1.5): a lens; consensus 0 (mean below 0.5): a non-lens;
- consensus C (mean between 0.5 and 1.5): dropped, as the searches leave "possible" lenses out.

The graded cutouts are read by id from a cutout store (a scan's store holds every candidate's
cutout in its partition's group); graded ids the store does not hold are counted and left out.
`Mixing` states how the graded set is mixed with the simulated training set when fine-tuning,
and `draw_simulated` draws the simulated cutouts from the training run's own split.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.exc import ArgumentError

from lensflow.cutouts import (
    Cutouts,
    create_store,
    list_groups,
    open_store,
    read_cutouts,
    write_group,
)
from lensflow.errors import ConfigError, MissingInputError, TrainingError
from lensflow.inspect.consensus import Consensus, consensus, consensus_class
from lensflow.inspect.grades import DEFAULT_DB, GradeBook
from lensflow.labels import Labels, label_schema, read_labels, write_labels
from lensflow.surveys import Survey
from lensflow.train.config import TrainConfig
from lensflow.train.data import LabelledCutouts, ensure_cutout_set, split_validation

LENS_CLASSES = ("A", "B")
"""Consensus classes taken as lenses; "0" is a non-lens and "C" is dropped."""

GRADED_NON_LENS = "graded_0"
"""The `class` of a graded non-lens in labels written from grades (its kind is unknown)."""


@dataclasses.dataclass(frozen=True)
class GradedLabels:
    """Labels from consensus grades: ids int64 (K,) ascending, is_lens bool (K,), the consensus
    class ("A", "B" or "0") and mean grade of each; dropped: how many candidates each rule
    left out ("few_graders", "tie", "consensus_C")."""

    ids: np.ndarray
    is_lens: np.ndarray
    grade_class: np.ndarray
    mean: np.ndarray
    dropped: Mapping[str, int]

    @property
    def n_lenses(self) -> int:
        return int(self.is_lens.sum())

    @property
    def n_non_lenses(self) -> int:
        return int((~self.is_lens).sum())

    def subset(self, keep: np.ndarray) -> GradedLabels:
        """The rows where keep (bool (K,)) is true."""
        return dataclasses.replace(
            self,
            ids=self.ids[keep],
            is_lens=self.is_lens[keep],
            grade_class=self.grade_class[keep],
            mean=self.mean[keep],
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "lenses": self.n_lenses,
            "non_lenses": self.n_non_lenses,
            "by_class": {c: int((self.grade_class == c).sum()) for c in ("A", "B", "0")},
            "dropped": dict(self.dropped),
        }


@dataclasses.dataclass(frozen=True)
class GradedSet:
    """The graded candidates found in a cutout store, as a labelled set (rows by ascending id).

    url: the grades database (password hidden); not_in_store: labelled ids without a cutout.
    """

    data: LabelledCutouts
    labels: GradedLabels
    url: str
    store: Path
    not_in_store: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "database": self.url,
            "store": str(self.store),
            "not_in_store": self.not_in_store,
            **self.labels.as_dict(),
        }


@dataclasses.dataclass(frozen=True)
class Mixing:
    """How graded cutouts are mixed with simulated ones in each fine-tuning epoch.

    Each epoch holds every graded training cutout `repeats` times (each copy drawn with its own
    rotation and flip) and n_graded x repeats x (1 - f) / f simulated training cutouts (f =
    graded_fraction), a fixed draw from the run's training split, so that a batch is on
    average a fraction f graded: the members learn the graded sky and keep the simulated one.
    """

    graded_fraction: float = 0.5
    repeats: int = 1

    def __post_init__(self) -> None:
        if not 0.0 < self.graded_fraction < 1.0:
            raise ConfigError(
                f"graded fraction {self.graded_fraction}: give a fraction between 0 and 1"
            )
        if self.repeats < 1:
            raise ConfigError(f"repeats {self.repeats}: give 1 or more")

    def simulated_rows(self, n_graded: int, *, repeated: bool = True) -> int:
        """Simulated cutouts to draw beside n_graded graded ones, each seen `repeats` times
        (repeated False: once, as in validation)."""
        f = self.graded_fraction
        return round(n_graded * (self.repeats if repeated else 1) * (1.0 - f) / f)

    def describe(self) -> str:
        return (
            f"each epoch: every graded cutout x{self.repeats} and a fixed draw of simulated "
            f"training cutouts, graded {self.graded_fraction:.0%} of the rows"
        )


def grades_url(db: str | Path) -> str:
    """The database URL of `db`: a URL as given, a SQLite file, or a scan folder's grades.sqlite.

    A SQLite file must exist (MissingInputError): reading never creates a database.
    """
    text = str(db).strip()
    if "://" not in text:
        path = Path(text)
        if path.is_dir():
            path = path / DEFAULT_DB
        text = f"sqlite:///{path.resolve()}"
    try:
        url = sa.engine.make_url(text)
    except ArgumentError as exc:
        raise ConfigError(
            f"grades database {text!r} is not a database URL ({exc}); give a SQLite file, a "
            "scan folder or a URL such as postgresql+psycopg://user@host/lenses"
        ) from None
    database = url.database if url.get_backend_name() == "sqlite" else None
    if database not in (None, "", ":memory:") and not Path(str(database)).is_file():
        raise MissingInputError(
            f"{url.database}: no grades database here; grade the candidates with `lensflow "
            "inspect SCAN_DIR` (it writes SCAN_DIR/grades.sqlite) or give the database URL"
        )
    return text


def read_consensus(db: str | Path) -> tuple[str, dict[int, Consensus]]:
    """The database's URL (password hidden) and the consensus of every graded candidate.

    A database that cannot be read is a StorageError or ConfigError (from GradeBook); one with
    no grades a TrainingError.
    """
    book = GradeBook(grades_url(db))
    try:
        agreed = consensus(book.history())
    finally:
        book.close()
    if not agreed:
        raise TrainingError(
            f"grades database {book.url} holds no grades; grade the candidates with `lensflow "
            "inspect` first"
        )
    return book.url, agreed


def labels_from_consensus(agreed: Mapping[int, Consensus], *, min_graders: int = 2) -> GradedLabels:
    """Lens / non-lens labels by the module's rule; the rest counted by why it was dropped."""
    if min_graders < 1:
        raise ConfigError(f"min graders {min_graders}: give 1 or more")
    ids: list[int] = []
    classes: list[str] = []
    means: list[float] = []
    dropped = {"few_graders": 0, "tie": 0, "consensus_C": 0}
    for candidate_id, agreement in sorted(agreed.items()):
        total = sum(agreement.grades.values())
        n = agreement.graders
        if n < min_graders:
            dropped["few_graders"] += 1
        elif 2 * total == 3 * n or 2 * total == n:  # mean exactly 1.5 or 0.5, in integers
            dropped["tie"] += 1
        elif (grade_class := consensus_class(total / n)) == "C":
            dropped["consensus_C"] += 1
        else:
            ids.append(int(candidate_id))
            classes.append(grade_class)
            means.append(total / n)
    grade_classes = np.asarray(classes, dtype=object)
    return GradedLabels(
        ids=np.asarray(ids, dtype=np.int64),
        is_lens=np.isin(grade_classes, LENS_CLASSES),
        grade_class=grade_classes,
        mean=np.asarray(means, dtype=np.float64),
        dropped=dropped,
    )


def read_cutouts_by_id(store: Path, ids: np.ndarray) -> Cutouts:
    """The cutouts of the given ids from any group of a store, by ascending id; `missing` the
    ids no group holds. Each group's chunks holding wanted ids are read once."""
    info = open_store(store)
    left = np.unique(np.asarray(ids, dtype=np.int64))
    found_ids: list[np.ndarray] = []
    found_images: list[np.ndarray] = []
    for group in list_groups(store):
        if not left.size:
            break
        got = read_cutouts(store, group, left)
        if got.ids.size:
            found_ids.append(got.ids)
            found_images.append(got.images)
            left = np.setdiff1d(left, got.ids, assume_unique=True)
    shape = (len(info.bands), info.cutout_size, info.cutout_size)
    if not found_ids:
        return Cutouts(
            ids=np.empty(0, np.int64), images=np.empty((0, *shape), np.float32), missing=left
        )
    all_ids = np.concatenate(found_ids)
    order = np.argsort(all_ids, kind="stable")
    return Cutouts(ids=all_ids[order], images=np.concatenate(found_images)[order], missing=left)


def load_graded_set(db: str | Path, store: Path, *, min_graders: int = 2) -> GradedSet:
    """The graded candidates of a grades database that the cutout store holds, labelled by the
    module's rule. Classes: "lens" for lenses, GRADED_NON_LENS for non-lenses."""
    url, agreed = read_consensus(db)
    labels = labels_from_consensus(agreed, min_graders=min_graders)
    found = read_cutouts_by_id(store, labels.ids)
    labels = labels.subset(np.isin(labels.ids, found.ids))
    classes = np.where(labels.is_lens, "lens", GRADED_NON_LENS).astype(object)
    data = LabelledCutouts(
        images=found.images,
        labels=Labels(ids=labels.ids, is_lens=labels.is_lens, classes=classes),
        info=open_store(store),
    )
    return GradedSet(
        data=data, labels=labels, url=url, store=Path(store), not_in_store=int(found.missing.size)
    )


def write_labelled_store(folder: Path, data: LabelledCutouts) -> tuple[Path, Path]:
    """A labelled set as a cutout store (one group, "set") and labels.parquet in folder."""
    store, labels = folder / "cutouts.zarr", folder / "labels.parquet"
    info = data.info
    create_store(
        store,
        bands=info.bands,
        pixel_scale_arcsec=info.pixel_scale_arcsec,
        psf_fwhm_arcsec=info.psf_fwhm_arcsec or dict.fromkeys(info.bands, 0.0),
        cutout_size=info.cutout_size,
        zero_point_ab=info.zero_point_ab,
        units=info.units,
        overwrite=True,
    )
    write_group(store, "set", ids=data.labels.ids, images=data.images)
    classes = data.labels.classes
    rows = [
        {"id": int(i), "is_lens": bool(lens), "class": str(c), "size_arcsec": None}
        for i, lens, c in zip(
            data.labels.ids,
            data.labels.is_lens,
            classes if classes is not None else np.where(data.labels.is_lens, "lens", "other"),
            strict=True,
        )
    ]
    write_labels(labels, rows, schema=label_schema(bands=[], lens_params=[]))
    return store, labels


def draw_simulated(
    config: TrainConfig, survey: Survey, *, n_train: int, n_val: int, seed: int
) -> tuple[LabelledCutouts, LabelledCutouts]:
    """Simulated cutouts to mix in: a seeded draw of n_train rows from the run's training split
    and n_val from its validation split (the split the run made), read by id from its store."""
    store, labels = ensure_cutout_set(
        config.training_set,
        config.work / "train-set",
        survey=survey,
        workers=config.simulation_workers,
    )
    truth = read_labels(labels)
    every = [
        truth.is_lens,
        *(read_labels(e.labels_path).is_lens for e in config.training_set.extra),
    ]
    fit_rows, val_rows = split_validation(
        np.concatenate(every),
        fraction=config.validation_fraction,
        seed=config.training_set.seed,
    )
    rng = np.random.default_rng(seed)
    parts = []
    for rows, n in ((fit_rows, n_train), (val_rows, n_val)):
        rows = rows[rows < truth.ids.size]  # the main set's rows (extra stores come after)
        take = np.sort(rng.choice(rows, size=min(n, rows.size), replace=False))
        found = read_cutouts_by_id(store, truth.ids[take])
        if found.missing.size:
            raise TrainingError(
                f"{store}: {found.missing.size} labelled ids have no cutout, e.g. "
                f"{found.missing[:3].tolist()}; simulate the training set again"
            )
        classes = truth.classes[take] if truth.classes is not None else None
        labelled = LabelledCutouts(
            images=found.images,
            labels=dataclasses.replace(
                truth, ids=truth.ids[take], is_lens=truth.is_lens[take], classes=classes
            ),
            info=open_store(store),
        )
        parts.append(labelled)
    return parts[0], parts[1]
