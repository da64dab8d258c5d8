"""Simulator throughput and integration accuracy, in a survey profile (default lsst).

The profile's cutouts (lsst: three-band 64 x 64; draw + render: PSF, noise, artefacts) per
second per core, for
non-lenses (training and natural mixes, and per class) and for lenses (acceptance redraws
included), on one thread; and how far the adaptive integration is from a converged one (total
flux of lensed sources against a dense ss = 20 midpoint rule, of unlensed galaxies against a much
finer adaptive render, and the shared reference images).

    python -m benchmarks.bench_simulate [--quick] [--survey NAME|FILE]
    (or: python -m benchmarks bench_simulate)

Prints a table and writes results/simulate.md and results/simulate.json beside this file
(simulate-NAME.* for a profile other than lsst).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse
import json
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lensflow.simulate import (
    CLASSES,
    NATURAL_MIX,
    TRAINING_MIX,
    Survey,
    draw_scene,
    simulate_cutouts,
    survey_profile,
)
from lensflow.simulate.lensing import lens_model
from lensflow.simulate.render import render_adaptive, render_midpoint
from lensflow.simulate.scene import NON_LENS_CLASSES, template_render
from lensflow.simulate.sersic import SersicEllipse
from lensflow.simulate.training_set import plan_classes
from lensflow.surveys import DEFAULT_SURVEY

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
REFERENCE = HERE.parent / ".." / "shared" / "reference"
TARGETS = {"non_lenses": 200.0, "lenses": 50.0}


def _timed(run: Callable[[], object]) -> tuple[float, float]:
    """(CPU seconds of this process, wall seconds) of one call."""
    cpu, wall = time.process_time(), time.perf_counter()
    run()
    return time.process_time() - cpu, time.perf_counter() - wall


def _rate(kinds: Sequence[str], seed: int, survey: Survey) -> dict[str, float]:
    ids = np.arange(len(kinds))
    cpu, wall = _timed(lambda: simulate_cutouts(kinds, ids, seed=seed, survey=survey))
    return {
        "n": len(kinds),
        "per_cpu_second": len(kinds) / cpu,
        "per_wall_second": len(kinds) / wall,
        "ms_per_cutout_cpu": 1e3 * cpu / len(kinds),
    }


def throughput(n_non_lenses: int, n_lenses: int, per_class: int, survey: Survey) -> dict[str, Any]:
    """Cutouts per CPU second (one core) for the mixes, lenses and each class."""
    for kind in CLASSES:  # warm caches, imports and the cosmology table
        simulate_cutouts([kind] * 2, np.arange(2), seed=99, survey=survey)
    training = plan_classes(0, n_non_lenses, seed=1, mix=TRAINING_MIX)
    natural = plan_classes(0, n_non_lenses, seed=2, mix=NATURAL_MIX)
    out: dict[str, Any] = {
        "training_mix": _rate(training, seed=1, survey=survey),
        "natural_mix": _rate(natural, seed=2, survey=survey),
        "lenses": _rate(["lens"] * n_lenses, seed=3, survey=survey),
    }
    draws = [
        draw_scene("lens", seed=(3, k), survey=survey).params["draws"]
        for k in range(min(n_lenses, 100))
    ]
    out["lenses"]["mean_draws_per_accepted_lens"] = float(np.mean(draws))
    out["per_class"] = {
        kind: _rate([kind] * per_class, seed=4, survey=survey)["per_cpu_second"] for kind in CLASSES
    }
    return out


def _relative(a: float, b: float) -> float:
    return abs(a / b - 1.0)


def accuracy(n_lenses: int, per_class: int, survey: Survey) -> dict[str, Any]:
    """Total-flux errors of the adaptive integration against converged integrations."""
    n, scale = survey.cutout_size, survey.pixel_scale_arcsec
    lensed: list[float] = []
    for k in range(n_lenses):
        scene = draw_scene("lens", seed=(5, k), survey=survey)
        comps = [c for c in scene.components if c.lensed]
        profiles = [c.profile for c in comps]
        fast = template_render(profiles, n=n, pixel_scale=scale, lens=scene.lens)
        total_fast = total_dense = 0.0
        for comp, image in zip(comps, fast, strict=True):
            dense = render_midpoint(
                comp.profile, n=n, pixel_scale=scale, supersample=20, lens=scene.lens
            )
            norm = comp.flux["r"] / comp.profile.total_flux()
            total_fast += norm * float(image.sum())
            total_dense += norm * float(dense.sum())
        lensed.append(_relative(total_fast, total_dense))
    unlensed: dict[str, float] = {}
    galaxies = [k for k in NON_LENS_CLASSES if k not in ("star", "artefact")]
    for kind in galaxies:
        worst = 0.0
        for k in range(per_class):
            scene = draw_scene(kind, seed=(6, k), survey=survey)
            profiles = [c.profile for c in scene.components]
            weights = [c.flux["r"] / c.profile.total_flux() for c in scene.components]
            fast = template_render(profiles, n=n, pixel_scale=scale)
            fine = render_adaptive(
                profiles,
                n=n,
                pixel_scale=scale,
                accuracy=8.0,
                significance=1e-4,
                max_supersample=96,
            )
            a = sum(w * float(t.sum()) for w, t in zip(weights, fast, strict=True))
            b = sum(w * float(t.sum()) for w, t in zip(weights, fine, strict=True))
            worst = max(worst, _relative(a, b))
        unlensed[kind] = worst
    out: dict[str, Any] = {
        "lensed_vs_dense_ss20": {
            "n": n_lenses,
            "max": max(lensed),
            "median": float(np.median(lensed)),
        },
        "unlensed_vs_converged_max_by_class": unlensed,
    }
    if (REFERENCE / "lensed_images.json").is_file():
        meta = json.loads((REFERENCE / "lensed_images.json").read_text())
        images = np.load(REFERENCE / "lensed_images.npy")
        flux, pixel = 0.0, 0.0
        for entry in meta["images"]:
            s = entry["source"]
            source = SersicEllipse(
                s["amp"],
                s["R_sersic"],
                s["n_sersic"],
                s["e1"],
                s["e2"],
                s["center_x"],
                s["center_y"],
            )
            lens = lens_model(entry["model"], **entry["lens"])
            ours = template_render([source], n=32, pixel_scale=0.2, lens=lens)
            ref = images[entry["index"]]
            flux = max(flux, _relative(float(ours.sum()), entry["lensed_flux_in_image"]))
            pixel = max(pixel, float(np.abs(ours[0] - ref).max() / ref.max()))
        out["reference_images"] = {"flux_max": flux, "pixel_over_peak_max": pixel}
    return out


def _markdown(result: dict[str, Any]) -> str:
    t, a = result["throughput"], result["accuracy"]
    lines = [
        "# Simulator benchmark",
        "",
        (
            f"{result['machine']}; one thread; survey {result['survey']}, cutouts "
            f"{result['cutout_shape']} (draw + render)."
        ),
        "",
        "| set | cutouts/s/core (CPU) | wall cutouts/s | target |",
        "| --- | ---: | ---: | ---: |",
    ]
    for key, target in (
        ("training_mix", "non_lenses"),
        ("natural_mix", "non_lenses"),
        ("lenses", "lenses"),
    ):
        row = t[key]
        lines.append(
            f"| {key} (n={row['n']}) | {row['per_cpu_second']:.0f} | "
            f"{row['per_wall_second']:.0f} | {TARGETS[target]:.0f} |"
        )
    lines += ["", "| class | cutouts/s/core |", "| --- | ---: |"]
    lines += [f"| {kind} | {rate:.0f} |" for kind, rate in t["per_class"].items()]
    lensed = a["lensed_vs_dense_ss20"]
    lines += [
        "",
        f"Lenses need {t['lenses']['mean_draws_per_accepted_lens']:.2f} draws per accepted lens.",
        "",
        "Integration (relative total-flux error of the adaptive renderer):",
        (
            f"- lensed sources vs dense ss=20: max {lensed['max']:.2e}, "
            f"median {lensed['median']:.2e} (n={lensed['n']})"
        ),
        "- unlensed galaxies vs converged (max per class): "
        + ", ".join(f"{k} {v:.1e}" for k, v in a["unlensed_vs_converged_max_by_class"].items()),
    ]
    if "reference_images" in a:
        ref = a["reference_images"]
        lines.append(
            f"- shared reference lensed images: flux {ref['flux_max']:.1e}, "
            f"worst pixel {ref['pixel_over_peak_max']:.1e} of the peak"
        )
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] = ()) -> dict[str, Any]:
    """Run the benchmark, print it and write the JSON and markdown results."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer cutouts (a smoke run)")
    parser.add_argument("--survey", default=DEFAULT_SURVEY, help="survey profile: name or TOML")
    args = parser.parse_args(list(argv))
    survey = survey_profile(args.survey)
    scale = 0.2 if args.quick else 1.0
    n = survey.cutout_size
    result = {
        "machine": f"{platform.machine()} {platform.processor() or ''} ({os.cpu_count()} CPUs), "
        f"Python {platform.python_version()}, numpy {np.__version__}".replace("  ", " "),
        "survey": survey.name,
        "cutout_shape": f"{len(survey.bands)} x {n} x {n}",
        "throughput": throughput(int(600 * scale), int(200 * scale), int(40 * scale), survey),
        "accuracy": accuracy(int(30 * scale), int(8 * scale) or 1, survey),
        "targets_per_core": TARGETS,
    }
    text = _markdown(result)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    stem = "simulate" if survey.name == DEFAULT_SURVEY else f"simulate-{survey.name}"
    (RESULTS / f"{stem}.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / f"{stem}.md").write_text(text)
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
