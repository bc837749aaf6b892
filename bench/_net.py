"""Shared pieces of the network benchmarks: signed feeds cached on disk, a source home
holding them, follower homes, real daemons (tests/daemons.py) and /proc sampling.

Everything is seeded: two runs with the same parameters sign the same bytes. Signed
frames are cached under bench/out/ (independent of the store's layout); a built source
home is cached beside them, keyed by the store's schema and record layout, so a change of
the LMDB layout (records.py, the layout docstring of store/env.py, its database flags)
rebuilds it from the cached frames instead of re-signing.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import struct
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from multiprocessing import get_context
from pathlib import Path

import nacl.signing

from _common import NOW_MS, OUT, build_feeds, identity

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from daemons import DaemonProcess, wait_until  # noqa: E402  (tests/ is not a package)
from murmurate.crypto import decode_key_file  # noqa: E402
from murmurate.store import PayloadType, Store, decode_frame  # noqa: E402
from murmurate.store.entry import SIGNING_DOMAIN  # noqa: E402

__all__ = ["DaemonProcess", "wait_until", "NOW_MS", "OUT", "feed_frames", "source_home", "follower_home",
           "author_keys", "verify_rate", "empty_bootstrap", "proc_status_kb", "machine_cores", "share_range",
           "share_homes"]

SALT = "net"
MINUTE_MS = 60_000
U32 = struct.Struct(">I")


def author_keys(feeds: int) -> list[bytes]:
    return [identity(i, SALT).public_key for i in range(feeds)]


def _jobs(feeds: int, per_feed: int) -> list[tuple[int, str, list[int], int, int]]:
    # One post a minute per feed, ending before NOW_MS (well in the past of the real clock).
    return [(i, SALT, [NOW_MS - (per_feed - s) * MINUTE_MS - i for s in range(1, per_feed + 1)], 200, i)
            for i in range(feeds)]


def feed_frames(feeds: int, per_feed: int) -> Iterator[list[bytes]]:
    """Each feed's entry frames, in order; signed on every core once, then read from the cache."""
    OUT.mkdir(exist_ok=True)
    path = OUT / f"net-frames-{feeds}x{per_feed}.bin"
    if not path.exists():
        started = time.monotonic()
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as f:
            step = 200  # feeds signed per round: bounds the memory of a 1M-entry build
            for first in range(0, feeds, step):
                for frames in build_feeds(_jobs(feeds, per_feed)[first:first + step], os.cpu_count() or 1):
                    f.write(U32.pack(len(frames)))
                    for frame in frames:
                        f.write(U32.pack(len(frame)) + frame)
        tmp.rename(path)
        log(f"signed {feeds * per_feed} entries in {time.monotonic() - started:.1f} s -> {path.name}")
    with path.open("rb") as f:
        for _ in range(feeds):
            (count,) = U32.unpack(f.read(4))
            out = []
            for _ in range(count):
                (size,) = U32.unpack(f.read(4))
                out.append(f.read(size))
            yield out


def _layout_key() -> str:
    """Changes when the store's on-disk layout may have changed (then the cached home is rebuilt)."""
    from murmurate.store import env as store_env  # as bench/timeline.py keys its cache
    h = hashlib.blake2b(digest_size=6)
    h.update((ROOT / "store" / "records.py").read_bytes())
    h.update(repr((store_env.__doc__, store_env.SCHEMA_VERSION, store_env.DB_FLAGS)).encode())
    return h.hexdigest()


def cli(home: Path, *args: str) -> None:
    env = {**os.environ, "MURMURATE_HOME": str(home), "MURMURATE_INSECURE_FAST_KDF": "1"}
    subprocess.run([sys.executable, "-m", "murmurate.ui.cli", *args], env=env, check=True,
                   capture_output=True, text=True, timeout=120)


def source_home(feeds: int, per_feed: int) -> Path:
    """A home (own identity, following nobody) whose store holds feeds x per_feed entries.
    Built once per layout and cached in bench/out/."""
    home = OUT / f"net-src-{feeds}x{per_feed}-{_layout_key()}"
    if (home / "complete").exists():
        return home
    shutil.rmtree(home, ignore_errors=True)
    started = time.monotonic()
    cli(home, "init", "--no-passphrase")
    total = _fill_store(home, feeds, per_feed, range(feeds))
    if total != feeds * per_feed:
        raise SystemExit(f"source store holds {total} entries, expected {feeds * per_feed}")
    (home / "complete").write_text("ok\n")
    log(f"built source home of {total} entries in {time.monotonic() - started:.1f} s -> {home.name}")
    return home


def share_range(feeds: int, part: int, parts: int) -> range:
    """The feed indexes that share `part` (of `parts`) holds: a contiguous run of the feeds."""
    return range(part * feeds // parts, (part + 1) * feeds // parts)


def share_homes(feeds: int, per_feed: int, parts: int) -> list[Path]:
    """`parts` homes like source_home's, each holding only its share_range of the same signed
    feeds (so together they hold each feed once). Built once per layout, cached in bench/out/;
    missing ones are built in parallel, one process per core."""
    homes = [OUT / f"net-share-{feeds}x{per_feed}-{part}of{parts}-{_layout_key()}" for part in range(parts)]
    missing = [(feeds, per_feed, part, parts, home) for part, home in enumerate(homes)
               if not (home / "complete").exists()]
    if missing:
        next(feed_frames(feeds, per_feed))  # sign the frames first (once, on every core)
        started = time.monotonic()
        with get_context("fork").Pool(min(len(missing), machine_cores())) as pool:
            pool.map(_build_share, missing, chunksize=1)
        log(f"built {len(missing)} share homes in {time.monotonic() - started:.1f} s")
    return homes


def _build_share(job: tuple[int, int, int, int, Path]) -> None:
    feeds, per_feed, part, parts, home = job
    shutil.rmtree(home, ignore_errors=True)
    wanted = share_range(feeds, part, parts)
    cli(home, "init", "--no-passphrase")
    total = _fill_store(home, feeds, per_feed, wanted)
    if total != len(wanted) * per_feed:
        raise SystemExit(f"share {part} holds {total} entries, expected {len(wanted) * per_feed}")
    (home / "complete").write_text("ok\n")


def _fill_store(home: Path, feeds: int, per_feed: int, wanted: range) -> int:
    """Ingest the cached signed feeds whose index is in `wanted` into home's store, audit
    them (a prepared home leaves its daemon no audit), and return how many entries it holds."""
    with Store(home / "store") as store:
        batch: list = []
        for index, frames in enumerate(feed_frames(feeds, per_feed)):
            if index >= wanted.stop:
                break
            if index in wanted:
                batch.extend(decode_frame(f) for f in frames)
            if len(batch) >= 5_000:
                _ingest_all(store, batch)
                batch = []
        if batch:
            _ingest_all(store, batch)
        store.audit_all()
        return store.count_entries()


def _ingest_all(store: Store, batch: list) -> None:
    report = store.ingest(batch, NOW_MS + MINUTE_MS)
    if report.rejected or report.held:
        raise SystemExit(f"building the source store: {report.rejected[:1]} held {report.held}")


def follower_home(root: Path, name: str, follows: Sequence[bytes]) -> DaemonProcess:
    """A fresh home whose own feed follows `follows` (the follow entries written before the
    daemon starts, as if followed over days)."""
    node = DaemonProcess(root, name, extra_args=("--bootstrap", str(empty_bootstrap(root))))
    node.init()
    seed_file = node.home / "identity.key"
    me = decode_key_file(seed_file.read_bytes(), None)
    with Store(node.home / "store") as store:
        store.set_self(me.public_key)
        now = int(time.time() * 1000) - len(follows) - 1_000
        for i, author in enumerate(follows):
            store.append_own(me, PayloadType.FOLLOW, {"id": author}, now + i)
    return node


def empty_bootstrap(root: Path) -> Path:
    path = root / "no-bootstrap.toml"
    path.write_text("peer = []\n")
    return path


def verify_rate(frames: Sequence[bytes], seconds: float = 1.0) -> float:
    """Single-thread PyNaCl VerifyKey.verify per second over these entries (at least `seconds`)."""
    work = []
    keys: dict[bytes, nacl.signing.VerifyKey] = {}
    for frame in frames:
        env = decode_frame(frame).envelope
        key = keys.get(env.author) or keys.setdefault(env.author, nacl.signing.VerifyKey(env.author))
        work.append((key, SIGNING_DOMAIN + env.body, env.signature))
    done = 0
    started = time.perf_counter()
    while True:
        for key, message, signature in work:
            key.verify(message, signature)
        done += len(work)
        elapsed = time.perf_counter() - started
        if elapsed >= seconds:
            return done / elapsed


def proc_status_kb(pid: int, *fields: str) -> dict[str, int]:
    """Fields of /proc/PID/status in kB (missing ones as 0)."""
    out = dict.fromkeys(fields, 0)
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for line in text.splitlines():
        name, _, rest = line.partition(":")
        if name in out:
            out[name] = int(rest.split()[0])
    return out


def machine_cores() -> int:
    return os.cpu_count() or 1


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
