"""Generate signed feeds for the crash test, in a process of its own.

    python crash_feeds.py OUT FIRST COUNT PER_AUTHOR

writes, for authors FIRST .. FIRST+COUNT-1 in turn, PER_AUTHOR entry frames in seq order,
each as u32 big-endian length + frame. Every 10th entry follows another crash author, the
rest are posts. Deterministic: the same arguments give the same bytes, so several processes
can each make a share of the authors.

The frames are encoded here with msgpack directly, not with create_entry: twice as fast, and
an independent encoder (test_crash checks that both give the same bytes; the store checks
every entry in full on ingest anyway).
"""

from __future__ import annotations

import hashlib
import struct
import sys
from collections.abc import Iterator
from typing import Any

import msgpack

from murmurate.crypto import SigningIdentity
from murmurate.store import PayloadType, create_entry, encode_frame

BASE_MS = 1_600_000_000_000
LENGTH = struct.Struct(">I")


def author(n: int) -> SigningIdentity:
    return SigningIdentity(hashlib.blake2b(b"murmurate-crash-%d" % n, digest_size=32).digest())


def _contents(n: int, seq: int) -> tuple[int, dict[str, Any]]:
    if seq % 10 == 0:
        return PayloadType.FOLLOW, {"id": author(n + 1).public_key}
    return PayloadType.POST, {"text": f"author {n} says {seq}"}


def _timestamp(n: int, seq: int) -> int:
    return BASE_MS + seq * 1_000 + n


def feed(n: int, per_author: int) -> Iterator[bytes]:
    """Author n's first `per_author` frames (envelope and payload)."""
    who = author(n)
    pack = msgpack.Packer(use_bin_type=True).pack
    prev = None
    for seq in range(1, per_author + 1):
        kind, payload = _contents(n, seq)
        data = pack(payload)  # one key: canonical as it is
        body = pack([1, who.public_key, seq, prev, _timestamp(n, seq), int(kind), len(data),
                     hashlib.blake2b(data, digest_size=32).digest()])
        raw = body + who.sign(b"murmurate-entry-v1:" + body)
        prev = hashlib.blake2b(raw, digest_size=32).digest()
        yield pack([raw, data])


def feed_by_create_entry(n: int, per_author: int) -> Iterator[bytes]:
    """The same frames through the store's own create_entry (slow; for the cross-check)."""
    who, prev = author(n), None
    for seq in range(1, per_author + 1):
        kind, payload = _contents(n, seq)
        entry = create_entry(who, seq=seq, prev=prev, timestamp_ms=_timestamp(n, seq),
                             payload_type=kind, payload=payload)
        prev = entry.envelope.hash
        yield encode_frame(entry)


def split_frames(data: bytes) -> list[bytes]:
    frames, at = [], 0
    while at < len(data):
        (size,) = LENGTH.unpack_from(data, at)
        frames.append(data[at + 4:at + 4 + size])
        at += 4 + size
    return frames


def main(out: str, first: int, count: int, per_author: int) -> None:
    with open(out, "wb") as f:
        for n in range(first, first + count):
            for frame in feed(n, per_author):
                f.write(LENGTH.pack(len(frame)) + frame)


if __name__ == "__main__":
    main(sys.argv[1], *map(int, sys.argv[2:5]))
