"""Signature checks for batches, spread over the machine's cores.

PyNaCl's C calls release the GIL, so threads verify in parallel: on two cores a batch
verifies about twice as fast as one core could (bench/ingest.py shows the figures).

`verify_chained` checks a run of one feed's consecutive entries with one signature: the
entry hash covers the whole envelope, signature included, and each entry's `prev` names
the hash of the one before, so the author's valid signature on the run's last entry
commits to every byte of the entries before it. Their own signatures are then checked
later, off the critical path (the store's audit, docs/protocol.md section 5.1).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from murmurate.crypto import verify_signature

from .entry import SIGNING_DOMAIN, Envelope

_PARALLEL_FROM = 64
_WORKERS = max(1, min(8, os.cpu_count() or 1))
_pool: ThreadPoolExecutor | None = None


def _check_all(envelopes: Sequence[Envelope]) -> list[bool]:
    return [verify_signature(e.author, SIGNING_DOMAIN + e.body, e.signature) for e in envelopes]


def verify_signatures(envelopes: Sequence[Envelope]) -> list[bool]:
    """One bool per envelope: True if its author signed it."""
    return _verify_now(_check_all, envelopes)


def _verify_now(check: Callable[[Sequence[Any]], list[bool]], items: Sequence[Any]) -> list[bool]:
    """`check` over `items` now: split over the shared pool, the caller's thread taking a
    share too (few items are checked in place: not worth spreading)."""
    global _pool
    if len(items) < _PARALLEL_FROM or _WORKERS == 1:
        return check(items)
    if _pool is None:
        _pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="murmurate-verify")
    chunks = _split(items)
    futures = [_pool.submit(check, chunk) for chunk in chunks[1:]]
    results = check(chunks[0])  # the caller's thread takes a share too
    for future in futures:
        results.extend(future.result())
    return results


def _split(items: Sequence[Any]) -> list[Sequence[Any]]:
    """One share per worker (a single share below _PARALLEL_FROM: not worth spreading)."""
    if len(items) < _PARALLEL_FROM:
        return [items]
    size = -(-len(items) // _WORKERS)
    return [items[i:i + size] for i in range(0, len(items), size)]


_background: ThreadPoolExecutor | None = None


def _lower_priority() -> None:
    # On Linux a thread has its own nice value: this one yields its core to the node's
    # own work (a catch-up, the API) whenever both want it.
    try:
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
    except (AttributeError, OSError):
        pass


def verify_in_background(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """Signature checks that can wait (the audit), of (author, envelope body, signature)
    triples: on threads of their own at a lower priority, one per core, so they take the
    cores the node leaves idle and give them back whenever the node wants them (the audit
    also waits for the node's commits to pause: node/auditor.py)."""
    global _background
    if _background is None:
        _background = ThreadPoolExecutor(_WORKERS, thread_name_prefix="murmurate-audit", initializer=_lower_priority)
    futures = [_background.submit(_check_raw, chunk) for chunk in _split(items)]
    return [ok for future in futures for ok in future.result()]


def verify_raw(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    """`verify_signatures` of (author, envelope body, signature) triples, now, on the
    shared pool (serving a range the audit has not reached yet: store/feeds.py frames)."""
    return _verify_now(_check_raw, items)


def _check_raw(items: Sequence[tuple[bytes, bytes, bytes]]) -> list[bool]:
    return [verify_signature(author, SIGNING_DOMAIN + body, signature) for author, body, signature in items]


# verify_chained's verdicts, one per envelope.
BAD = 0        # the signature does not verify
SIGNED = 1     # its own signature verifies
VOUCHED = 2    # a later entry of the batch with a valid signature commits to it (own signature unchecked)


def verify_chained(envelopes: Sequence[Envelope]) -> list[int]:
    """One verdict per envelope (BAD, SIGNED or VOUCHED), checking one signature per run.

    A run is a stretch of the list where each envelope is the next entry of the same feed:
    same author, seq one more, `prev` equal to the entry hash before it. Only the last of
    each run is verified; if it fails, every entry of its run is verified on its own, so a
    bad entry is named exactly and the good ones before it still count.
    """
    count = len(envelopes)
    ends = []
    for i in range(count):
        env = envelopes[i]
        if i + 1 < count:
            nxt = envelopes[i + 1]
            if nxt.author == env.author and nxt.seq == env.seq + 1 and nxt.prev == env.hash:
                continue
        ends.append(i)
    verdicts = [VOUCHED] * count
    retry: list[int] = []
    start = 0
    for end, ok in zip(ends, verify_signatures([envelopes[i] for i in ends])):
        if ok:
            verdicts[end] = SIGNED
        else:
            verdicts[end] = BAD
            retry.extend(range(start, end))
        start = end + 1
    if retry:
        for i, ok in zip(retry, verify_signatures([envelopes[i] for i in retry])):
            verdicts[i] = SIGNED if ok else BAD
    return verdicts


def withdraw_vouches(envelopes: Sequence[Envelope], verdicts: Sequence[int], refused: Sequence[bool]) -> list[int]:
    """The VOUCHED entries whose voucher will not be stored: their own signatures must be
    checked after all. (Issue 11.2a: an author sent 1, 2 with a bad signature, 3 eleven
    minutes ahead; 3 vouched for 2, was refused for skew, and the node that stored 2 on
    3's word served it alone, so every node fetching it checked 2 and banned that node.)

    A vouch holds only if every entry from the vouched one up to its run's signed end is
    itself taken: not `refused` by the checks before the feed rules, and with timestamps
    that do not go back (else the feed rules refuse the later one). Then, should the first
    of them be appended, so is the end; should it be held or a fork, its own signature is
    checked anyway (the store does that). Returns the indexes, ascending."""
    lost: list[int] = []
    carried = False  # the entry after i is taken, and so is every entry up to its signed end
    for i in range(len(envelopes) - 1, -1, -1):
        if verdicts[i] == VOUCHED:
            # verify_chained vouches only for an entry whose run goes on at i + 1
            keep = carried and envelopes[i + 1].timestamp_ms >= envelopes[i].timestamp_ms
            if not keep:
                lost.append(i)
            carried = keep and not refused[i]
        else:
            carried = verdicts[i] == SIGNED and not refused[i]
    lost.reverse()
    return lost
