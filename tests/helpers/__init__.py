"""Shared helpers for the crypto and store tests: deterministic identities and signed chains.

Everything here is pure and seeded: the same arguments give the same bytes, so a failing
test can be rerun exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Any

import lmdb

from murmurate.crypto import SigningIdentity
from murmurate.store import Entry, PayloadType, create_entry, decode_envelope

# A fixed "now" for store tests: 2023-11-14T22:13:20Z in milliseconds.
NOW_MS = 1_700_000_000_000


def identity(n: int) -> SigningIdentity:
    """The n-th test identity; its seed is derived from n so tests never share keys by accident."""
    return SigningIdentity(hashlib.blake2b(b"murmurate-test-%d" % n, digest_size=32).digest())


def post(text: str, **extra: Any) -> dict[str, Any]:
    return {"text": text, **extra}


def chain(who: SigningIdentity, items: Iterable[tuple[int, int, dict[str, Any]]], *,
          after: Entry | None = None) -> list[Entry]:
    """Sign a chain of entries from (timestamp_ms, payload_type, payload) triples.

    The first entry follows `after` (or is seq 1 when `after` is None).
    """
    out: list[Entry] = []
    last = after
    for ts, ptype, payload in items:
        entry = create_entry(who, seq=last.envelope.seq + 1 if last else 1,
                             prev=last.envelope.hash if last else None, timestamp_ms=ts,
                             payload_type=ptype, payload=payload)
        out.append(entry)
        last = entry
    return out


def posts(who: SigningIdentity, timestamps: Sequence[int], *, after: Entry | None = None,
          label: str = "") -> list[Entry]:
    """A chain of posts, one per timestamp, with texts that name author, seq and label."""
    first = after.envelope.seq + 1 if after else 1
    return chain(who, [(ts, PayloadType.POST, post(f"{label}post {first + i} at {ts}"))
                       for i, ts in enumerate(timestamps)], after=after)


def bad_signature(entry: Entry) -> Entry:
    """`entry` with one bit of its signature flipped: same fields, signature fails."""
    raw = bytearray(entry.envelope.raw)
    raw[-1] ^= 0x01
    return Entry(decode_envelope(bytes(raw)), entry.payload)


def signed_over_bad(who: SigningIdentity, timestamps: Sequence[int], bad_seq: int) -> list[Entry]:
    """A chain of posts as a broken (or malicious) author signs it: entry `bad_seq` carries
    a bad signature and every later entry, signed properly, names its hash as prev. This is
    what an attacker who is the author can produce; nobody else can sign the later ones."""
    good = posts(who, timestamps[:bad_seq])
    broken = bad_signature(good[-1])
    return good[:-1] + [broken] + posts(who, timestamps[bad_seq:], after=broken, label="after ")


def key_of(entry: Entry) -> tuple[bytes, int]:
    return entry.envelope.author, entry.envelope.seq


def raw_env(path: Any, **kwargs: Any) -> lmdb.Environment:
    """Open a store's LMDB environment directly (the store must be closed), to damage it."""
    return lmdb.open(str(path), max_dbs=32, subdir=True, **kwargs)
