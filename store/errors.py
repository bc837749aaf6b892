"""Errors of the store package.

`StoreError` is the base. `LocalStoreError`: this node's side (a store made by a newer
version, a full disk or map, a damaged export file the user handed us).
`InvalidEntryError`: a remote party sent an entry that breaks the feed rules; its
`reason` is one of the codes in `Reason` (also used by tests/vectors).
"""

from __future__ import annotations

from enum import Enum


class StoreError(Exception):
    """Base of every error raised by murmurate.store."""


class LocalStoreError(StoreError):
    """Something on this node is wrong or full; what is already committed is intact."""


class SchemaTooNewError(LocalStoreError):
    """The store was written by a newer Murmurate; it is refused, not touched."""


class StoreFullError(LocalStoreError):
    """The LMDB map or the disk is full. The batch was not written; earlier data is intact."""


class ArchiveError(LocalStoreError):
    """An export file is truncated, damaged or not an export file; nothing was imported."""


class NotFoundError(StoreError):
    """A record asked for is not in the store."""


class Reason(str, Enum):
    """Why an entry was refused. The values are stable: vectors and logs use them."""

    ENVELOPE_TOO_LARGE = "envelope_too_large"
    MALFORMED = "malformed"
    NON_CANONICAL = "non_canonical"
    TRAILING_BYTES = "trailing_bytes"
    UNSUPPORTED_VERSION = "unsupported_version"
    BAD_FIELD = "bad_field"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    BAD_SIGNATURE = "bad_signature"
    WRONG_PREV = "wrong_prev"
    SEQ_GAP = "seq_gap"
    FORK = "fork"
    TIMESTAMP_IN_FUTURE = "timestamp_in_future"
    TIMESTAMP_BEFORE_PREV = "timestamp_before_prev"
    PAYLOAD_SIZE_MISMATCH = "payload_size_mismatch"
    PAYLOAD_HASH_MISMATCH = "payload_hash_mismatch"
    PAYLOAD_MALFORMED = "payload_malformed"
    PAYLOAD_NON_CANONICAL = "payload_non_canonical"
    FEED_FROZEN = "feed_frozen"
    # Refused by this node's storage caps (node/core/caps.py): no fault of the sender.
    FEED_CAP = "feed_cap"
    NODE_CAP = "node_cap"


class InvalidEntryError(StoreError):
    """An entry from outside breaks a rule. Nothing about it was stored (unless a fork,
    whose proof is kept)."""

    def __init__(self, reason: Reason, message: str, *, author: bytes | None = None,
                 seq: int | None = None) -> None:
        super().__init__(f"{reason.value}: {message}")
        self.reason = reason
        self.author = author
        self.seq = seq
