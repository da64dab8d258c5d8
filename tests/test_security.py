"""Safe by construction: no eval/exec/pickle in the package, loopback bindings by default."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import lensflow
from lensflow.config import ClusterConfig
from lensflow.errors import ConfigError
from lensflow.scan.cluster import check_scheduler_address, connect, dashboard_link

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


def test_local_cluster_binds_loopback_only() -> None:
    with connect(ClusterConfig(n_workers=1, dashboard=True)) as client:
        assert client.scheduler.address.startswith("tcp://127.0.0.1:")
        workers = client.scheduler_info(n_workers=-1)["workers"]
        assert all(address.startswith("tcp://127.0.0.1:") for address in workers)
        link = dashboard_link(client)
        assert link is not None and link.startswith("http://127.0.0.1:")


@pytest.mark.parametrize(
    "address", ["tcp://10.1.2.3:8786", "tcp://example.org:8786", "10.0.0.1:8786"]
)
def test_remote_plain_tcp_needs_insecure(address: str) -> None:
    with pytest.raises(ConfigError, match="--insecure"):
        check_scheduler_address(address, insecure=False)
    check_scheduler_address(address, insecure=True)


@pytest.mark.parametrize(
    "address", ["tls://10.1.2.3:8786", "tcp://127.0.0.1:8786", "tcp://localhost:1"]
)
def test_tls_and_loopback_are_allowed(address: str) -> None:
    check_scheduler_address(address, insecure=False)
