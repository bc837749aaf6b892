"""Cutting a feed at an entry whose own signature the audit found bad.

Ingest stores a run of a feed's entries on the signature of its last one (store/verify.py
verify_chained); the audit checks each entry's own signature later (store/audit.py). When
one fails, only the author can have made that chain (nobody else can sign the entries
after it), and nothing from the bad entry on can be vouched for: `cut_feed` removes the
entries bad_seq..head from the log, the seq index and every index they were put in
(timelines, threads, hashtags, mentions, notifications, interactions, edits; follows,
blocks and the profile are rebuilt from what is left), moves the head back to bad_seq - 1
and drops the author's held entries. The feed stays frozen (FEED_BAD_SIGNATURE): it takes
no more entries, so it is not fetched again from the same history, nor continued if the
author goes on writing. The proof is kept, like a fork's:

    cuts       author -> msgpack [bad seq, envelope of the bad entry, envelope of the entry
                                  after it (signed over the bad one) or nil]

What a removed DELETE entry had dropped stays dropped (the author did sign that delete).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import msgpack

from . import entry as entry_format
from . import audit, feeds, social
from .entry import PayloadType
from .env import WriteBatch
from .errors import InvalidEntryError
from .log import hash_at, seq_item
from .records import FEED_BAD_SIGNATURE, SEQ_ITEM, U32, U64, unpack_log

# The entry types whose index state is "the last one wins": rebuilt from what is left.
_RELATIONS = frozenset({PayloadType.FOLLOW, PayloadType.UNFOLLOW, PayloadType.BLOCK, PayloadType.UNBLOCK,
                        PayloadType.PROFILE})


def cut_feeds(batch: WriteBatch, bad: Iterable[tuple[bytes, int]]) -> int:
    """Cut each feed at its first bad seq. Returns how many of the removed entries were
    still waiting for the audit (for the store's count of them)."""
    first: dict[bytes, int] = {}
    for author, seq in bad:
        first[author] = min(seq, first.get(author, seq))
    return sum(cut_feed(batch, author, seq) for author, seq in first.items())


def cut_feed(batch: WriteBatch, author: bytes, bad_seq: int) -> int:
    """Remove entries bad_seq.. of the feed and freeze it; returns how many of them were
    still waiting for the audit."""
    txn, db = batch.txn, batch.db
    rec = feeds.record(batch, author, create=False)
    if rec is None:
        return 0
    proof: dict[int, bytes] = {}
    removed_ids: list[int] = []
    relations = False
    feed_key = U32.pack(rec.feed_num)
    for seq in range(rec.head_seq, bad_seq - 1, -1):  # newest first: undo in reverse
        item = seq_item(txn, db, rec.feed_num, seq)
        if item is None:
            continue
        local_key = U64.pack(item[1])
        _, _, envelope, payload = unpack_log(txn.get(local_key, db=db["log"]), author)
        envelope = bytes(envelope)
        env = entry_format.decode_envelope(envelope)
        if seq <= bad_seq + 1:
            proof[seq] = envelope
        relations = relations or env.payload_type in _RELATIONS
        if payload is not None:
            try:
                decoded = entry_format.decode_payload_bytes(bytes(payload))
            except InvalidEntryError:
                decoded = None  # never indexed
            if decoded is not None:
                feeds.index_payload(batch, rec, env, decoded, remove=True)
        txn.delete(local_key, db=db["log"])
        txn.delete(feed_key, SEQ_ITEM.pack(*item), db=db["by_seq"])
        removed_ids.append(item[1])
    forgotten = audit.forget(txn, db["unaudited"], removed_ids)
    if bad_seq in proof and not txn.get(author, db=db["cuts"]):
        txn.put(author, msgpack.packb([bad_seq, proof[bad_seq], proof.get(bad_seq + 1)], use_bin_type=True),
                db=db["cuts"])
    for key, _ in social.scan_prefix(txn, db["held"], author):
        txn.delete(key, db=db["held"])
    head_seq = min(rec.head_seq, bad_seq - 1)
    head = seq_item(txn, db, rec.feed_num, head_seq) if head_seq else None
    rec = rec._replace(head_seq=head_seq if head else 0,
                       head_hash=hash_at(txn, db, author, rec.feed_num, head_seq) if head else None,
                       head_ts=head[2] if head else 0, flags=rec.flags | FEED_BAD_SIGNATURE, held=0)
    batch.records[author] = rec
    batch.cut.append((author, bad_seq))
    if relations:
        _rebuild_relations(batch, author, rec)
    return forgotten


def _rebuild_relations(batch: WriteBatch, author: bytes, rec: Any) -> None:
    """Follows, followers, blocks and the profile of `author` as its remaining entries say."""
    txn, db = batch.txn, batch.db
    for key, _ in social.scan_prefix(txn, db["follows"], author):
        txn.delete(key, db=db["follows"])
        txn.delete(key[len(author):] + author, db=db["followers"])
    for key, _ in social.scan_prefix(txn, db["blocks"], author):
        txn.delete(key, db=db["blocks"])
    txn.delete(author, db=db["profiles"])
    cur = txn.cursor(db=db["by_seq"])
    items = [SEQ_ITEM.unpack(bytes(v)) for v in cur.iternext_dup()] if cur.set_key(U32.pack(rec.feed_num)) else []
    for seq, local_id, _, ptype in items:
        if ptype not in _RELATIONS:
            continue
        _, _, envelope, payload = unpack_log(txn.get(U64.pack(local_id), db=db["log"]), author)
        if payload is None:
            continue
        try:
            decoded = entry_format.decode_payload_bytes(bytes(payload))
        except InvalidEntryError:
            continue
        feeds.index_payload(batch, rec, entry_format.decode_envelope(bytes(envelope)), decoded)


def cut_at(env: Any, author: bytes) -> int | None:
    """The seq a feed was cut at (its first bad signature), or None."""
    with env.begin() as txn:
        raw = txn.get(author, db=env.db["cuts"])
    return msgpack.unpackb(raw, raw=False)[0] if raw is not None else None


def cuts(env: Any) -> list[tuple[bytes, int, bytes, bytes | None]]:
    """Every cut: (author, bad seq, bad envelope, envelope of the entry signed over it)."""
    with env.begin() as txn:
        return [(bytes(k), *msgpack.unpackb(v, raw=False)) for k, v in txn.cursor(db=env.db["cuts"])]
