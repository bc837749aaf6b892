"""Byte layouts of the store's keys and values. Pure; see docs/architecture.md, "Store".

All integers big-endian so that LMDB's byte order is numeric order.
"""

from __future__ import annotations

import base64
import struct
from typing import NamedTuple

import msgpack

from .entry import frame_size
from .feed import FeedHead

U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")
SEQ_ITEM = struct.Struct(">QQQH")       # seq, local_id, timestamp_ms, payload_type (by_seq dup value)
TIMELINE_KEY = struct.Struct(">QIQ")     # timestamp_ms, feed_num, seq
LOG_HEAD = struct.Struct(">BIH")         # flags, feed_num, stored envelope length

LOG_PAYLOAD_DROPPED = 0x01  # the payload was dropped on purpose (deleted): never take it back
# Storage-only flag: the log left the envelope's author out (see pack_log). Never
# returned by unpack_log.
_LOG_AUTHOR_ELIDED = 0x02
_BIN32 = b"\xc4\x20"   # msgpack bin8 header of a 32-byte value: the author's canonical form

FEED_FORKED = 0x01
FEED_BAD_SIGNATURE = 0x02  # the audit found an entry whose own signature fails (store/audit.py)


class FeedRecord(NamedTuple):
    """A feed's row in `feeds`. (A NamedTuple, not a frozen dataclass: ingest makes one per
    entry appended, and a NamedTuple builds five times faster.)"""

    feed_num: int
    head_seq: int = 0
    head_hash: bytes | None = None
    head_ts: int = 0
    flags: int = 0
    held: int = 0

    @property
    def head(self) -> FeedHead | None:
        if self.head_seq == 0 or self.head_hash is None:
            return None
        return FeedHead(self.head_seq, self.head_hash, self.head_ts)

    @property
    def forked(self) -> bool:
        return bool(self.flags & FEED_FORKED)

    @property
    def bad_signature(self) -> bool:
        return bool(self.flags & FEED_BAD_SIGNATURE)

    @property
    def frozen(self) -> bool:
        """A frozen feed takes no more entries: a fork or a bad signature proved the author broke it."""
        return bool(self.flags & (FEED_FORKED | FEED_BAD_SIGNATURE))

    @property
    def frozen_why(self) -> str:
        return "forked" if self.forked else "signed with a bad signature in its chain"

    def pack(self) -> bytes:
        return msgpack.packb([self.feed_num, self.head_seq, self.head_hash, self.head_ts, self.flags, self.held],
                             use_bin_type=True)

    @classmethod
    def unpack(cls, data: bytes) -> "FeedRecord":
        return cls(*msgpack.unpackb(data, raw=False))


def pack_log(flags: int, feed_num: int, envelope: bytes, payload: bytes | None) -> bytes:
    """A log record: the envelope without its author (the feed number names it), then the
    payload.

    The envelope body is canonical msgpack [1, author, ...]: bytes 2..35 are always the
    author as bin8, so leaving them out saves 34 of ~185 bytes and unpack_log puts back
    the exact bytes. (The payload hash stays, though the payload could rebuild it: verify
    must tell a damaged payload from a damaged envelope.)
    """
    flags &= LOG_PAYLOAD_DROPPED
    stored = envelope
    if stored[2:4] == _BIN32:
        stored = stored[:2] + stored[36:]
        flags |= _LOG_AUTHOR_ELIDED
    return LOG_HEAD.pack(flags, feed_num, len(stored)) + stored + (payload or b"")


def unpack_log(data: bytes, author: bytes) -> tuple[int, int, bytes, bytes | None]:
    """(flags, feed_num, envelope, payload or None) of a log record of `author`'s feed."""
    flags, feed_num, env_len = LOG_HEAD.unpack_from(data)
    start = LOG_HEAD.size
    stored = bytes(data[start:start + env_len])
    rest = bytes(data[start + env_len:])
    # A payload is a msgpack map, never zero bytes: nothing after the envelope means no
    # payload (not fetched yet, or dropped).
    payload = rest if rest and not flags & LOG_PAYLOAD_DROPPED else None
    if flags & _LOG_AUTHOR_ELIDED:
        stored = stored[:2] + _BIN32 + author + stored[2:]
    return flags & LOG_PAYLOAD_DROPPED, feed_num, stored, payload


def log_frame_size(data: bytes) -> int:
    """The size of the wire frame (entry.frame_size) of the entry a log record holds,
    from its lengths alone: what unpack_log would give back, without building it."""
    flags, _, env_len = LOG_HEAD.unpack_from(data)
    rest = len(data) - LOG_HEAD.size - env_len
    envelope = env_len + (len(_BIN32) + 32 if flags & _LOG_AUTHOR_ELIDED else 0)  # what pack_log left out
    payload = rest if rest and not flags & LOG_PAYLOAD_DROPPED else None
    return frame_size(envelope, payload)


def encode_cursor(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode("ascii").rstrip("=")


def decode_cursor(text: str) -> bytes:
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise ValueError(f"not a timeline cursor: {text!r}") from None
    if len(key) != TIMELINE_KEY.size:
        raise ValueError(f"not a timeline cursor: {text!r}")
    return key

