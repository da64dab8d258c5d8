"""Safe by construction: no eval, exec or pickle anywhere in the package."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lensflow

pytestmark = pytest.mark.security

PACKAGE = Path(lensflow.__file__).parent
FORBIDDEN_CALLS = {"eval", "exec", "compile", "__import__"}
FORBIDDEN_MODULES = {"pickle", "dill", "marshal", "shelve", "numexpr"}


def _sources() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", _sources(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_no_eval_exec_or_pickle(path: Path) -> None:
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            assert node.func.id not in FORBIDDEN_CALLS, f"{path}:{node.lineno} calls {node.func.id}"
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            assert node.func.attr not in {"query", "eval"}, (
                f"{path}:{node.lineno} .{node.func.attr}"
            )
            if (
                node.func.attr == "load"
                and isinstance(node.func.value, ast.Name)
                and node.func.value.id == "torch"
            ):
                keywords = {k.arg: k.value for k in node.keywords}
                weights_only = keywords.get("weights_only")
                assert isinstance(weights_only, ast.Constant) and weights_only.value is True, (
                    f"{path}:{node.lineno} torch.load without weights_only=True"
                )
        if isinstance(node, ast.Import | ast.ImportFrom):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module]
            for name in names:
                assert (name or "").split(".")[0] not in FORBIDDEN_MODULES, f"{path} imports {name}"
