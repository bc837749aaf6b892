"""Feeds and ingest: the feed records, the log and seq index, held entries and forks, and
the writes that grow feeds (the node's own entries, entries from outside) or drop payloads.

    feeds      author -> FeedRecord (feed_num, head, flags, held count)
    feed_nums  feed_num u32 -> author
    log        local_id u64 -> log record (records.pack_log)
    by_seq     feed_num u32 -> seq | local_id | timestamp | payload type  (DUPSORT|DUPFIXED)
    held       author | seq u64 -> entry frame      (waiting for a gap to fill)
    forks      author | seq u64 -> [envelope kept, envelope refused]   (refused: the same seq, or
               seq + 1 chained onto another entry: wrong_prev from a validly signed entry)

Read functions take a StoreEnv and open one short read transaction. Write functions take
the WriteBatch of the transaction they are part of (`StoreEnv.write`); the costly work
(signing, signature checks) happens before it is opened.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import msgpack

from murmurate.crypto import SigningIdentity

from . import entry as entry_format
from . import social, timelines
from .entry import Entry, Envelope, PayloadType
from .env import WriteBatch
from .errors import InvalidEntryError, LocalStoreError, Reason
from .feed import FeedHead, Placement, follows_head, place
from .log import StoredEntry, hash_at, load, log_records, seq_item
from .payloads import TIMELINE_TYPES, post_index, target_id, target_seq
from .records import (FEED_BAD_SIGNATURE, FEED_FORKED, LOG_HEAD, LOG_PAYLOAD_DROPPED, SEQ_ITEM, U32, U64, FeedRecord,
                      log_frame_size, pack_log, unpack_log)
from .verify import BAD, SIGNED, VOUCHED, verify_chained, verify_signatures, withdraw_vouches

MAX_HELD_PER_FEED = 10_000
# How often append_own signs again when another writer moved the head between its read and
# its write transaction (only another process can: within a node the writer is the only one).
_OWN_RETRIES = 8


@dataclass(frozen=True)
class Rejected:
    author: bytes | None
    seq: int | None
    reason: Reason
    message: str


@dataclass(frozen=True)
class IngestReport:
    """What a batch did. `appended` lists (author, seq) in the order they were applied;
    `appended_types` their payload types, in the same order."""

    appended: tuple[tuple[bytes, int], ...] = ()
    duplicates: int = 0
    held: int = 0
    forks: tuple[tuple[bytes, int], ...] = ()
    rejected: tuple[Rejected, ...] = ()
    appended_types: tuple[int, ...] = ()


@dataclass(frozen=True)
class FeedInfo:
    author: bytes
    head: FeedHead | None
    forked: bool
    held: int
    bad_signature: bool = False  # the audit found an entry the author signed badly: frozen


# -- reads ---------------------------------------------------------------------------------------

def head(env: Any, author: bytes) -> FeedHead | None:
    with env.begin() as txn:
        raw = txn.get(author, db=env.db["feeds"])
    return FeedRecord.unpack(raw).head if raw is not None else None


def feed_info(env: Any, author: bytes) -> FeedInfo | None:
    with env.begin() as txn:
        raw = txn.get(author, db=env.db["feeds"])
    if raw is None:
        return None
    rec = FeedRecord.unpack(raw)
    return FeedInfo(author, rec.head, rec.forked, rec.held, rec.bad_signature)


def feeds(env: Any) -> list[FeedInfo]:
    with env.begin() as txn:
        out = []
        for author, raw in txn.cursor(db=env.db["feeds"]):
            rec = FeedRecord.unpack(raw)
            out.append(FeedInfo(bytes(author), rec.head, rec.forked, rec.held, rec.bad_signature))
    return out


def get(env: Any, author: bytes, seq: int) -> StoredEntry | None:
    with env.begin(buffers=True) as txn:
        raw = txn.get(author, db=env.db["feeds"])
        if raw is None:
            return None
        return load(txn, env.db, author, FeedRecord.unpack(raw).feed_num, seq)


def entries(env: Any, author: bytes, *, from_seq: int = 1, to_seq: int | None = None,
            newest_first: bool = False, limit: int | None = None) -> list[StoredEntry]:
    """One author's entries between two seqs (inclusive)."""
    with env.begin(buffers=True) as txn:
        raw = txn.get(author, db=env.db["feeds"])
        if raw is None:
            return []
        rec = FeedRecord.unpack(raw)
        hi = min(to_seq if to_seq is not None else rec.head_seq, rec.head_seq)
        seqs: Iterable[int] = range(hi, from_seq - 1, -1) if newest_first else range(from_seq, hi + 1)
        out = []
        for seq in seqs:
            if limit is not None and len(out) >= limit:
                break
            stored = load(txn, env.db, author, rec.feed_num, seq)
            if stored is not None:
                out.append(stored)
        return out


def forks(env: Any) -> list[tuple[bytes, int, bytes, bytes]]:
    """Proven forks: (author, seq, envelope kept, envelope refused)."""
    with env.begin() as txn:
        out = []
        for key, value in txn.cursor(db=env.db["forks"]):
            kept, refused = msgpack.unpackb(value)
            out.append((bytes(key[:32]), U64.unpack(key[32:])[0], kept, refused))
        return out


def of_type(env: Any, payload_type: int, refs: Iterable[tuple[bytes, int]] | None = None) -> list[StoredEntry]:
    """The stored entries of one payload type, among `refs` or in the whole store.

    Types come from the seq index, so only matching entries are read and decoded."""
    out: list[StoredEntry] = []
    db = env.db
    with env.begin(buffers=True) as txn:
        if refs is not None:
            nums: dict[bytes, int | None] = {}
            for author, seq in refs:
                if author not in nums:
                    raw = txn.get(author, db=db["feeds"])
                    nums[author] = FeedRecord.unpack(raw).feed_num if raw is not None else None
                num = nums[author]
                item = seq_item(txn, db, num, seq) if num is not None else None
                if item is not None and item[3] == payload_type:
                    stored = load(txn, db, author, num, seq)
                    if stored is not None:
                        out.append(stored)
            return out
        authors: dict[int, bytes] = {}
        cur = txn.cursor(db=db["by_seq"])
        for key, value in cur:
            seq, _, _, ptype = SEQ_ITEM.unpack(value)
            if ptype != payload_type:
                continue
            num = U32.unpack(key)[0]
            if num not in authors:
                authors[num] = bytes(txn.get(key, db=db["feed_nums"]))
            stored = load(txn, db, authors[num], num, seq)
            if stored is not None:
                out.append(stored)
    return out


def frames(env: Any, author: bytes, from_seq: int, to_seq: int) -> list[bytes]:
    """Wire frames of one feed's entries from_seq..to_seq (inclusive), for serving peers.
    Payloads are sent as stored (nil where dropped); nothing is decoded."""
    out: list[bytes] = []
    with env.begin(buffers=True) as txn:
        for record in log_records(txn, env.db, author, from_seq, to_seq):
            _, _, envelope, payload = unpack_log(record, author)
            out.append(msgpack.packb([envelope, payload], use_bin_type=True))
    return out


def frame_sizes(env: Any, author: bytes, from_seq: int, to_seq: int) -> list[int]:
    """len() of each of `frames(author, from_seq, to_seq)`, from the log records'
    lengths alone (a relay's quota accounting: nothing is copied or encoded)."""
    with env.begin(buffers=True) as txn:
        return [log_frame_size(record) for record in log_records(txn, env.db, author, from_seq, to_seq)]


def heads(env: Any, authors: Iterable[bytes]) -> dict[bytes, int]:
    """Head seq of each of `authors` this store holds (feeds it lacks are left out)."""
    out = {}
    with env.begin() as txn:
        for author in authors:
            raw = txn.get(author, db=env.db["feeds"])
            if raw is not None:
                seq = FeedRecord.unpack(raw).head_seq
                if seq:
                    out[author] = seq
    return out


def count_entries(env: Any) -> int:
    with env.begin() as txn:
        return txn.stat(env.db["log"])["entries"]


def verify(env: Any) -> list[str]:
    """Re-check every stored entry: signature, chain, payload hash, head. Returns problems."""
    problems: list[str] = []
    from murmurate.crypto import encode_id
    db = env.db
    with env.begin(buffers=True) as txn:
        for author_raw, rec_raw in txn.cursor(db=db["feeds"]):
            author = bytes(author_raw)
            rec = FeedRecord.unpack(rec_raw)
            name = encode_id(author)
            prev: Envelope | None = None
            envelopes: list[Envelope] = []
            for seq in range(1, rec.head_seq + 1):
                try:
                    stored = load(txn, db, author, rec.feed_num, seq)
                except (InvalidEntryError, TypeError, ValueError, struct.error) as e:
                    problems.append(f"{name}: entry {seq} is damaged and cannot be read ({e})")
                    prev = None
                    continue
                if stored is None:
                    problems.append(f"{name}: entry {seq} is missing below head {rec.head_seq}")
                    prev = None
                    continue
                env_ = stored.envelope
                envelopes.append(env_)
                if env_.author != author or env_.seq != seq:
                    problems.append(f"{name}: entry {seq} is filed under the wrong feed or seq")
                if prev is not None and (env_.prev != prev.hash or env_.timestamp_ms < prev.timestamp_ms):
                    problems.append(f"{name}: entry {seq} does not follow entry {seq - 1}")
                if stored.entry.payload is not None:
                    try:
                        entry_format.check_payload(env_, stored.entry.payload)
                    except InvalidEntryError as e:
                        problems.append(f"{name}: entry {seq}: {e}")
                prev = env_
            for env_, ok in zip(envelopes, verify_signatures(envelopes)):
                if not ok:
                    problems.append(f"{name}: entry {env_.seq}: signature does not verify")
            if rec.head_seq and (prev is None or prev.hash != rec.head_hash):
                problems.append(f"{name}: recorded head {rec.head_seq} does not match the last entry")
            if rec.forked:
                problems.append(f"{name}: feed is forked (proof kept; see `murmurate log --author`)")
            if rec.bad_signature:
                problems.append(f"{name}: feed is frozen: its author signed a chain holding a bad signature")
        log_count = txn.stat(db["log"])["entries"]
        seq_count = txn.stat(db["by_seq"])["entries"]
        if log_count != seq_count:
            problems.append(f"index mismatch: {log_count} log records, {seq_count} seq keys")
    return problems


# -- writes: the node's own entries --------------------------------------------------------------

def append_own(env: Any, identity: SigningIdentity, payload_type: int, payload: dict[str, Any],
               now_ms: int) -> Entry:
    """Sign and store the next entry of `identity`'s feed. Returns it.

    Signs outside the write transaction: reads the head, signs the entry that follows it,
    then appends it in a write transaction that first checks the head has not moved (if it
    has, signs again). The timestamp is `now_ms`, or the previous entry's if the clock went
    back, so the feed's timestamps never decrease. Raises ValueError for an oversized
    payload, InvalidEntryError(feed_frozen) if the feed is forked, StoreFullError.
    """
    author = identity.public_key
    for _ in range(_OWN_RETRIES):
        with env.begin() as txn:
            raw = txn.get(author, db=env.db["feeds"])
        seen = FeedRecord.unpack(raw) if raw is not None else None
        if seen is not None and seen.frozen:
            raise InvalidEntryError(Reason.FEED_FROZEN, f"this feed is {seen.frozen_why}; it cannot grow")
        last = seen.head if seen is not None else None
        new = entry_format.create_entry(
            identity, seq=(last.seq + 1) if last else 1, prev=last.hash if last else None,
            timestamp_ms=max(now_ms, last.timestamp_ms if last else 0),
            payload_type=payload_type, payload=payload)
        with env.write(own=True) as batch:
            current = record(batch, author)
            if current.frozen:
                raise InvalidEntryError(Reason.FEED_FROZEN, f"this feed is {current.frozen_why}; it cannot grow")
            unmoved = (current.head_seq, current.head_hash) == ((seen.head_seq, seen.head_hash) if seen else (0, None))
            if unmoved:
                append(batch, new, payload)
        if unmoved:
            return new
    raise LocalStoreError("this feed's head kept moving while its next entry was signed: another "
                          "process writes to this store")


# -- writes: entries from outside ----------------------------------------------------------------

def check_incoming(entries: Sequence[Entry], now_ms: int
                   ) -> tuple[list[tuple[Entry, dict[str, Any] | None, bool]], list[Rejected]]:
    """The checks of `ingest` that need no store: limits, signatures (one per run of a feed,
    on the pool across cores), clock skew, payload hash and form. Returns (entry, decoded
    payload, vouched) for the ones that pass, and the refused."""
    # Signatures first, on the pool across cores (PyNaCl releases the GIL). Overlapping
    # them with the Python checks and writes below was tried: the workers then wait on
    # the GIL the writer holds, and bench/ingest.py showed no gain.
    checked: list[tuple[Entry, dict[str, Any] | None, bool]] = []
    rejected: list[Rejected] = []
    envelopes = [e.envelope for e in entries]
    verdicts = verify_chained(envelopes)
    payloads: list[dict[str, Any] | None] = []
    errors: list[InvalidEntryError | None] = []
    for item, verdict in zip(entries, verdicts):
        env = item.envelope
        try:
            if verdict == BAD:
                raise InvalidEntryError(Reason.BAD_SIGNATURE, "signature does not verify", author=env.author, seq=env.seq)
            entry_format.check_timestamp(env, now_ms)
            payloads.append(entry_format.check_payload(env, item.payload) if item.payload is not None else None)
            errors.append(None)
        except InvalidEntryError as e:
            payloads.append(None)
            errors.append(e)
    # A vouch counts only if its voucher is stored too (withdraw_vouches says why).
    lost = withdraw_vouches(envelopes, verdicts, [e is not None for e in errors])
    for i, ok in zip(lost, verify_signatures([envelopes[i] for i in lost])):
        verdicts[i] = SIGNED
        if not ok:  # step 2 of the check order: it comes before skew and payload
            errors[i] = InvalidEntryError(Reason.BAD_SIGNATURE, "signature does not verify",
                                          author=envelopes[i].author, seq=envelopes[i].seq)
    for item, verdict, payload, error in zip(entries, verdicts, payloads, errors):
        env = item.envelope
        if error is not None:
            rejected.append(Rejected(env.author, env.seq, error.reason, str(error)))
            continue
        checked.append((item, payload, verdict == VOUCHED))
    return checked, rejected


def ingest_checked(batch: WriteBatch, checked: list[tuple[Entry, dict[str, Any] | None, bool]],
                   rejected: list[Rejected]) -> None:
    """Apply what check_incoming passed, in the write transaction."""
    batch.rejected.extend(rejected)
    for item, payload, vouched in checked:
        _ingest_one(batch, item, payload, vouched)
    batch.unaudited.write(batch.txn, batch.db["unaudited"])


def report(batch: WriteBatch) -> IngestReport:
    return IngestReport(tuple(batch.appended), batch.duplicates, batch.held, tuple(batch.forks),
                        tuple(batch.rejected), tuple(batch.appended_types))


def drop_payload(batch: WriteBatch, author: bytes, seq: int) -> bool:
    """Drop one entry's payload (and what it indexed), keeping the envelope. True if found."""
    rec = record(batch, author, create=False)
    return rec is not None and _drop(batch, author, rec, seq)


def index_opened(batch: WriteBatch, author: bytes, seq: int, payload: dict[str, Any], *, remove: bool) -> bool:
    """Index (or un-index) an opened private post's plaintext (social.index_opened). False if
    (author, seq) is not a stored type-11 entry (or, to add, its payload was dropped) or the
    plaintext is not a readable post."""
    rec = record(batch, author, create=False)
    stored = load(batch.txn, batch.db, author, rec.feed_num, seq) if rec is not None else None
    if (stored is None or stored.envelope.payload_type != PayloadType.ENCRYPTED
            or (stored.dropped and not remove)):
        return False
    return social.index_opened(batch.txn, batch.db, stored.envelope, rec.feed_num, payload, remove=remove)


def mark_bad_signature(batch: WriteBatch, bad: Iterable[tuple[bytes, int]]) -> None:
    """Freeze each feed the audit found an entry with a bad signature in."""
    for author, _ in bad:
        rec = record(batch, author, create=False)
        if rec is not None:
            batch.records[author] = rec._replace(flags=rec.flags | FEED_BAD_SIGNATURE)


def record(batch: WriteBatch, author: bytes, *, create: bool = True) -> FeedRecord | None:
    """The feed's record as this transaction has it (written back when it commits)."""
    rec = batch.records.get(author)
    if rec is not None:
        return rec
    raw = batch.txn.get(author, db=batch.db["feeds"])
    if raw is not None:
        rec = FeedRecord.unpack(raw)
    elif create:
        rec = FeedRecord(batch.next_feed_num)
        batch.next_feed_num += 1
        batch.txn.put(U32.pack(rec.feed_num), author, db=batch.db["feed_nums"])
    else:
        return None
    batch.records[author] = rec
    return rec


def _ingest_one(batch: WriteBatch, item: Entry, payload: dict[str, Any] | None, vouched: bool = False) -> None:
    env = item.envelope
    rec = record(batch, env.author)
    if not rec.frozen and follows_head(rec.head_seq, rec.head_hash, rec.head_ts, env):
        # The common case, decided without building a FeedHead: the next entry of a
        # healthy feed.
        if vouched:
            batch.unaudited.note(rec.feed_num, batch.next_local_id)
        append(batch, item, payload, rec)
        if rec.held:
            _drain_held(batch, env.author)
        return
    try:
        if rec.frozen:
            raise InvalidEntryError(Reason.FEED_FROZEN, f"feed is {rec.frozen_why} and frozen",
                                    author=env.author, seq=env.seq)
        current = rec.head
        stored_hash = None
        if current is not None and env.seq <= current.seq:
            stored_hash = hash_at(batch.txn, batch.db, env.author, rec.feed_num, env.seq)
        try:
            placement = place(current, env, stored_hash)
        except InvalidEntryError as e:
            if e.reason is not Reason.WRONG_PREV:
                raise
            placement = Placement.FORK  # signed by the author over another entry current.seq
        if vouched and placement in (Placement.FORK, Placement.HELD):
            # Kept as a fork proof or held for later: nothing appended vouches for it.
            entry_format.check_signature(env)
    except InvalidEntryError as e:
        batch.rejected.append(Rejected(env.author, env.seq, e.reason, str(e)))
        return
    if placement is Placement.APPEND:
        if vouched:
            batch.unaudited.note(rec.feed_num, batch.next_local_id)  # the log position append takes
        append(batch, item, payload)
        _drain_held(batch, env.author)
    elif placement is Placement.DUPLICATE:
        batch.duplicates += 1
        if item.payload is not None:
            _fill_payload(batch, rec, item, payload)
    elif placement is Placement.FORK:
        # A second entry at a seq held, or (wrong_prev) the next seq chained onto another
        # entry than ours: either way the author signed two histories.
        kept = load(batch.txn, batch.db, env.author, rec.feed_num, min(env.seq, rec.head_seq))
        _record_fork(batch, rec, kept.envelope, env)
    else:
        _hold(batch, rec, item)


def append(batch: WriteBatch, item: Entry, payload: dict[str, Any] | None, rec: FeedRecord | None = None) -> None:
    """Append the next entry of its feed (already placed) and index its payload."""
    env = item.envelope
    txn, db = batch.txn, batch.db
    if rec is None:
        rec = record(batch, env.author)
    local_id = batch.next_local_id
    batch.next_local_id += 1
    txn.put(U64.pack(local_id), pack_log(0, rec.feed_num, env.raw, item.payload), db=db["log"], append=True)
    feed_key = U32.pack(rec.feed_num)
    item_value = SEQ_ITEM.pack(env.seq, local_id, env.timestamp_ms, env.payload_type)
    if batch.seq_cursor is None:
        batch.seq_cursor = txn.cursor(db=db["by_seq"])
    # seq is the feed's new head, so it sorts after the feed's other values: APPENDDUP
    # (full pages). A plain put is the fallback should that ever not hold.
    if not batch.seq_cursor.put(feed_key, item_value, append=True):
        txn.put(feed_key, item_value, db=db["by_seq"])
    batch.records[env.author] = rec = FeedRecord(rec.feed_num, env.seq, env.hash, env.timestamp_ms,
                                                 rec.flags, rec.held)
    batch.appended.append((env.author, env.seq))
    batch.appended_types.append(env.payload_type)
    if payload is not None:
        index_payload(batch, rec, env, payload)


def index_payload(batch: WriteBatch, rec: FeedRecord, env: Envelope, payload: dict[str, Any], *,
                  remove: bool = False) -> None:
    """Add (or remove) what a payload puts in the indexes: the social indexes, the
    timelines, follows; a delete drops its target's payload."""
    txn, db = batch.txn, batch.db
    ptype = env.payload_type
    post = post_index(payload) if ptype == PayloadType.POST else None
    social.index(txn, db, env, rec.feed_num, payload, remove=remove, post=post)
    if ptype in TIMELINE_TYPES:
        timelines.index(txn, db, env, rec.feed_num, payload, post, remove=remove)
    elif remove:
        return
    elif ptype in (PayloadType.FOLLOW, PayloadType.UNFOLLOW):
        who = target_id(payload)
        if who is not None:
            key = env.author + who
            if ptype == PayloadType.FOLLOW:
                txn.put(key, U64.pack(env.seq), db=db["follows"])
            else:
                txn.delete(key, db=db["follows"])
    elif ptype == PayloadType.DELETE:
        target = target_seq(payload)
        if target is not None and target < env.seq:
            _drop(batch, env.author, rec, target)


def _drop(batch: WriteBatch, author: bytes, rec: FeedRecord, seq: int) -> bool:
    txn, db = batch.txn, batch.db
    item = seq_item(txn, db, rec.feed_num, seq)
    if item is None:
        return False
    local_key = U64.pack(item[1])
    flags, _, envelope, payload = unpack_log(txn.get(local_key, db=db["log"]), author)
    if payload is not None:
        env = entry_format.decode_envelope(envelope)
        try:
            index_payload(batch, rec, env, entry_format.decode_payload_bytes(payload), remove=True)
        except InvalidEntryError:
            pass  # it was never indexed
    txn.put(local_key, pack_log(flags | LOG_PAYLOAD_DROPPED, rec.feed_num, envelope, None), db=db["log"])
    return True


def _fill_payload(batch: WriteBatch, rec: FeedRecord, item: Entry, payload: dict[str, Any] | None) -> None:
    """A duplicate envelope may bring a payload this node lacks (unless it was deleted)."""
    txn, db = batch.txn, batch.db
    local_key = U64.pack(seq_item(txn, db, rec.feed_num, item.envelope.seq)[1])
    flags, _, envelope, have = unpack_log(txn.get(local_key, db=db["log"]), item.envelope.author)
    if have is not None or flags & LOG_PAYLOAD_DROPPED:
        return
    txn.put(local_key, pack_log(flags, rec.feed_num, envelope, item.payload), db=db["log"])
    if payload is not None:
        index_payload(batch, rec, item.envelope, payload)


def _hold(batch: WriteBatch, rec: FeedRecord, item: Entry) -> None:
    env = item.envelope
    key = env.author + U64.pack(env.seq)
    existing = batch.txn.get(key, db=batch.db["held"])
    if existing is not None:
        other = entry_format.decode_frame(existing).envelope
        if other.hash == env.hash:
            batch.duplicates += 1
        else:
            _record_fork(batch, rec, other, env)
        return
    if rec.held >= MAX_HELD_PER_FEED:
        batch.rejected.append(Rejected(env.author, env.seq, Reason.SEQ_GAP,
                                       f"too many entries held for this feed ({MAX_HELD_PER_FEED}); "
                                       "fetch the gap first"))
        return
    batch.txn.put(key, entry_format.encode_frame(item), db=batch.db["held"])
    batch.records[env.author] = rec._replace(held=rec.held + 1)
    batch.held += 1


def _drain_held(batch: WriteBatch, author: bytes) -> None:
    """Apply held entries that now follow the head, in order."""
    rec = batch.records[author]
    if rec.held == 0:
        return
    held_db = batch.db["held"]
    while True:
        rec = batch.records[author]
        key = author + U64.pack(rec.head_seq + 1)
        frame = batch.txn.get(key, db=held_db)
        if frame is None:
            return
        batch.txn.delete(key, db=held_db)
        batch.records[author] = rec = rec._replace(held=rec.held - 1)
        item = entry_format.decode_frame(frame)
        try:
            place(rec.head, item.envelope)
            payload = entry_format.check_payload(item.envelope, item.payload) if item.payload is not None else None
        except InvalidEntryError as e:
            if e.reason is Reason.WRONG_PREV:  # held entries had their signatures checked
                kept = load(batch.txn, batch.db, author, rec.feed_num, rec.head_seq)
                _record_fork(batch, rec, kept.envelope, item.envelope)
                return
            batch.rejected.append(Rejected(author, item.envelope.seq, e.reason, str(e)))
            return
        append(batch, item, payload)


def _record_fork(batch: WriteBatch, rec: FeedRecord, kept: Envelope, refused: Envelope) -> None:
    key = kept.author + U64.pack(kept.seq)
    batch.txn.put(key, msgpack.packb([kept.raw, refused.raw], use_bin_type=True), db=batch.db["forks"])
    batch.records[kept.author] = rec._replace(flags=rec.flags | FEED_FORKED)
    batch.forks.append((kept.author, kept.seq))
    what = (f"a second entry {kept.seq}" if refused.seq == kept.seq
            else f"entry {refused.seq} chained onto another entry {kept.seq} than this node's")
    batch.rejected.append(Rejected(kept.author, refused.seq, Reason.FORK,
                                   f"fork: {what} signed by the author; proof kept, feed frozen"))


# -- migration -------------------------------------------------------------------------------------

def migrate(txn: Any, db: dict[str, Any], from_version: int) -> None:
    """Bring an older store up to SCHEMA_VERSION inside the opening transaction."""
    if from_version < 2:
        # Version 2 added the social indexes: index every stored payload once.
        cur = txn.cursor(db=db["log"])
        authors: dict[int, bytes] = {}
        for _, value in cur:
            flags, feed_num, _ = LOG_HEAD.unpack_from(value)
            if feed_num not in authors:
                authors[feed_num] = bytes(txn.get(U32.pack(feed_num), db=db["feed_nums"]))
            _, _, envelope, payload = unpack_log(value, authors[feed_num])
            if payload is None:
                continue
            try:
                decoded = entry_format.decode_payload_bytes(payload)
            except InvalidEntryError:
                continue
            social.index(txn, db, entry_format.decode_envelope(envelope), feed_num, decoded, remove=False)
