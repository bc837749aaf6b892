"""How many entries and bytes of each feed the node stores, counted incrementally.

Counted from the log records' lengths (Store.frame_sizes: nothing decoded), from where the
last saved count stopped; the count is saved in the store's local settings,

    usage/feed/<author key>  -> [counted up to seq, bytes]

Runs on the writer (it may write that setting). Used by the storage caps (node/writer.py)
and by a relay's quotas (node/relay/policy.py).
"""

from __future__ import annotations

from typing import Protocol

from murmurate.store import canonical

from .core.caps import Usage

USAGE = b"usage/feed/"


class UsageStore(Protocol):
    def local_get(self, key: bytes) -> bytes | None: ...
    def local_put(self, key: bytes, value: bytes = b"") -> None: ...
    def head(self, author: bytes): ...  # noqa: ANN201 (a FeedHead or None)
    def frame_sizes(self, author: bytes, from_seq: int, to_seq: int) -> list[int]: ...


def account(store: UsageStore, author: bytes, *, save_after: int = 1) -> Usage:
    """The stored size of `author`'s feed, recounted from where the last saved count stopped.
    The new count is written down once it is `save_after` entries past the saved one (the
    writer's per-batch counts pass 1,000: a write transaction per feed per batch would
    cost more than recounting up to 1,000 record lengths)."""
    raw = store.local_get(USAGE + author)
    upto, total = canonical.unpack(raw) if raw is not None else (0, 0)
    head = store.head(author)
    top = head.seq if head is not None else 0
    if top < upto:  # the store was restored from an older copy: count again from the start
        upto, total = 0, 0
    seq = upto + 1
    while seq <= top:
        sizes = store.frame_sizes(author, seq, min(top, seq + 4_999))
        if not sizes:
            break
        total += sum(sizes)
        seq += len(sizes)
    if seq - 1 - upto >= save_after:
        store.local_put(USAGE + author, canonical.pack([seq - 1, total]))
    return Usage(seq - 1, total)
