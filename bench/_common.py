"""Shared pieces of the store benchmarks: deterministic identities, signed feeds, machine facts.

Everything is seeded so that two runs with the same parameters build the same bytes (the
timeline bench caches its store under bench/out/ keyed by them).
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import platform
import random
import shutil
import sys
from collections.abc import Callable, Sequence
from multiprocessing import get_context
from pathlib import Path

from murmurate.crypto import SigningIdentity
from murmurate.store import PayloadType, create_entry, encode_frame

OUT = Path(__file__).resolve().parent / "out"
NOW_MS = 1_760_000_000_000  # the benches' fixed "now": feeds end before it
DAY_MS = 86_400_000


def identity(index: int, salt: str = "bench") -> SigningIdentity:
    return SigningIdentity(hashlib.blake2b(f"{salt}:{index}".encode(), digest_size=32).digest())


def post_payload(rng: random.Random, mean_size: int) -> dict[str, str]:
    """A post whose canonical payload is mean_size +- 50 bytes (a text-only post)."""
    size = max(20, mean_size + rng.randint(-50, 50))
    # {"text": str16}: 1 (fixmap) + 5 ("text") + 3 (str16 header) bytes around the text.
    raw = rng.randbytes((size - 9) * 3 // 4 + 3)
    return {"text": base64.b64encode(raw).decode("ascii")[:size - 9]}


def build_feed(job: tuple[int, str, Sequence[int], int, int]) -> list[bytes]:
    """Sign one author's feed; `job` = (author index, salt, sorted timestamps, mean payload
    size, rng seed). Returns entry frames (compact to send between processes)."""
    index, salt, timestamps, mean_size, seed = job
    me = identity(index, salt)
    rng = random.Random(seed)
    frames = []
    prev = None
    for seq, ts in enumerate(timestamps, start=1):
        entry = create_entry(me, seq=seq, prev=prev, timestamp_ms=ts, payload_type=PayloadType.POST,
                             payload=post_payload(rng, mean_size))
        prev = entry.envelope.hash
        frames.append(encode_frame(entry))
    return frames


def build_feeds(jobs: Sequence[tuple[int, str, Sequence[int], int, int]], processes: int) -> list[list[bytes]]:
    """build_feed over many authors, on `processes` worker processes (signing is CPU-bound)."""
    if processes <= 1:
        return [build_feed(job) for job in jobs]
    with get_context("fork").Pool(processes) as pool:
        return pool.map(build_feed, jobs, chunksize=max(1, len(jobs) // (processes * 8)))


def cached_store(path: Path, rebuild: bool, build: Callable[[Path], None]) -> Path:
    """The store cached at `path` (keyed by the caller's parameters), built first if missing
    or if `rebuild` asks for a fresh one."""
    if rebuild:
        shutil.rmtree(path, ignore_errors=True)
    if path.exists():
        print(f"using the cached store {path}", file=sys.stderr)
    else:
        build(path)
    return path


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, object]:
    return {"cores": os.cpu_count() or 1, "cpu": cpu_model(), "python": platform.python_version()}


def percentile(values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile (p in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))
    return ordered[int(rank) - 1]


def emit(result: dict[str, object]) -> None:
    """The last line of a bench's output: one JSON object."""
    sys.stdout.flush()
    print(json.dumps(result, sort_keys=True))
