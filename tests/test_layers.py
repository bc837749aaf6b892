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
