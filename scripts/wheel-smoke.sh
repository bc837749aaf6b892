#!/usr/bin/env bash
# Build Murmurate's wheel, install it (not editable) into a fresh venv, and use it from there:
# every module imports, and init + post + log work in a throw-away home. Catches what the
# editable .venv hides: a package or data file left out of the wheel.
# Needs .venv (make .venv/.installed): its setuptools builds the wheel without network.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

# Build from a copy, so a stale build/ folder in the checkout cannot add files to the wheel.
mkdir "$work/src"
tar -c --exclude=./.git --exclude=./.venv --exclude=./build --exclude=./dist --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude=./tests --exclude=./bench -f - . | tar -x -C "$work/src"
.venv/bin/python -m pip wheel "$work/src" --no-deps --no-build-isolation --quiet -w "$work/dist"

# The wheel's dependencies come from the registry the same way as .venv's (pip's cache makes
# a second run quick).
"$PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install --quiet "$work"/dist/murmurate-*.whl

cd "$work"  # nowhere near the checkout: only the installed copy can be imported
"$work/venv/bin/python" - "$work/venv" <<'PY'
import importlib, pkgutil, sys
from pathlib import Path
import murmurate
venv = Path(sys.argv[1]).resolve()
names = [m.name for m in pkgutil.walk_packages(murmurate.__path__, "murmurate.")]
for name in names:
    module = importlib.import_module(name)
    assert Path(module.__file__).resolve().is_relative_to(venv), f"{name} imported from {module.__file__}"
assert len(names) > 60 and "murmurate.node.core.rpc" in names and "murmurate.node.service" in names, names
from murmurate.node.daemon import SHIPPED_BOOTSTRAP
assert SHIPPED_BOOTSTRAP.is_file() and SHIPPED_BOOTSTRAP.resolve().is_relative_to(venv), SHIPPED_BOOTSTRAP
print(f"wheel smoke: {len(names)} modules import from the installed wheel")
PY
murmurate="$work/venv/bin/murmurate"
"$murmurate" --home "$work/home" init --no-passphrase >/dev/null
"$murmurate" --home "$work/home" post "hello from the wheel" >/dev/null
"$murmurate" --home "$work/home" log | grep -q "hello from the wheel"
echo "wheel smoke: init, post and log work from the installed wheel"
