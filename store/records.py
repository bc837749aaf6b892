"""Byte layouts of the store's keys and values. Pure; see docs/architecture.md, "Store".

All integers big-endian so that LMDB's byte order is numeric order.
"""

from __future__ import annotations

import base64
import struct
from dataclasses import dataclass

import msgpack

from .feed import FeedHead

U32 = struct.Struct(">I")
U64 = struct.Struct(">Q")
SEQ_KEY = struct.Struct(">IQ")           # feed_num, seq
SEQ_VALUE = struct.Struct(">QQH")        # local_id, timestamp_ms, payload_type
TIMELINE_KEY = struct.Struct(">QIQ")     # timestamp_ms, feed_num, seq
LOG_HEAD = struct.Struct(">BH")          # flags, envelope length

LOG_PAYLOAD_DROPPED = 0x01  # the payload was dropped on purpose (deleted): never take it back

FEED_FORKED = 0x01


@dataclass(frozen=True)
class FeedRecord:
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

    def pack(self) -> bytes:
        return msgpack.packb([self.feed_num, self.head_seq, self.head_hash, self.head_ts, self.flags, self.held],
                             use_bin_type=True)

    @classmethod
    def unpack(cls, data: bytes) -> "FeedRecord":
        return cls(*msgpack.unpackb(data, raw=False))


def pack_log(flags: int, envelope: bytes, payload: bytes | None) -> bytes:
    return LOG_HEAD.pack(flags, len(envelope)) + envelope + (payload or b"")


def unpack_log(data: bytes) -> tuple[int, bytes, bytes | None]:
    flags, env_len = LOG_HEAD.unpack_from(data)
    start = LOG_HEAD.size
    envelope = bytes(data[start:start + env_len])
    rest = bytes(data[start + env_len:])
    # A payload is a msgpack map, never zero bytes: nothing after the envelope means no
    # payload (not fetched yet, or dropped).
    has_payload = not (flags & LOG_PAYLOAD_DROPPED) and len(rest) > 0
    return flags, envelope, (rest if has_payload else None)


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

