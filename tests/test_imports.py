"""lensflow's imports run one way: the funnel's stages below the drivers, shared services lowest.

Every import of a lensflow module counts, at the top of a file or inside a function, except
those under `if TYPE_CHECKING:` (annotations only, never executed). `python -m
tests.test_imports` prints the graph: each module and what it imports from lensflow.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "lensflow"

STAGES = {
    "lensflow.calibration",
    "lensflow.candidates",
    "lensflow.catalog",
    "lensflow.cluster",
    "lensflow.config",
    "lensflow.cutouts",
    "lensflow.cuts",
    "lensflow.ensemble",
    "lensflow.errors",
    "lensflow.io",
    "lensflow.labels",
    "lensflow.layout",
    "lensflow.locations",
    "lensflow.modelling",
    "lensflow.photometry",
    "lensflow.registry",
    "lensflow.sessions",
    "lensflow.sky",
    "lensflow.regions",
    "lensflow.units",
    *(
        f"lensflow.images.{p.stem}"
        for p in (PACKAGE / "images").glob("*.py")
        if p.stem != "__init__"
    ),
}
"""The funnel's stages and the shared services below them."""

DRIVERS = (
    "lensflow.scan",
    "lensflow.simulate",
    "lensflow.train",
    "lensflow.evaluate",
    "lensflow.independent",
)
TOP = ("lensflow.cli", "lensflow.demo", "lensflow.views", "lensflow.testing")

WRITERS = {
    "lensflow.candidates",
    "lensflow.io",
    "lensflow.labels",
    "lensflow.layout",
    "lensflow.scan.state",
    "lensflow.simulate.mock_sky",
    "lensflow.simulate.training_set",
}
"""Modules that write outputs: they find their helpers in io and layout, never in the reader."""


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imported(tree: ast.AST, modules: set[str]) -> set[str]:
    """The lensflow modules a parsed file imports, outside `if TYPE_CHECKING:` blocks."""
    found: set[str] = set()
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.If) and _is_type_checking(node):
            stack.extend(node.orelse)
            continue
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("lensflow"))
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("lensflow"):
            base = node.module or ""
            for alias in node.names:
                child = f"{base}.{alias.name}"
                found.add(child if child in modules else base)
        stack.extend(ast.iter_child_nodes(node))
    return found


def import_graph() -> dict[str, set[str]]:
    """Each lensflow module and the lensflow modules it imports."""
    files = {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}
    modules = set(files)
    return {
        name: _imported(ast.parse(path.read_text(), filename=str(path)), modules) - {name}
        for name, path in files.items()
    }


def _under(module: str, prefixes: tuple[str, ...] | set[str]) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle as a list of modules (first == last), or None."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target]
            if target not in state and (cycle := visit(target)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


GRAPH = import_graph()


def test_the_graph_sees_the_package() -> None:
    assert {"lensflow.cli", "lensflow.scan.run", "lensflow.io"} <= set(GRAPH)
    assert "lensflow.io" in GRAPH["lensflow.candidates"]


def test_no_import_cycle() -> None:
    assert find_cycle(GRAPH) is None, " -> ".join(find_cycle(GRAPH) or [])


def test_a_cycle_is_found() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


@pytest.mark.parametrize("module", sorted(STAGES))
def test_stages_never_import_drivers(module: str) -> None:
    above = sorted(m for m in GRAPH[module] if _under(m, DRIVERS + TOP))
    assert not above, f"{module} imports {above}"


@pytest.mark.parametrize("driver", ["lensflow.simulate", "lensflow.train", "lensflow.evaluate"])
def test_simulate_train_and_evaluate_never_import_scan(driver: str) -> None:
    for module, targets in GRAPH.items():
        if _under(module, (driver,)):
            bad = sorted(m for m in targets if _under(m, ("lensflow.scan", *TOP)))
            assert not bad, f"{module} imports {bad}"


def test_the_check_set_never_imports_lensflows_simulator() -> None:
    """lensflow.independent renders with lenstronomy and its own population: nothing of
    lensflow.simulate (nor the scan or the command line) may reach it."""
    assert "lensflow.independent.check_set" in GRAPH
    for module, targets in GRAPH.items():
        if _under(module, ("lensflow.independent",)):
            bad = sorted(
                m for m in targets if _under(m, ("lensflow.simulate", "lensflow.scan", *TOP))
            )
            assert not bad, f"{module} imports {bad}"


def test_only_the_top_imports_the_command_line() -> None:
    for module, targets in GRAPH.items():
        if not _under(module, TOP):
            assert not [m for m in targets if _under(m, TOP)], module


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_no_writer_imports_the_catalog_reader(writer: str) -> None:
    assert "lensflow.catalog" not in GRAPH[writer]


def test_no_module_is_too_long() -> None:
    long = {
        str(p.relative_to(PACKAGE.parent)): n
        for p in PACKAGE.rglob("*.py")
        if (n := len(p.read_text().splitlines())) > 500
    }
    assert not long, long


COVERED_ELSEWHERE = {
    "lensflow/scan/blocks.py": "tests/scan/test_stages.py",  # through classify_partition
    "lensflow/errors.py": "tests/cli/test_common.py",  # class declarations; their messages are tested
    "lensflow/cuts/build.py": "tests/cuts/test_errors.py",  # through parse_cuts' messages
    "lensflow/cuts/problems.py": "tests/cuts/test_errors.py",
    "lensflow/cuts/tokens.py": "tests/cuts/test_errors.py",
    "lensflow/simulate/colours.py": "tests/simulate/test_draw.py",  # through draw_scene
    "lensflow/simulate/draw_base.py": "tests/simulate/test_draw.py",
    "lensflow/simulate/draw_galaxies.py": "tests/simulate/test_draw.py",
    "lensflow/simulate/draw_lookalikes.py": "tests/simulate/test_draw.py",
    "lensflow/simulate/draw_stars.py": "tests/simulate/test_draw.py",
    "lensflow/simulate/inject_deflectors.py": "tests/simulate/test_inject.py",  # injection sets
    "lensflow/simulate/inject_gallery.py": "tests/simulate/test_inject.py",
    "lensflow/simulate/inject_paint.py": "tests/simulate/test_inject.py",
    "lensflow/simulate/inject_store.py": "tests/simulate/test_inject.py",
    "lensflow/locations.py": "tests/test_remote.py",  # against local HTTP and S3 servers
    "lensflow/images/driver.py": "tests/images/test_build.py",  # through build_cutouts
    "lensflow/images/partitions.py": "tests/images/test_build.py",
    "lensflow/images/store.py": "tests/images/test_build.py",
    "lensflow/images/index.py": "tests/images/test_tiles.py",  # the footprint index
    "lensflow/images/projection.py": "tests/images/test_tiles.py",
    "lensflow/images/readers.py": "tests/images/test_stamps.py",  # through cut_stamps
    "lensflow/images/resample.py": "tests/images/test_stamps.py",
    "lensflow/train/finetune.py": "tests/train/test_grades.py",  # learning from grades
    "lensflow/train/grade_trial.py": "tests/train/test_grades.py",
    "lensflow/train/modelling_config.py": "tests/train/test_modelling.py",  # lens modelling
    "lensflow/train/modelling_data.py": "tests/train/test_modelling.py",
    "lensflow/train/modelling_net.py": "tests/train/test_modelling.py",
}
"""Modules whose behaviour is tested through another module's public function."""


def test_tests_mirror_the_package() -> None:
    root = PACKAGE.parent
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "__init__.py":
            continue
        rel = path.relative_to(root)
        mirror = root / "tests" / rel.parent.relative_to("lensflow") / f"test_{path.name}"
        covered = COVERED_ELSEWHERE.get(str(rel))
        if not mirror.exists() and not (covered and (root / covered).exists()):
            missing.append(str(mirror.relative_to(root)))
    assert not missing, missing


if __name__ == "__main__":
    for name in sorted(GRAPH):
        print(f"{name}: {', '.join(sorted(GRAPH[name])) or '-'}")
