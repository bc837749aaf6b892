"""The signature audit: checking, after the fact, the entries a chained check vouched for.

Ingest checks a run of one feed's consecutive entries with one signature, the run's last
(store/verify.py, verify_chained): the entries before it are then known to be the exact
bytes the author committed to, but their own signatures are not checked yet. Each stretch
of such entries appended one after another is written down by its log positions,

    unaudited  first local_id u64 -> last local_id u64

(a catch-up appends a feed's run at consecutive log positions, so a batch of 500 needs a
key or two, and the audit reads them back with one cursor walk of the log). The audit
verifies them later, off the path that makes a catch-up readable: a node task
(node/auditor.py) calls `check` in a worker thread, whose signature checks run on a
low-priority thread of their own (they release the GIL, so this takes a core the node
leaves idle), and hands the result to the writer, which applies it with `settle`. An
entry whose own signature fails although a later signed entry commits to it can only
come from its author: the feed is frozen (FEED_BAD_SIGNATURE) and cut at that entry
(store/cut.py, in the same transaction), and the audit says which entry. Until the audit
has checked an entry, the sync server checks it before serving it (`waiting_at`,
store/feeds.py frames).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .entry import decode_envelope
from .records import LOG_HEAD, U32, U64, unpack_log
from .verify import verify_in_background

SIGNATURE_SIZE = 64


@dataclass(frozen=True)
class AuditRange:
    """Log positions first..last waiting; one `check` covered first..checked_to."""

    first: int
    checked_to: int
    last: int


@dataclass(frozen=True)
class AuditResult:
    ranges: tuple[AuditRange, ...] = ()
    bad: tuple[tuple[bytes, int], ...] = ()   # (author, seq) whose own signature fails
    checked: int = 0


class Runs:
    """The runs one write batch appends on another entry's signature, by log position."""

    def __init__(self) -> None:
        self.done: list[list[int]] = []
        self._open: dict[int, list[int]] = {}  # feed_num -> its current [first, last]

    def note(self, feed_num: int, local_id: int) -> None:
        run = self._open.get(feed_num)
        if run is not None and run[1] == local_id - 1:
            run[1] = local_id
            return
        run = [local_id, local_id]
        self._open[feed_num] = run
        self.done.append(run)

    def count(self) -> int:
        """How many entries the runs hold."""
        return sum(last - first + 1 for first, last in self.done)

    def write(self, txn: Any, db: Any) -> None:
        for first, last in self.done:
            txn.put(U64.pack(first), U64.pack(last), db=db)


def pending(txn: Any, db: Any) -> int:
    """How many entries wait for the audit."""
    return sum(U64.unpack(value)[0] - U64.unpack(key)[0] + 1 for key, value in txn.cursor(db=db))


def check(txn: Any, db: Any, log_db: Any, author_of: Callable[[int], bytes], limit: int) -> AuditResult:
    """Verify up to `limit` waiting entries, oldest first (read only)."""
    ranges: list[AuditRange] = []
    items: list[tuple[bytes, bytes, bytes]] = []
    positions: list[tuple[bytes, bytes]] = []  # (author, envelope) of each item, to name a bad one
    log = txn.cursor(db=log_db)
    for key, value in txn.cursor(db=db):
        if len(items) >= limit:
            break
        first, last = U64.unpack(key)[0], U64.unpack(value)[0]
        checked_to = min(last, first + (limit - len(items)) - 1)
        ok = log.set_key(U64.pack(first))
        while ok:
            if U64.unpack(log.key())[0] > checked_to:
                break
            record = log.value()
            author = author_of(LOG_HEAD.unpack_from(record)[1])
            envelope = unpack_log(record, author)[2]
            items.append((author, envelope[:-SIGNATURE_SIZE], envelope[-SIGNATURE_SIZE:]))
            positions.append((author, envelope))
            ok = log.next()
        ranges.append(AuditRange(first, checked_to, last))
    verdicts = verify_in_background(items)
    bad = tuple((author, decode_envelope(envelope).seq)
                for (author, envelope), good in zip(positions, verdicts) if not good)
    return AuditResult(tuple(ranges), bad, len(items))


def waiting_at(cursor: Any, local_id: int) -> bool:
    """Whether the entry at log position `local_id` waits for the audit (`cursor` on the
    unaudited table: the range holding it starts at or before it)."""
    key = U64.pack(local_id)
    if cursor.set_range(key):
        if bytes(cursor.key()) == key:
            return True
        found = cursor.prev()
    else:
        found = cursor.last()
    return bool(found) and U64.unpack(cursor.value())[0] >= local_id


def forget(txn: Any, db: Any, local_ids: Iterable[int]) -> int:
    """Stop waiting for entries that were removed (a cut, store/cut.py). A range holds one
    run of one feed, and a cut removes a feed's entries from some seq on, so what goes
    from a range is its tail: the range ends before the first removed position in it.
    Returns how many waiting entries were dropped."""
    cursor = txn.cursor(db=db)
    dropped = 0
    for local_id in sorted(local_ids):
        if not waiting_at(cursor, local_id):
            continue
        first = bytes(cursor.key())
        dropped += U64.unpack(cursor.value())[0] - local_id + 1
        if U64.unpack(first)[0] == local_id:
            txn.delete(first, db=db)
        else:
            txn.put(first, U64.pack(local_id - 1), db=db)
    return dropped


def settle(txn: Any, db: Any, result: AuditResult) -> None:
    """Drop what `result` checked from the table (the rest of a range stays waiting)."""
    for r in result.ranges:
        txn.delete(U64.pack(r.first), db=db)
        if r.checked_to < r.last:
            txn.put(U64.pack(r.checked_to + 1), U64.pack(r.last), db=db)


def unaudited_count(env: Any) -> int:
    """Entries stored on a later entry's signature whose own signatures wait for the audit.
    Counted once per open store; ingest and settle_audit keep `env.unaudited` since."""
    if env.unaudited is None:
        with env.begin() as txn:
            env.unaudited = pending(txn, env.db["unaudited"])
    return env.unaudited


def check_unaudited(env: Any, limit: int) -> AuditResult:
    """Verify up to `limit` waiting signatures in one read transaction (see `check`)."""
    db = env.db
    with env.begin() as txn:
        authors: dict[int, bytes] = {}

        def author_of(feed_num: int) -> bytes:
            if feed_num not in authors:
                authors[feed_num] = bytes(txn.get(U32.pack(feed_num), db=db["feed_nums"]))
            return authors[feed_num]

        return check(txn, db["unaudited"], db["log"], author_of, limit)
