"""Pin the images' requirements from the current environment (what `pip freeze` shows for them).

The list is lensflow's core dependencies (pyproject.toml, no extras) and everything they pull
in, each at the version installed here, as `name==version`. The CPU list is that closure; the
GPU list is the same without onnxruntime and with onnxruntime-gpu (the GPU extra's version):
the two never share an environment. Both images install the list, then lensflow's wheel with
`pip install --no-deps`.

    python docker/pin_requirements.py           # rewrite docker/requirements-{cpu,gpu}.txt
    python docker/pin_requirements.py --check   # exit 1 if a list lacks or adds a package
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
HERE = Path(__file__).resolve().parent
CPU_RUNTIME = "onnxruntime"
GPU_RUNTIME = "onnxruntime-gpu"
HEADER = (
    "# Pinned from the development environment by docker/pin_requirements.py (do not edit):\n"
    "# lensflow's core dependencies and what they pull in, for Python 3.11 on linux x86_64.\n"
)


def project() -> dict[str, object]:
    """The [project] table of pyproject.toml."""
    with (ROOT / "pyproject.toml").open("rb") as f:
        table: dict[str, object] = tomllib.load(f)["project"]
    return table


def _wanted(requirement: Requirement, extras: frozenset[str]) -> bool:
    """Whether a requirement applies here, for the extras it was asked with."""
    if requirement.marker is None:
        return True
    return any(requirement.marker.evaluate({"extra": e}) for e in extras or {""})


def closure(roots: list[str]) -> dict[str, str]:
    """Installed name -> version of `roots` and every requirement they pull in, here."""
    pinned: dict[str, str] = {}
    todo = [Requirement(r) for r in roots]
    seen: set[tuple[str, frozenset[str]]] = set()
    while todo:
        requirement = todo.pop()
        name = canonicalize_name(requirement.name)
        extras = frozenset(requirement.extras)
        if (name, extras) in seen:
            continue
        seen.add((name, extras))
        try:
            dist = metadata.distribution(name)
        except metadata.PackageNotFoundError:
            sys.exit(f"{name} is not installed here: run `make install` first")
        pinned[name] = dist.version
        for line in dist.requires or []:
            child = Requirement(line)
            if _wanted(child, extras):
                todo.append(child)
    return pinned


def gpu_pin() -> str:
    """The onnxruntime-gpu requirement the gpu extra names."""
    extras: dict[str, list[str]] = project()["optional-dependencies"]  # type: ignore[assignment]
    (line,) = (r for r in extras["gpu"] if canonicalize_name(Requirement(r).name) == GPU_RUNTIME)
    return line


def lists() -> dict[str, list[str]]:
    """File name -> its requirement lines."""
    pins = closure(list(project()["dependencies"]))  # type: ignore[call-overload]
    cpu = [f"{name}=={version}" for name, version in sorted(pins.items())]
    gpu = [line for line in cpu if not line.startswith(f"{CPU_RUNTIME}==")] + [gpu_pin()]
    gpu.sort(key=lambda line: canonicalize_name(Requirement(line).name))
    return {"requirements-cpu.txt": cpu, "requirements-gpu.txt": gpu}


def names(lines: list[str]) -> set[str]:
    """The package names of requirement lines (comments and blanks skipped)."""
    return {
        canonicalize_name(Requirement(line).name)
        for line in lines
        if line.strip() and not line.lstrip().startswith("#")
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare, write nothing")
    args = parser.parse_args()
    status = 0
    for file, lines in lists().items():
        path = HERE / file
        if args.check:
            have = names(path.read_text().splitlines()) if path.is_file() else set()
            if have != names(lines):
                print(
                    f"{path}: lacks {sorted(names(lines) - have)}, adds {sorted(have - names(lines))}"
                )
                status = 1
        else:
            path.write_text(HEADER + "\n".join(lines) + "\n")
            print(f"{path}: {len(lines)} packages")
    return status


if __name__ == "__main__":
    raise SystemExit(main())
