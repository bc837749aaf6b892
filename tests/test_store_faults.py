"""The store when things go wrong on this node: a newer schema, a full map, a full disk.

In each case what was committed before stays intact and verifies after a reopen.
"""

from __future__ import annotations

import errno
import os
import struct
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import NOW_MS, chain, identity, key_of, raw_env
from murmurate.store import (SCHEMA_VERSION, Entry, LocalStoreError, PayloadType, SchemaTooNewError, Store,
                             StoreFullError)

AUTHORS = [identity(100 + i) for i in range(4)]


def big_feeds(per_author: int) -> list[Entry]:
    """Posts of about 4 KiB from several authors, interleaved: a map fills after a few hundred."""
    feeds = [chain(who, [(1_000 + i, PayloadType.POST, {"text": f"{n}:{i}:" + "x" * 4000})
                         for i in range(per_author)]) for n, who in enumerate(AUTHORS)]
    return [e for group in zip(*feeds) for e in group]


def batches(entries: list[Entry], size: int) -> Iterator[list[Entry]]:
    for i in range(0, len(entries), size):
        yield entries[i:i + size]


def assert_holds(store: Store, committed: list[tuple[bytes, int]], stream: list[Entry]) -> None:
    """Every committed entry is there, byte for byte, and the whole store verifies."""
    by_key = {key_of(e): e for e in stream}
    assert store.count_entries() == len(committed)
    for key in committed:
        stored = store.get(*key)
        assert stored is not None, key
        assert stored.envelope.raw == by_key[key].envelope.raw
        assert stored.entry.payload == by_key[key].payload
    for who in AUTHORS:
        mine = [seq for author, seq in committed if author == who.public_key]
        head = store.head(who.public_key)
        assert (head.seq if head else 0) == max(mine, default=0)
    assert store.verify() == []


def ingest_until_full(store: Store, stream: list[Entry], size: int, *,
                      committed: list[tuple[bytes, int]] | None = None,
                      full: type[LocalStoreError] = StoreFullError) -> list[tuple[bytes, int]]:
    """Ingest `stream` in batches until the store refuses one with `full`; return what
    was committed (`committed` holds what went in before)."""
    committed = list(committed or [])
    for batch in batches(stream, size):
        try:
            report = store.ingest(batch, NOW_MS)
        except full as e:
            assert any(word in str(e) for word in ("full", "space", "map", "disk")), e
            # The batch in flight left nothing behind, even in the store still open.
            assert store.count_entries() == len(committed)
            return committed
        assert report.rejected == () and report.held == 0
        committed += report.appended
    raise AssertionError(f"the store never filled up ({len(committed)} entries went in)")


# -- schema ----------------------------------------------------------------------------------

@pytest.mark.parametrize("readonly", [False, True])
def test_newer_schema_refused_and_not_touched(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "store"
    with Store(path) as s:
        s.ingest(big_feeds(2), NOW_MS)
        assert s.schema_version == SCHEMA_VERSION
    env = raw_env(path)
    try:
        with env.begin(write=True) as txn:
            meta = env.open_db(b"meta", txn=txn, create=False)
            assert txn.get(b"schema", db=meta) == struct.pack(">I", SCHEMA_VERSION)
            txn.put(b"schema", struct.pack(">I", SCHEMA_VERSION + 1), db=meta)
    finally:
        env.close()
    before = (path / "data.mdb").read_bytes()
    with pytest.raises(SchemaTooNewError, match=f"schema version {SCHEMA_VERSION + 1}"):
        Store(path, readonly=readonly)
    assert (path / "data.mdb").read_bytes() == before


@pytest.mark.parametrize("readonly", [False, True])
def test_current_schema_reopens_and_reads(tmp_path: Path, readonly: bool) -> None:
    path = tmp_path / "store"
    stream = big_feeds(2)
    with Store(path) as s:
        s.ingest(stream, NOW_MS)
    with Store(path, readonly=readonly) as s:
        assert s.schema_version == SCHEMA_VERSION
        assert_holds(s, [key_of(e) for e in stream], stream)


# -- full map --------------------------------------------------------------------------------

def test_full_map_keeps_every_committed_entry(tmp_path: Path) -> None:
    path = tmp_path / "store"
    stream = big_feeds(150)  # 600 entries of 4 KiB: more than 2 MiB
    with Store(path, map_size=2 << 20) as s:
        committed = ingest_until_full(s, stream, 16)
        assert len(committed) > 16
        with pytest.raises(StoreFullError):  # still full, still refused whole
            s.ingest(stream[len(committed):len(committed) + 16], NOW_MS)
    with Store(path, map_size=2 << 20) as s:
        assert_holds(s, committed, stream)
    with Store(path, map_size=64 << 20) as s:  # a bigger map: the rest goes in
        for batch in batches(stream, 50):
            s.ingest(batch, NOW_MS)
        assert_holds(s, [key_of(e) for e in stream], stream)


# -- full disk -------------------------------------------------------------------------------

@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 4 MiB tmpfs (the tests run as root, here and in CI)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)]).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)], check=True)  # still busy: detach it


def fill(path: Path) -> int:
    """Write `path` until the disk is full; return how many bytes fit."""
    written = 0
    with open(path, "wb", buffering=0) as f:
        for size in (1 << 16, 4096, 512, 1):
            while True:
                try:
                    written += f.write(b"\0" * size)
                except OSError as e:
                    assert e.errno == errno.ENOSPC
                    break
    return written


@pytest.mark.parametrize("relief", ["delete the filler", "grow the disk"])
def test_full_disk_keeps_every_committed_entry(small_disk: Path, relief: str) -> None:
    path = small_disk / "store"
    stream = big_feeds(250)  # 1,000 entries of 4 KiB: more than the disk
    committed: list[tuple[bytes, int]] = []
    s = Store(path)
    try:
        for batch in batches(stream[:40], 20):
            committed += s.ingest(batch, NOW_MS).appended
        assert fill(small_disk / "filler") > 0
        # StoreFullError is what the store promises; any clear LocalStoreError would do.
        committed = ingest_until_full(s, stream[40:], 20, committed=committed, full=LocalStoreError)
    finally:
        s.close()
    assert len(committed) >= 40
    if relief == "delete the filler":
        os.unlink(small_disk / "filler")
    else:
        subprocess.run(["mount", "-o", "remount,size=16m", str(small_disk)], check=True)
    with Store(path) as s:
        assert_holds(s, committed, stream)
        more = s.ingest(stream[len(committed):len(committed) + 100], NOW_MS)
        assert len(more.appended) == 100
        assert_holds(s, committed + list(more.appended), stream)
