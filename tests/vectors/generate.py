"""Write the test vectors of this folder. Deterministic: fixed seeds, timestamps, salts and
nonces (Ed25519 signatures are deterministic too), so running it again gives the same
bytes; tests/test_vectors.py checks that the committed JSON is what this script writes.

Usage: python tests/vectors/generate.py [OUT_DIR]     (default: this folder)
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import gen_ed25519
import gen_entries
import gen_misc

BUILDERS = {
    "entries.json": gen_entries.build,
    "ids.json": gen_misc.build_ids,
    "keyfile.json": gen_misc.build_keyfile,
    "canonical.json": gen_misc.build_canonical,
    "ed25519.json": gen_ed25519.build,
}


def render(data: Any) -> bytes:
    return (json.dumps(data, indent=1, ensure_ascii=True) + "\n").encode("ascii")


def main(argv: list[str]) -> None:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    for name, build in BUILDERS.items():
        (out / name).write_bytes(render(build()))


if __name__ == "__main__":
    main(sys.argv)
