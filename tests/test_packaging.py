"""The wheel and the docker images.

The wheel holds every package, the shipped models and the survey profiles; installed into a
fresh venv away from the repo, its `lensflow demo` scores a small mock sky with the models it
finds as package data. The images' requirement lists keep onnxruntime and onnxruntime-gpu apart
and cover the core dependencies; hadolint passes both Dockerfiles. Nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tomllib
import zipfile
from pathlib import Path
from types import ModuleType

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from lensflow.registry import load_manifest

ROOT = Path(__file__).resolve().parents[1]
DOCKER = ROOT / "docker"
DOCKERFILES = {"cpu": DOCKER / "Dockerfile.cpu", "gpu": DOCKER / "Dockerfile.gpu"}
SOURCES = ("pyproject.toml", "README.md", "lensflow", "models")
"""What a wheel is built from (as the Dockerfiles' first stage copies it)."""


def _run(args: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # type: ignore[call-overload, no-any-return]
        [str(a) for a in args], capture_output=True, text=True, check=False, **kwargs
    )


def _bin(name: str) -> Path:
    """A console script of the running environment."""
    path = Path(sys.executable).parent / name
    assert path.is_file(), f"{path} missing: run `make install` (the dev extra names it)"
    return path


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel `python -m build --wheel` makes from a copy of the sources (no downloads)."""
    src = tmp_path_factory.mktemp("src")
    for name in SOURCES:
        if (ROOT / name).is_dir():
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
            shutil.copytree(ROOT / name, src / name, ignore=ignore)
        else:
            shutil.copy2(ROOT / name, src / name)
    out = tmp_path_factory.mktemp("dist")
    cmd: list[str | Path] = [
        sys.executable,
        "-m",
        "build",
        "--wheel",
        "--no-isolation",
        "--outdir",
        out,
        src,
    ]
    done = _run(cmd, cwd=src, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (built,) = out.glob("lensflow-*.whl")
    return built


def test_the_wheel_holds_every_package_models_and_profiles(wheel: Path) -> None:
    names = set(zipfile.ZipFile(wheel).namelist())
    packages = [p.parent.relative_to(ROOT) for p in (ROOT / "lensflow").rglob("__init__.py")]
    assert len(packages) > 5
    missing = [str(p) for p in packages if f"{p.as_posix()}/__init__.py" not in names]
    assert not missing, f"packages left out of the wheel (pyproject's packages list): {missing}"
    profiles = sorted((ROOT / "lensflow" / "surveys").glob("*.toml"))
    assert profiles
    for profile in profiles:
        assert f"lensflow/surveys/{profile.name}" in names
    manifests = sorted((ROOT / "models").rglob("manifest.toml"))
    assert len(manifests) >= 2  # the default models and a survey folder
    with zipfile.ZipFile(wheel) as zf:
        for path in manifests:
            manifest = load_manifest(path, verify=False)
            files = [manifest.photometry.file, *(m.file for m in manifest.ensemble.members)]
            for file in ["manifest.toml", *files]:
                repo = path.parent / file
                packaged = f"lensflow/models/{repo.relative_to(ROOT / 'models').as_posix()}"
                assert packaged in names, f"{packaged} not in the wheel"
                digest = hashlib.sha256(zf.read(packaged)).hexdigest()
                assert digest == hashlib.sha256(repo.read_bytes()).hexdigest(), packaged


def _fresh_venv(root: Path, wheel: Path) -> Path:
    """A venv that installs the wheel alone and finds its dependencies in this environment."""
    venv = root / "venv"
    done = _run([sys.executable, "-m", "venv", "--system-site-packages", "--without-pip", venv])
    assert done.returncode == 0, done.stderr
    python = venv / "bin" / "python"
    code = "import sysconfig; print(sysconfig.get_path('purelib'))"
    site = Path(_run([python, "-c", code]).stdout.strip())
    # A path line adds this environment's packages; the .pth files there (the repo's editable
    # install among them) are not run, so lensflow can come only from the wheel.
    (site / "dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    pip: list[str | Path] = [
        sys.executable,
        "-m",
        "pip",
        "--python",
        python,
        "install",
        "--no-deps",
        "--no-index",
    ]
    done = _run([*pip, "--quiet", wheel], timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr
    return venv


def test_the_installed_wheel_runs_the_demo_with_its_packaged_models(
    wheel: Path, tmp_path: Path
) -> None:
    venv = _fresh_venv(tmp_path, wheel)
    cwd = tmp_path / "elsewhere"
    cwd.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    code = "import lensflow, lensflow.registry as r; print(lensflow.__file__); print(r.default_manifest_path())"
    where = _run([venv / "bin" / "python", "-c", code], cwd=cwd, env=env)
    assert where.returncode == 0, where.stderr
    module, manifest_path = (Path(line) for line in where.stdout.split())
    for path in (module, manifest_path):
        assert path.is_relative_to(venv), path
        assert not path.is_relative_to(ROOT), path

    args = ["demo", "--dir", "d", "--sources", "500", "--lenses", "8", "--workers", "1"]
    demo = _run([venv / "bin" / "lensflow", *args], cwd=cwd, env=env, timeout=240)
    assert demo.returncode == 0, demo.stdout[-3000:] + demo.stderr[-3000:]

    out = cwd / "d"
    config = tomllib.loads((out / "sky" / "scan.toml").read_text())
    assert "manifest" not in config.get("models", {})  # the scan took the default models
    totals = json.loads((out / "scan" / "manifest.json").read_text())["totals"]
    assert totals["done"] == totals["partitions"] > 0
    assert totals["rows_after_photometry"] > 0, totals  # cutouts reached the ensemble
    files = sorted((out / "scan" / "dataset").rglob("*.parquet"))
    scored = pa.concat_tables([pq.read_table(f) for f in files])
    assert scored.num_rows == totals["rows_after_photometry"]
    packaged = load_manifest(manifest_path)
    assert set(scored.column("model_versions").to_pylist()) == {packaged.versions()}
    for member in [m.name for m in packaged.ensemble.members] + ["ensemble"]:
        scores = scored.column(f"score_{member}" if member != "ensemble" else "ensemble_score")
        assert pc.all(pc.and_(pc.greater_equal(scores, 0.0), pc.less_equal(scores, 1.0))).as_py()


def _requirements(name: str) -> dict[str, str]:
    """Package name -> its requirement line, of docker/requirements-NAME.txt."""
    lines = (DOCKER / f"requirements-{name}.txt").read_text().splitlines()
    reqs = [Requirement(line) for line in lines if line.strip() and not line.startswith("#")]
    return {canonicalize_name(r.name): str(r) for r in reqs}


def test_gpu_requirements_never_list_onnxruntime_and_cpu_ones_never_onnxruntime_gpu() -> None:
    cpu, gpu = _requirements("cpu"), _requirements("gpu")
    assert "onnxruntime" in cpu and "onnxruntime-gpu" not in cpu
    assert "onnxruntime-gpu" in gpu and "onnxruntime" not in gpu
    with (ROOT / "pyproject.toml").open("rb") as f:
        extra = tomllib.load(f)["project"]["optional-dependencies"]["gpu"]
    assert [gpu["onnxruntime-gpu"]] == [str(Requirement(r)) for r in extra]
    assert set(cpu) - {"onnxruntime"} == set(gpu) - {"onnxruntime-gpu"}
    for line in [*cpu.values(), *gpu.values()]:
        assert re.fullmatch(r"[A-Za-z0-9._-]+==[0-9][0-9A-Za-z.*+]*", line), line


def _pin_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "pin_requirements", DOCKER / "pin_requirements.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_requirement_lists_cover_the_core_dependencies_and_what_they_pull_in() -> None:
    pins = _pin_script().closure(["distributed"])
    assert {"distributed", "dask", "tornado", "cloudpickle"} <= set(pins)
    assert "onnxruntime" not in pins
    done = _run([sys.executable, DOCKER / "pin_requirements.py", "--check"])
    assert done.returncode == 0, f"{done.stdout}run `python docker/pin_requirements.py`"


@pytest.mark.parametrize("kind", sorted(DOCKERFILES))
def test_each_dockerfile_installs_its_own_list_and_the_wheel_without_dependencies(
    kind: str,
) -> None:
    text = DOCKERFILES[kind].read_text()
    assert f"docker/requirements-{kind}.txt" in text
    other = {"cpu": "gpu", "gpu": "cpu"}[kind]
    assert f"requirements-{other}" not in text
    assert re.search(r"pip install [^\n]*--no-deps [^\n]*lensflow-\*\.whl", text)
    users = re.findall(r"^USER (\S+)", text, flags=re.MULTILINE)
    assert users and users[-1].split(":")[0] not in ("root", "0")
    assert "HEALTHCHECK" in text
    for image in re.findall(r"^FROM (\S+)", text, flags=re.MULTILINE):
        assert re.search(r":\d+\.\d+\.\d+-", image), f"{image}: pin the base image's version"


def test_hadolint_passes_both_dockerfiles_and_fails_a_bad_one(tmp_path: Path) -> None:
    hadolint = _bin("hadolint")
    done = _run([hadolint, *DOCKERFILES.values()])
    assert done.returncode == 0, done.stdout + done.stderr
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN apt-get update && apt-get install -y curl\n")
    assert _run([hadolint, bad]).returncode != 0
