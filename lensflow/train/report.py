"""The run report of a training run: its steps and timings, where it ran, members, metrics.

The report is one JSON file, rewritten atomically after every change, so a run stopped from
outside still leaves the steps it finished; `summarise` turns a set's evaluation into its entry.
"""

from __future__ import annotations

import datetime
import json
import logging
import os
import platform
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from lensflow.ensemble import MEAN
from lensflow.evaluate import ENSEMBLE, EvaluationReport
from lensflow.io import write_text
from lensflow.train.plain import plain

logger = logging.getLogger(__name__)

AIMS: Mapping[str, float] = {"auroc": 0.99, "tpr0": 0.30, "tpr10": 0.80}
"""The ensemble's aims on a contaminant-rich set of 100,000 non-lenses."""


def now() -> str:
    """The time now in UTC, ISO 8601 to the second."""
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


class RunReport:
    """What a training run did, step by step: timings, members, metrics of every set.

    With a path, the JSON is rewritten (atomically) after every change, so a run stopped from
    outside still leaves its finished steps. Steps may run in two threads at once.
    """

    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {"started": now(), "steps": [], "members": {}, "sets": {}}
        self._lock = threading.Lock()
        self._began = time.perf_counter()

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        """Time one step; log its start and end and record it (also when it fails)."""
        started = now()
        tick = time.perf_counter()
        logger.info("step %s: started", name)
        status = "failed"
        try:
            yield
            status = "done"
        finally:
            seconds = time.perf_counter() - tick
            logger.info("step %s: %s in %.1f s", name, status, seconds)
            with self._lock:
                self.data["steps"].append(
                    {
                        "step": name,
                        "started": started,
                        "seconds": round(seconds, 2),
                        "status": status,
                    }
                )
                self._write()

    def update(self, **values: Any) -> None:
        """Set top-level entries and rewrite the file."""
        with self._lock:
            self.data.update(values)
            self._write()

    def merge(self, key: str, name: str, values: Mapping[str, Any]) -> None:
        """Merge values into data[key][name] and rewrite the file."""
        with self._lock:
            entry = self.data.setdefault(key, {}).setdefault(name, {})
            entry.update(values)
            self._write()

    def _write(self) -> None:
        self.data["elapsed_seconds"] = round(time.perf_counter() - self._began, 2)
        if self.path is None:
            return
        write_text(self.path, json.dumps(plain(self.data, target="json"), indent=2) + "\n")


def environment(device: torch.device) -> dict[str, Any]:
    """Where the run ran: versions, cores, the accelerator."""
    import onnxruntime

    env: dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "onnxruntime": onnxruntime.__version__,
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "device": str(device),
    }
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
        env["cuda"] = torch.version.cuda
    return env


def summarise(report: EvaluationReport) -> dict[str, Any]:
    """A set's metrics for the run report, with the aims and the most confusing class."""
    scored = report.as_dict()
    members = {n: m for n, m in scored.items() if n not in (ENSEMBLE, MEAN)}
    ens = scored[ENSEMBLE]
    best = max(members, key=lambda n: (members[n]["tpr10"], members[n]["auroc"]))
    out: dict[str, Any] = {
        "metrics": scored,
        "best_member_by_tpr10": best,
        "ensemble_beats_best_member_on_tpr10": ens["tpr10"] > members[best]["tpr10"],
        "aims": {k: {"aim": v, "value": ens[k], "reached": ens[k] >= v} for k, v in AIMS.items()},
    }
    top = ens.get("top_non_lenses_by_class")
    if top:
        out["most_false_positives_class"] = next(iter(top))
    if report.score_seconds:
        n = int(report.ids.size)
        out["onnxruntime_images_per_second"] = {
            k: round(n / max(v, 1e-9)) for k, v in report.score_seconds.items()
        }
    return out
