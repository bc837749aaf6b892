"""Reading entries back from the log and the seq index, inside a caller's transaction.

Shared by every concern that shows entries (feeds, timelines, social views). Each function
takes the transaction and the sub-database handles (`StoreEnv.db`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from . import entry as entry_format
from .entry import Entry, Envelope
from .errors import InvalidEntryError
from .records import LOG_PAYLOAD_DROPPED, SEQ_ITEM, U32, U64, FeedRecord, unpack_log


@dataclass(frozen=True)
class StoredEntry:
    """An entry as the store holds it, with its decoded payload when there is one."""

    entry: Entry
    payload: dict[str, Any] | None
    dropped: bool

    @property
    def envelope(self) -> Envelope:
        return self.entry.envelope


def seq_item(txn: Any, db: dict[str, Any], feed_num: int, seq: int) -> tuple[int, int, int, int] | None:
    """(seq, local_id, timestamp, payload type) of one entry, from by_seq."""
    cur = txn.cursor(db=db["by_seq"])
    want = U64.pack(seq)
    # The shorter search value sorts just before the full 26-byte value that starts with it.
    if not cur.set_range_dup(U32.pack(feed_num), want):
        return None
    value = cur.value()
    return SEQ_ITEM.unpack(value) if value[:8] == want else None


def load(txn: Any, db: dict[str, Any], author: bytes, feed_num: int, seq: int) -> StoredEntry | None:
    item = seq_item(txn, db, feed_num, seq)
    if item is None:
        return None
    flags, _, envelope, payload = unpack_log(txn.get(U64.pack(item[1]), db=db["log"]), author)
    env = entry_format.decode_envelope(envelope)
    decoded = None
    if payload is not None:
        try:
            decoded = entry_format.decode_payload_bytes(payload)
        except InvalidEntryError:
            decoded = None
    return StoredEntry(Entry(env, payload), decoded, bool(flags & LOG_PAYLOAD_DROPPED))


def load_num(txn: Any, db: dict[str, Any], feed_num: int, seq: int) -> StoredEntry | None:
    author = txn.get(U32.pack(feed_num), db=db["feed_nums"])
    return load(txn, db, bytes(author), feed_num, seq) if author is not None else None


def get_in(txn: Any, db: dict[str, Any], author: bytes, seq: int) -> StoredEntry | None:
    raw = txn.get(author, db=db["feeds"])
    return load(txn, db, author, FeedRecord.unpack(raw).feed_num, seq) if raw is not None else None


def hash_at(txn: Any, db: dict[str, Any], author: bytes, feed_num: int, seq: int) -> bytes | None:
    stored = load(txn, db, author, feed_num, seq)
    return stored.envelope.hash if stored is not None else None


def feed_num_of(txn: Any, db: dict[str, Any], author: bytes) -> int | None:
    raw = txn.get(author, db=db["feeds"])
    return FeedRecord.unpack(raw).feed_num if raw is not None else None


def log_records(txn: Any, db: dict[str, Any], author: bytes, from_seq: int, to_seq: int) -> Iterator[Any]:
    """The log records of a feed's entries from_seq..to_seq, in seq order, as long as
    they run without a gap from from_seq (buffers of `txn`: use them inside it)."""
    raw = txn.get(author, db=db["feeds"])
    if raw is None:
        return
    feed_num = FeedRecord.unpack(raw).feed_num
    log_db = db["log"]
    cur = txn.cursor(db=db["by_seq"])
    first = U64.pack(from_seq)
    if not cur.set_range_dup(U32.pack(feed_num), first) or cur.value()[:8] != first:
        return
    for value in cur.iternext_dup():
        if U64.unpack_from(value)[0] > to_seq:
            return
        yield txn.get(value[8:16], db=log_db)
