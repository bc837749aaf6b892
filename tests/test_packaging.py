"""A non-editable install carries every package and the shipped data file.

The wheel is built from a copy of the source (so the checkout gets no build/ folder) with
the backend already in .venv (no network), and its file list is compared with the source
tree: a subpackage or data file left out of pyproject.toml fails here, not on a user's
machine after `pip install .`.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LAYERS = ("crypto", "store", "node", "ui")
SKIP = shutil.ignore_patterns(".git", ".venv", "__pycache__", "build", "dist", "*.egg-info", "tests", "bench",
                              "data", "*.lmdb", "*.mdb")


def build_wheel(tmp_path: Path) -> Path:
    source = tmp_path / "src"
    shutil.copytree(ROOT, source, ignore=SKIP)
    out = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation",
                    "--quiet", "--disable-pip-version-check", "-w", str(out)],
                   check=True, capture_output=True, timeout=300)
    (wheel,) = out.glob("murmurate-*.whl")
    return wheel


def source_modules() -> set[str]:
    """Every module file of the packages, as its path inside an installed `murmurate`."""
    found = set()
    for layer in LAYERS:
        for path in (ROOT / layer).rglob("*.py"):
            if "__pycache__" not in path.parts:
                found.add("murmurate/" + path.relative_to(ROOT).as_posix())
    return found


@pytest.mark.slow
def test_the_wheel_holds_every_module_and_the_bootstrap_file(tmp_path: Path) -> None:
    with zipfile.ZipFile(build_wheel(tmp_path)) as wheel:
        names = set(wheel.namelist())
        entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
        assert "murmurate = murmurate.ui.cli:main" in wheel.read(entry_points).decode()
    missing = sorted(source_modules() - names)
    assert missing == [], f"left out of the wheel (pyproject.toml [tool.setuptools] packages): {missing}"
    assert "murmurate/bootstrap_peers.toml" in names
    assert "murmurate/node/core/__init__.py" in names  # the one a hand-kept list once forgot


def test_the_shipped_bootstrap_file_is_where_the_installed_daemon_looks() -> None:
    """node/daemon.py finds it beside the package folders: murmurate/bootstrap_peers.toml in
    the wheel, the repository root in a checkout."""
    from murmurate.node.daemon import SHIPPED_BOOTSTRAP
    assert SHIPPED_BOOTSTRAP == ROOT / "bootstrap_peers.toml" and SHIPPED_BOOTSTRAP.is_file()
