"""Hostile cut text: refused or read as a column name, never run; the package evaluates no code."""

from __future__ import annotations

import ast
import builtins
import os
import sys
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa
import pytest

from lensflow import cuts
from lensflow.cuts import check_columns, parse_cuts
from lensflow.errors import CutExpressionError
from tests.cuts.reference import evaluate

pytestmark = pytest.mark.security


def hostile_texts(sentinel: Path) -> list[str]:
    """Text that would run code or touch files if anything evaluated it as Python."""
    s = str(sentinel)
    return [
        f'__import__("os").system("touch {s}")',
        f"__import__('os').system('touch {s}') or true",
        f"open('{s}', 'w').write('x')",
        "open('/etc/passwd').read()",
        "().__class__.__bases__",
        "().__class__.__bases__[0].__subclasses__()",
        "r.__class__.__mro__",
        "isnan.__globals__",
        "isnan(r).__class__",
        '__builtins__["eval"]("1")',
        'eval("1")',
        'exec("import os")',
        "compile('1', '', 'eval')",
        "getattr(r, '__class__')",
        f"f\"{{__import__('os').system('touch {s}')}}\"",
        "f'{r}' == 1",
        "b'x' == r",
        "r'x' == r",
        "import os",
        "os.system('true')",
        "r < 1; import os",
        "r < 1\nimport os",
        "r < 1\r\n__import__('os')",
        "r < 1 # comment",
        "r < 1 \\\n and g > 2",
        "\\x41 < 1",
        "r < 1\x00",
        "\x00",
        "r\x00 < 1",
        "`r\x00` < 1",
        "ｒ < 1",
        "r < １",
        "а < 1",
        "r < 1 аnd g > 2",
        "r\u200b < 1",
        "r < 1 \u202e or true",
        "r\u00a0< 1",
        "r < ٣",
        "lambda: 1",
        "lambda r: r < 1",
        "(lambda: 1)()",
        "[r for r in ()]",
        "{r: 1}",
        "r[0] < 1",
        "r if r else g",
        "r := 1",
        "r @ g",
        "yield r",
        "await r",
        "r < 1 and (g := 2)",
        "pc.field('r') < 1",
        "${r} < 1",
        "r < 1 -- drop table",
        "r < 1 /* c */",
        "r < 1 or 1=1",
        "r < 1' or '1'='1",
    ]


def test_hostile_text_is_refused_without_side_effects(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sentinel = tmp_path / "pwned"
    called: list[str] = []

    def trap(name: str) -> Callable[..., None]:
        def record(*args: object, **kwargs: object) -> None:
            called.append(name)

        return record

    for name in ("eval", "exec"):
        monkeypatch.setattr(builtins, name, trap(name))
    monkeypatch.setattr(os, "system", trap("os.system"))
    for text in hostile_texts(sentinel):
        with pytest.raises(CutExpressionError):
            parse_cuts(text)
    assert called == []
    assert not sentinel.exists()


def test_backquoted_code_is_only_a_column_name(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    text = f'`__import__("os").system("touch {sentinel}")` > 0'
    cut = parse_cuts(text)
    assert cut.columns == (f'__import__("os").system("touch {sentinel}")',)
    schema = pa.schema([("r", pa.float64())])
    with pytest.raises(CutExpressionError, match="unknown column"):
        check_columns(cut, schema)
    assert not evaluate(cut, {cut.columns[0]: -1.0})
    assert not sentinel.exists()


def test_package_uses_no_code_evaluation() -> None:
    sources = sorted(path.resolve() for path in Path(cuts.__file__).parent.rglob("*.py"))
    loaded = {
        Path(module.__file__).resolve()
        for name, module in sys.modules.items()
        if (name == "lensflow.cuts" or name.startswith("lensflow.cuts.")) and module.__file__
    }
    assert len(loaded) > 1
    assert loaded <= set(sources)  # every module of the package in use is scanned
    banned = {"eval", "exec", "compile", "__import__", "pickle", "numexpr", "pandas", "query"}
    banned_modules = {"pickle", "marshal", "numexpr", "pandas", "importlib", "os", "subprocess"}
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        used: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Name):
                used.add(node.id)
            elif isinstance(node, ast.Attribute):
                used.add(node.attr)
            elif isinstance(node, ast.Import):
                used.update(alias.name.split(".")[0] for alias in node.names)
                imported = {alias.name.split(".")[0] for alias in node.names}
                assert not imported & banned_modules, path
            elif isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] not in banned_modules, path
                used.update(alias.name for alias in node.names)
        assert not used & banned, f"{path} uses {sorted(used & banned)}"
        assert "Name" in {type(node).__name__ for node in ast.walk(tree)}, path  # saw the code
