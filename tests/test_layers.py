"""Imports point downwards only: crypto -> store -> node -> ui (DESIGN section 1)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
ORDER = ["crypto", "store", "node", "ui"]
# Third-party packages each layer may not touch.
FORBIDDEN = {
    "crypto": {"lmdb", "trio", "libp2p", "textual", "msgpack"},
    "store": {"trio", "libp2p", "textual"},
    "node": {"textual"},
    "ui": {"trio", "libp2p", "lmdb"},
}


def _imports(path: Path) -> list[str]:
    """Absolute names of every module `path` imports (relative imports resolved)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = ["murmurate", *path.relative_to(ROOT).parent.parts]
    names: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                if len(base) < 2:
                    names.append("murmurate")  # climbs out of its layer: never allowed
                    continue
                names.append(".".join(base + ([node.module] if node.module else [])))
            else:
                names.append(node.module or "")
    return names


def _violations(package: str) -> list[str]:
    rank = ORDER.index(package)
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] == "murmurate":
                target = parts[1] if len(parts) > 1 else ""
                if target not in ORDER or ORDER.index(target) > rank:
                    found.append(f"{path.relative_to(ROOT)} imports {name} (upward or unknown)")
            elif parts[0] in FORBIDDEN[package]:
                found.append(f"{path.relative_to(ROOT)} imports {name} (not allowed in {package}/)")
    return found


@pytest.mark.parametrize("package", ORDER)
def test_imports_point_downwards(package: str) -> None:
    assert _violations(package) == []


def test_checker_catches_an_upward_import(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "store").mkdir()
    (tmp_path / "store" / "sub").mkdir()
    (tmp_path / "store" / "bad.py").write_text("from murmurate.node import thing\nimport trio\n")
    (tmp_path / "store" / "sub" / "worse.py").write_text("from ...ui import x\nfrom .. import fine\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert len(_violations("store")) == 3


def test_only_one_module_imports_libp2p() -> None:
    users = [p for pkg in ORDER for p in (ROOT / pkg).rglob("*.py")
             if any(n.split(".")[0] == "libp2p" for n in _imports(p))]
    assert len(users) <= 1, users


# node/core/ holds the pure cores (the sync protocol, the replication engine, ...): no I/O,
# no clock of their own. The shells around them (node/*.py) do the trio, LMDB and libp2p.
PURE_CORE_FORBIDDEN = {"trio", "lmdb", "libp2p", "socket", "asyncio", "multiaddr"}


def _core_violations(core: Path) -> list[str]:
    found = []
    for path in sorted(core.rglob("*.py")):
        for name in _imports(path):
            parts = name.split(".")
            if parts[0] in PURE_CORE_FORBIDDEN:
                found.append(f"{path.relative_to(ROOT)} imports {name} (a pure core does no I/O)")
            elif parts[:2] == ["murmurate", "node"] and parts[2:3] not in (["core"], ["errors"]):
                found.append(f"{path.relative_to(ROOT)} imports {name} (a shell, from a pure core)")
    return found


def test_pure_cores_import_no_io() -> None:
    assert _core_violations(ROOT / "node" / "core") == []


def test_core_checker_catches_io(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    core = tmp_path / "node" / "core"
    core.mkdir(parents=True)
    (core / "bad.py").write_text("import trio\nfrom lmdb import open\nfrom ..replicator import Replicator\n"
                                 "from .sync import fine\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert len(_core_violations(core)) == 3


# -- private names and import cycles -------------------------------------------------------

def _module_name(path: Path) -> str:
    parts = ["murmurate", *path.relative_to(ROOT).with_suffix("").parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for pkg in ORDER for p in sorted((ROOT / pkg).rglob("*.py"))}


def _private_imports() -> list[str]:
    """`from x import _name`: a module reaching into another's private names."""
    found = []
    for name, path in _modules().items():
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.ImportFrom):
                found += [f"{name} imports {alias.name} from {'.' * node.level}{node.module or ''}"
                          for alias in node.names if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


def _runs_on_import(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """The import statements a module runs when it is imported: at module level, inside
    if/try/with, but not under `if TYPE_CHECKING:` and not inside functions or classes."""
    found: list[ast.Import | ast.ImportFrom] = []
    for stmt in body:
        if isinstance(stmt, (ast.Import, ast.ImportFrom)):
            found.append(stmt)
        elif isinstance(stmt, ast.If):
            test = stmt.test
            if not (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING"
                    or isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"):
                found += _runs_on_import(stmt.body)
            found += _runs_on_import(stmt.orelse)
        elif isinstance(stmt, ast.Try):
            for block in (stmt.body, stmt.orelse, stmt.finalbody, *(h.body for h in stmt.handlers)):
                found += _runs_on_import(block)
        elif isinstance(stmt, ast.With):
            found += _runs_on_import(stmt.body)
    return found


def _import_graph() -> dict[str, set[str]]:
    """Module -> the modules of ours it imports when imported (`from pkg import mod` names mod)."""
    modules = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for stmt in _runs_on_import(ast.parse(path.read_text(), filename=str(path)).body):
            if isinstance(stmt, ast.Import):
                targets |= {alias.name for alias in stmt.names if alias.name in modules}
                continue
            base = package.split(".")[: len(package.split(".")) - stmt.level + 1] if stmt.level else []
            source = ".".join(base + ([stmt.module] if stmt.module else []))
            for alias in stmt.names:
                if f"{source}.{alias.name}" in modules:
                    targets.add(f"{source}.{alias.name}")
                elif source in modules:
                    targets.add(source)
        graph[name] = targets - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    groups: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    groups.append(sorted(group))
    return groups


def test_no_module_imports_another_modules_private_names() -> None:
    assert _private_imports() == []


def test_no_import_cycles_between_modules() -> None:
    assert _cycles(_import_graph()) == []


def test_the_checkers_catch_a_private_import_and_a_cycle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for pkg in ORDER:
        (tmp_path / pkg).mkdir()
    (tmp_path / "node" / "__init__.py").write_text("")
    (tmp_path / "node" / "a.py").write_text("from .b import _helper\n")
    (tmp_path / "node" / "b.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                                            "    from . import d\nfrom murmurate.node import c\n")
    (tmp_path / "node" / "c.py").write_text("import murmurate.node.a\n")
    (tmp_path / "node" / "d.py").write_text("from . import b\n\ndef later():\n    from . import a\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert _private_imports() == ["murmurate.node.a imports _helper from .b"]
    # a -> b -> c -> a is a cycle; d's imports of b (TYPE_CHECKING) and a (in a function) are not.
    assert _cycles(_import_graph()) == [["murmurate.node.a", "murmurate.node.b", "murmurate.node.c"]]
