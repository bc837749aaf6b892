"""The LMDB store: feeds, payloads, indexes, forks, held entries, blobs and peers.

One process writes at a time (LMDB's own lock); within a node one writer task owns the
write calls. Each write method is one transaction: it commits whole or not at all, so a
crash loses at most the batch in flight. Readers use short read transactions.

Layout (docs/architecture.md, "Store"):
    meta       b"schema" -> u32, b"self" -> author
    feeds      author -> FeedRecord (feed_num, head, flags, held count)
    feed_nums  feed_num u32 -> author
    log        local_id u64 -> flags u8 | feed_num u32 | stored envelope length u16 |
                                stored envelope | payload
               (the stored envelope leaves out the author, which the feed number names;
               records.unpack_log puts the exact bytes back. Appended with
               put(append=True), so pages fill completely.)
    by_seq     feed_num u32 -> seq u64 | local_id u64 | timestamp u64 | payload type u16
               (DUPSORT|DUPFIXED: one key per feed, fixed 26-byte sorted values with no
               per-item node header; a feed only grows at its end, so values go in with
               APPENDDUP and the feed's pages fill completely)
    timeline   timestamp u64 | feed_num u32 | seq u64 -> b""     (posts, boosts, encrypted)
    replies    parent author | seq u64 | child author | seq u64 -> b""
    hashtags   tag utf-8 | 0x00 | timestamp u64 | feed_num u32 | seq u64 -> b""
    mentions   mentioned author | timestamp u64 | feed_num u32 | seq u64 -> b""
    follows    follower author | followee author -> seq u64 of the follow entry
    held       author | seq u64 -> entry frame      (waiting for a gap to fill)
    forks      author | seq u64 -> [envelope kept, envelope refused]
    blobs      hash | chunk index u32 -> chunk; hash | 0xFFFFFFFF -> size (store/blobs.py)
    peers      peer id -> record (see the network issue)
    unaudited  first local_id u64 -> last local_id u64   (store/audit.py: log records appended
               on a later entry's signature, their own signatures not checked yet)
"""

from __future__ import annotations

import errno
import struct
import heapq
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lmdb
import msgpack

from murmurate.crypto import SigningIdentity

from . import entry as entry_format
from . import audit, blobs, social
from .audit import AuditResult
from .entry import Entry, Envelope, PayloadType
from .errors import InvalidEntryError, LocalStoreError, Reason, SchemaTooNewError, StoreFullError
from .feed import FeedHead, Placement, follows_head, place
from .payloads import TIMELINE_TYPES, post_index, target_id, target_seq
from .records import (LOG_HEAD, LOG_PAYLOAD_DROPPED, SEQ_ITEM, TIMELINE_KEY, U32, U64, FEED_BAD_SIGNATURE,
                      FEED_FORKED, FeedRecord,
                      decode_cursor, encode_cursor, log_frame_size, pack_log, unpack_log)
from .verify import BAD, SIGNED, VOUCHED, verify_chained, verify_signatures

# 1: feeds, log and the timeline, thread, hashtag, mention and follow indexes.
# 2: + the social indexes (store/social.py); a version 1 store is migrated on open by
#    indexing its log.
# 3: + the unaudited table (store/audit.py); nothing to migrate, it starts empty. (A version
#    2 node must not open a version 3 store: it would never audit what is waiting.)
SCHEMA_VERSION = 3
DEFAULT_MAP_SIZE = 64 << 30  # address space only: the file grows as data is written
MAX_HELD_PER_FEED = 10_000
_DB_NAMES = ("meta", "feeds", "feed_nums", "log", "by_seq", "timeline", "replies", "hashtags",
             "mentions", "follows", "held", "forks", "blobs", "peers", "unaudited", *social.DB_NAMES)
_DB_FLAGS: dict[str, dict[str, bool]] = {"by_seq": {"dupsort": True, "dupfixed": True}}
# Home timeline: scan the shared time index while followed feeds are common in it; past
# this many index keys per page, merge the followed feeds' own indexes instead.
_HOME_SCAN_BUDGET = 4_000
UNLISTED = b"u"  # timeline value of an unlisted post: kept out of hashtag and federated views


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
class StoredEntry:
    """An entry as the store holds it, with its decoded payload when there is one."""

    entry: Entry
    payload: dict[str, Any] | None
    dropped: bool

    @property
    def envelope(self) -> Envelope:
        return self.entry.envelope


@dataclass(frozen=True)
class Page:
    items: tuple[StoredEntry, ...]
    next_cursor: str | None


@dataclass(frozen=True)
class FeedInfo:
    author: bytes
    head: FeedHead | None
    forked: bool
    held: int
    bad_signature: bool = False  # the audit found an entry the author signed badly: frozen


@dataclass
class _Batch:
    """State of one write transaction."""

    txn: Any
    next_local_id: int
    next_feed_num: int
    records: dict[bytes, FeedRecord] = field(default_factory=dict)
    appended: list[tuple[bytes, int]] = field(default_factory=list)
    appended_types: list[int] = field(default_factory=list)
    forks: list[tuple[bytes, int]] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    duplicates: int = 0
    held: int = 0
    seq_cursor: Any = None  # a by_seq cursor, made on first use
    unaudited: audit.Runs = field(default_factory=audit.Runs)


class Store:
    """A node's LMDB store. Open with `Store(path)`; close with `close()` or `with`."""

    def __init__(self, path: str | Path, *, map_size: int = DEFAULT_MAP_SIZE, readonly: bool = False) -> None:
        self.path = Path(path)
        self._unaudited: int | None = None  # unaudited_count's cache, kept by ingest and settle_audit
        if not readonly:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self._env = lmdb.open(str(self.path), map_size=map_size, max_dbs=len(_DB_NAMES) + 2,
                                  readonly=readonly, subdir=True, create=not readonly, lock=True,
                                  max_readers=256)
        except lmdb.Error as e:
            raise LocalStoreError(f"cannot open the store at {self.path}: {e}") from None
        self._check_schema()
        if readonly:
            # Handles opened inside a read transaction die with it: open them outside one.
            self._db = {n: self._env.open_db(n.encode(), create=False, **_DB_FLAGS.get(n, {}))
                        for n in _DB_NAMES}
        else:
            try:
                with self._env.begin(write=True) as txn:
                    self._db = {n: self._env.open_db(n.encode(), txn=txn, **_DB_FLAGS.get(n, {}))
                                for n in _DB_NAMES}
                    raw = txn.get(b"schema", db=self._db["meta"])
                    if raw is not None and U32.unpack(raw)[0] < SCHEMA_VERSION:
                        self._migrate(txn, U32.unpack(raw)[0])
                    txn.put(b"schema", U32.pack(SCHEMA_VERSION), db=self._db["meta"])
            except lmdb.MapFullError:
                raise StoreFullError("the store's map is full: cannot even open it (raise map_size)") from None

    # -- life cycle ----------------------------------------------------------------------

    def close(self) -> None:
        self._env.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _check_schema(self) -> None:
        """Refuse a store written by a newer version before anything is written to it."""
        with self._env.begin() as txn:
            try:
                meta = self._env.open_db(b"meta", txn=txn, create=False)
            except lmdb.NotFoundError:
                return
            raw = txn.get(b"schema", db=meta)
        if raw is None:
            return
        version = U32.unpack(raw)[0]
        if version > SCHEMA_VERSION:
            self._env.close()
            raise SchemaTooNewError(
                f"the store at {self.path} has schema version {version}, this Murmurate reads up to "
                f"{SCHEMA_VERSION}: upgrade Murmurate (the store was not changed)")

    @property
    def schema_version(self) -> int:
        with self._env.begin() as txn:
            return U32.unpack(txn.get(b"schema", db=self._db["meta"]))[0]

    # -- identity ------------------------------------------------------------------------

    def set_self(self, author: bytes) -> None:
        """Record whose node this is (the home timeline is this author's and their follows')."""
        with self._write() as batch:
            batch.txn.put(b"self", author, db=self._db["meta"])

    @property
    def self_id(self) -> bytes | None:
        with self._env.begin() as txn:
            value = txn.get(b"self", db=self._db["meta"])
        return bytes(value) if value is not None else None

    # -- writes --------------------------------------------------------------------------

    def append_own(self, identity: SigningIdentity, payload_type: int, payload: dict[str, Any],
                   now_ms: int) -> Entry:
        """Sign and store the next entry of `identity`'s feed. Returns it.

        The timestamp is `now_ms`, or the previous entry's if the clock went back, so the
        feed's timestamps never decrease. Raises ValueError for an oversized payload,
        InvalidEntryError(feed_frozen) if the feed is forked, StoreFullError.
        """
        with self._write() as batch:
            record = self._record(batch, identity.public_key)
            if record.frozen:
                raise InvalidEntryError(Reason.FEED_FROZEN, f"this feed is {record.frozen_why}; it cannot grow")
            head = record.head
            new = entry_format.create_entry(
                identity, seq=(head.seq + 1) if head else 1, prev=head.hash if head else None,
                timestamp_ms=max(now_ms, head.timestamp_ms if head else 0),
                payload_type=payload_type, payload=payload)
            self._append(batch, new, payload)
        return new

    def ingest(self, entries: Sequence[Entry], now_ms: int, *, defer_audit: bool = True) -> IngestReport:
        """Verify and store entries from outside, in one transaction.

        Every entry gets the full check (limits, signature, payload hash and form, clock
        skew, chain) before the transaction; bad ones are reported in `rejected`, the rest
        are stored. Entries beyond a gap are held until it fills. Raises StoreFullError
        (nothing of the batch is written).

        Signatures are checked one per run of a feed's consecutive entries (verify_chained):
        the entries a valid signature vouches for are appended and written down for the
        audit (store/audit.py), which checks their own signatures later. An entry that is
        held or refused as a fork gets its own signature checked here, since no appended
        entry vouches for it.
        """
        # Signatures first, on the pool across cores (PyNaCl releases the GIL). Overlapping
        # them with the Python checks and writes below was tried: the workers then wait on
        # the GIL the writer holds, and bench/ingest.py showed no gain.
        checked: list[tuple[Entry, dict[str, Any] | None, bool]] = []
        rejected: list[Rejected] = []
        envelopes = [e.envelope for e in entries]
        verdicts = (verify_chained(envelopes) if defer_audit else
                    [SIGNED if ok else BAD for ok in verify_signatures(envelopes)])
        for item, verdict in zip(entries, verdicts):
            env = item.envelope
            try:
                if verdict == BAD:
                    raise InvalidEntryError(Reason.BAD_SIGNATURE, "signature does not verify", author=env.author, seq=env.seq)
                entry_format.check_timestamp(env, now_ms)
                payload = entry_format.check_payload(env, item.payload) if item.payload is not None else None
            except InvalidEntryError as e:
                rejected.append(Rejected(env.author, env.seq, e.reason, str(e)))
                continue
            checked.append((item, payload, verdict == VOUCHED))
        with self._write() as batch:
            batch.rejected.extend(rejected)
            for item, payload, vouched in checked:
                self._ingest_one(batch, item, payload, vouched)
            batch.unaudited.write(batch.txn, self._db["unaudited"])
        if self._unaudited is not None:
            self._unaudited += batch.unaudited.count()
        return IngestReport(tuple(batch.appended), batch.duplicates, batch.held, tuple(batch.forks),
                            tuple(batch.rejected), tuple(batch.appended_types))

    def drop_payload(self, author: bytes, seq: int) -> bool:
        """Drop one entry's payload (and what it indexed), keeping the envelope. True if found."""
        with self._write() as batch:
            record = self._record(batch, author, create=False)
            return record is not None and self._drop(batch, author, record, seq)

    def put_peer(self, peer_id: bytes, info: dict[str, Any]) -> None:
        with self._write() as batch:
            batch.txn.put(peer_id, msgpack.packb(info, use_bin_type=True), db=self._db["peers"])

    # -- reads ---------------------------------------------------------------------------

    def head(self, author: bytes) -> FeedHead | None:
        with self._env.begin() as txn:
            raw = txn.get(author, db=self._db["feeds"])
        return FeedRecord.unpack(raw).head if raw is not None else None

    def feed_info(self, author: bytes) -> FeedInfo | None:
        with self._env.begin() as txn:
            raw = txn.get(author, db=self._db["feeds"])
        if raw is None:
            return None
        rec = FeedRecord.unpack(raw)
        return FeedInfo(author, rec.head, rec.forked, rec.held, rec.bad_signature)

    def feeds(self) -> list[FeedInfo]:
        with self._env.begin() as txn:
            out = []
            for author, raw in txn.cursor(db=self._db["feeds"]):
                rec = FeedRecord.unpack(raw)
                out.append(FeedInfo(bytes(author), rec.head, rec.forked, rec.held, rec.bad_signature))
        return out

    def get(self, author: bytes, seq: int) -> StoredEntry | None:
        with self._env.begin(buffers=True) as txn:
            raw = txn.get(author, db=self._db["feeds"])
            if raw is None:
                return None
            return self._load(txn, author, FeedRecord.unpack(raw).feed_num, seq)

    def entries(self, author: bytes, *, from_seq: int = 1, to_seq: int | None = None,
                newest_first: bool = False, limit: int | None = None) -> list[StoredEntry]:
        """One author's entries between two seqs (inclusive)."""
        with self._env.begin(buffers=True) as txn:
            raw = txn.get(author, db=self._db["feeds"])
            if raw is None:
                return []
            rec = FeedRecord.unpack(raw)
            hi = min(to_seq if to_seq is not None else rec.head_seq, rec.head_seq)
            seqs: Iterable[int] = range(hi, from_seq - 1, -1) if newest_first else range(from_seq, hi + 1)
            out = []
            for seq in seqs:
                if limit is not None and len(out) >= limit:
                    break
                stored = self._load(txn, author, rec.feed_num, seq)
                if stored is not None:
                    out.append(stored)
            return out

    def follows(self, follower: bytes) -> list[bytes]:
        """The authors `follower` follows, as their own feed says."""
        with self._env.begin() as txn:
            cur = txn.cursor(db=self._db["follows"])
            out = []
            if cur.set_range(follower):
                for key in cur.iternext(values=False):
                    if key[:32] != follower:
                        break
                    out.append(bytes(key[32:]))
            return out

    def forks(self) -> list[tuple[bytes, int, bytes, bytes]]:
        """Proven forks: (author, seq, envelope kept, envelope refused)."""
        with self._env.begin() as txn:
            out = []
            for key, value in txn.cursor(db=self._db["forks"]):
                kept, refused = msgpack.unpackb(value)
                out.append((bytes(key[:32]), U64.unpack(key[32:])[0], kept, refused))
            return out

    def of_type(self, payload_type: int, refs: Iterable[tuple[bytes, int]] | None = None) -> list[StoredEntry]:
        """The stored entries of one payload type, among `refs` or in the whole store.

        Types come from the seq index, so only matching entries are read and decoded."""
        out: list[StoredEntry] = []
        with self._env.begin(buffers=True) as txn:
            if refs is not None:
                nums: dict[bytes, int | None] = {}
                for author, seq in refs:
                    if author not in nums:
                        raw = txn.get(author, db=self._db["feeds"])
                        nums[author] = FeedRecord.unpack(raw).feed_num if raw is not None else None
                    num = nums[author]
                    item = self._seq_item(txn, num, seq) if num is not None else None
                    if item is not None and item[3] == payload_type:
                        stored = self._load(txn, author, num, seq)
                        if stored is not None:
                            out.append(stored)
                return out
            authors: dict[int, bytes] = {}
            cur = txn.cursor(db=self._db["by_seq"])
            for key, value in cur:
                seq, _, _, ptype = SEQ_ITEM.unpack(value)
                if ptype != payload_type:
                    continue
                num = U32.unpack(key)[0]
                if num not in authors:
                    authors[num] = bytes(txn.get(key, db=self._db["feed_nums"]))
                stored = self._load(txn, authors[num], num, seq)
                if stored is not None:
                    out.append(stored)
        return out

    def frames(self, author: bytes, from_seq: int, to_seq: int) -> list[bytes]:
        """Wire frames of one feed's entries from_seq..to_seq (inclusive), for serving peers.
        Payloads are sent as stored (nil where dropped); nothing is decoded."""
        out: list[bytes] = []
        with self._env.begin(buffers=True) as txn:
            for record in self._log_records(txn, author, from_seq, to_seq):
                _, _, envelope, payload = unpack_log(record, author)
                out.append(msgpack.packb([envelope, payload], use_bin_type=True))
        return out

    def _log_records(self, txn: Any, author: bytes, from_seq: int, to_seq: int) -> Iterator[Any]:
        """The log records of a feed's entries from_seq..to_seq, in seq order, as long as
        they run without a gap from from_seq (buffers of `txn`: use them inside it)."""
        raw = txn.get(author, db=self._db["feeds"])
        if raw is None:
            return
        feed_num = FeedRecord.unpack(raw).feed_num
        log_db = self._db["log"]
        cur = txn.cursor(db=self._db["by_seq"])
        first = U64.pack(from_seq)
        if not cur.set_range_dup(U32.pack(feed_num), first) or cur.value()[:8] != first:
            return
        for value in cur.iternext_dup():
            if U64.unpack_from(value)[0] > to_seq:
                return
            yield txn.get(value[8:16], db=log_db)

    def frame_sizes(self, author: bytes, from_seq: int, to_seq: int) -> list[int]:
        """len() of each of `frames(author, from_seq, to_seq)`, from the log records'
        lengths alone (a relay's quota accounting: nothing is copied or encoded)."""
        with self._env.begin(buffers=True) as txn:
            return [log_frame_size(record) for record in self._log_records(txn, author, from_seq, to_seq)]

    def heads(self, authors: Iterable[bytes]) -> dict[bytes, int]:
        """Head seq of each of `authors` this store holds (feeds it lacks are left out)."""
        out = {}
        with self._env.begin() as txn:
            for author in authors:
                raw = txn.get(author, db=self._db["feeds"])
                if raw is not None:
                    seq = FeedRecord.unpack(raw).head_seq
                    if seq:
                        out[author] = seq
        return out

    def peers(self) -> dict[bytes, dict[str, Any]]:
        """The peer book: peer id -> what put_peer recorded."""
        with self._env.begin() as txn:
            return {bytes(k): msgpack.unpackb(v, raw=False) for k, v in txn.cursor(db=self._db["peers"])}

    def count_entries(self) -> int:
        with self._env.begin() as txn:
            return txn.stat(self._db["log"])["entries"]

    def space(self) -> tuple[int, int]:
        """(bytes the store file uses, up to its last page; the map's size): the storage caps'
        figures, without disk_usage's walk of every sub-database."""
        info = self._env.info()
        return (info["last_pgno"] + 1) * self._env.stat()["psize"], info["map_size"]

    def disk_usage(self) -> dict[str, int]:
        """Bytes in use: the whole file up to its last page, and per sub-database."""
        info = self._env.info()
        page = self._env.stat()["psize"]
        out = {"total": (info["last_pgno"] + 1) * page}
        with self._env.begin() as txn:
            for name in _DB_NAMES:
                st = txn.stat(self._db[name])
                out[name] = (st["branch_pages"] + st["leaf_pages"] + st["overflow_pages"]) * page
        return out

    def home_timeline(self, *, limit: int = 50, cursor: str | None = None) -> Page:
        """Newest-first posts, boosts and encrypted posts of this node's author and the
        feeds they follow. `cursor` is the `next_cursor` of the page before (raises
        ValueError if it is not one)."""
        me = self.self_id
        authors = ([me] + self.follows(me)) if me else []
        return self.timeline(authors, limit=limit, cursor=cursor)

    def timeline(self, authors: Sequence[bytes], *, limit: int = 50, cursor: str | None = None) -> Page:
        """Newest-first timeline entries of `authors`."""
        start = decode_cursor(cursor) if cursor else None
        with self._env.begin(buffers=True) as txn:
            nums: dict[int, bytes] = {}
            records: dict[int, FeedRecord] = {}
            for author in authors:
                raw = txn.get(author, db=self._db["feeds"])
                if raw is not None:
                    rec = FeedRecord.unpack(raw)
                    nums[rec.feed_num] = author
                    records[rec.feed_num] = rec
            # Skip the scan when the followed feeds are too rare in the shared index to fill
            # a page within the budget (estimated from their sizes); else scan, and merge if
            # the scan's budget runs out all the same (say the followed went quiet lately).
            followed = sum(rec.head_seq for rec in records.values())
            indexed = txn.stat(self._db["timeline"])["entries"]
            keys = None
            if min(indexed, limit * indexed / max(followed, 1)) <= _HOME_SCAN_BUDGET:
                keys = self._scan_timeline(txn, set(nums), limit, start)
            if keys is None:
                keys = self._merge_timeline(txn, records, limit, start)
            items = []
            for key in keys:
                _, feed_num, seq = TIMELINE_KEY.unpack(key)
                stored = self._load(txn, nums[feed_num], feed_num, seq)
                if stored is not None:
                    items.append(stored)
        next_cursor = encode_cursor(keys[-1]) if len(keys) == limit else None
        return Page(tuple(items), next_cursor)

    # -- social views --------------------------------------------------------------------------

    def interactions(self, author: bytes, seq: int) -> dict[str, list[tuple[bytes, int]]]:
        """Who boosted, favourited or quoted one entry: kind name -> [(actor, actor seq)]."""
        prefix = author + U64.pack(seq)
        out: dict[str, list[tuple[bytes, int]]] = {}
        with self._env.begin() as txn:
            for key, _ in social.scan_prefix(txn, self._db["interactions"], prefix):
                kind = social.KIND_NAMES.get(key[40:41], "other")
                out.setdefault(kind, []).append((key[41:73], U64.unpack(key[73:81])[0]))
        return out

    def notifications(self, recipient: bytes, *, limit: int = 50, cursor: str | None = None
                      ) -> tuple[list[tuple[StoredEntry, list[str]]], str | None]:
        """Entries that reply to, mention, boost, favourite, quote or follow `recipient`,
        newest first, with the kinds of each."""
        before = social.decode_key_cursor(cursor, recipient) if cursor else None
        out = []
        with self._env.begin(buffers=True) as txn:
            rows = social.scan_desc(txn, self._db["notifications"], recipient, limit, before)
            for key, kinds in rows:
                _, feed_num, seq = TIMELINE_KEY.unpack(key[32:])
                stored = self._load_num(txn, feed_num, seq)
                if stored is not None:
                    out.append((stored, [social.KIND_NAMES.get(bytes([k]), "other") for k in kinds]))
        next_cursor = social.encode_key_cursor(rows[-1][0]) if len(rows) == limit else None
        return out, next_cursor

    def edits(self, author: bytes, seq: int) -> list[int]:
        """Seqs of the author's edits of entry `seq`, oldest first."""
        with self._env.begin() as txn:
            rows = social.scan_prefix(txn, self._db["edits"], author + U64.pack(seq))
        return [U64.unpack(key[40:48])[0] for key, _ in rows]

    def blocks(self, blocker: bytes) -> list[bytes]:
        with self._env.begin() as txn:
            return [key[32:] for key, _ in social.scan_prefix(txn, self._db["blocks"], blocker)]

    def followers(self, followee: bytes) -> list[bytes]:
        with self._env.begin() as txn:
            return [key[32:] for key, _ in social.scan_prefix(txn, self._db["followers"], followee)]

    def profile(self, author: bytes) -> StoredEntry | None:
        """The author's newest profile entry, if this store holds one."""
        with self._env.begin() as txn:
            raw = txn.get(author, db=self._db["profiles"])
        return self.get(author, U64.unpack(raw)[0]) if raw is not None else None

    def profile_authors(self) -> list[bytes]:
        with self._env.begin() as txn:
            return [bytes(k) for k in txn.cursor(db=self._db["profiles"]).iternext(values=False)]

    def replies_under(self, author: bytes, seq: int) -> list[StoredEntry]:
        """Every stored reply that names (author, seq) as its parent or its thread root."""
        prefix = author + U64.pack(seq)
        with self._env.begin(buffers=True) as txn:
            rows = social.scan_prefix(txn, self._db["replies"], prefix)
            out = []
            for key, _ in rows:
                child = self._get_in(txn, key[40:72], U64.unpack(key[72:80])[0])
                if child is not None:
                    out.append(child)
            return out

    def reply_count(self, author: bytes, seq: int) -> int:
        """How many stored replies name (author, seq) as parent or root (index keys only)."""
        prefix = author + U64.pack(seq)
        count = 0
        with self._env.begin() as txn:
            cur = txn.cursor(db=self._db["replies"])
            if cur.set_range(prefix):
                for key in cur.iternext(values=False):
                    if key[:40] != prefix:
                        break
                    count += 1
        return count

    def reply_refs(self, author: bytes, seq: int) -> list[tuple[int, bytes, int]]:
        """(timestamp, author, seq) of every stored reply under (author, seq), oldest first,
        from the indexes alone (nothing decoded): a thread's page loads only what it shows."""
        prefix = author + U64.pack(seq)
        out = []
        with self._env.begin(buffers=True) as txn:
            nums: dict[bytes, int | None] = {}
            for key, _ in social.scan_prefix(txn, self._db["replies"], prefix):
                child, child_seq = key[40:72], U64.unpack(key[72:80])[0]
                if child not in nums:
                    raw = txn.get(child, db=self._db["feeds"])
                    nums[child] = FeedRecord.unpack(raw).feed_num if raw is not None else None
                item = self._seq_item(txn, nums[child], child_seq) if nums[child] is not None else None
                if item is not None:
                    out.append((item[2], child, child_seq))
        out.sort()
        return out

    def hashtag(self, tag: str, *, limit: int = 50, cursor: str | None = None) -> Page:
        prefix = tag.encode() + b"\x00"
        before = social.decode_key_cursor(cursor, prefix) if cursor else None
        with self._env.begin(buffers=True) as txn:
            rows = social.scan_desc(txn, self._db["hashtags"], prefix, limit, before)
            items = []
            for key, _ in rows:
                _, feed_num, seq = TIMELINE_KEY.unpack(key[len(prefix):])
                stored = self._load_num(txn, feed_num, seq)
                if stored is not None:
                    items.append(stored)
        return Page(tuple(items), social.encode_key_cursor(rows[-1][0]) if len(rows) == limit else None)

    def federated(self, *, limit: int = 50, cursor: str | None = None, include_unlisted: bool = False) -> Page:
        """Everything on the timeline this node holds, newest first (unlisted posts left out)."""
        start = decode_cursor(cursor) if cursor else None
        with self._env.begin(buffers=True) as txn:
            cur = txn.cursor(db=self._db["timeline"])
            if start is None:
                ok = cur.last()
            else:  # the newest key strictly before the cursor
                ok = cur.prev() if cur.set_range(start) else cur.last()
            keys: list[bytes] = []
            last_key = None
            while ok and len(keys) < limit:
                key = bytes(cur.key())
                last_key = key
                if include_unlisted or bytes(cur.value()) != UNLISTED:
                    keys.append(key)
                ok = cur.prev()
            items = []
            for key in keys:
                _, feed_num, seq = TIMELINE_KEY.unpack(key)
                stored = self._load_num(txn, feed_num, seq)
                if stored is not None:
                    items.append(stored)
        return Page(tuple(items), encode_cursor(last_key) if ok and last_key is not None else None)

    def _migrate(self, txn: Any, from_version: int) -> None:
        """Bring an older store up to SCHEMA_VERSION inside the opening transaction."""
        if from_version < 2:
            # Version 2 added the social indexes: index every stored payload once.
            cur = txn.cursor(db=self._db["log"])
            authors: dict[int, bytes] = {}
            for _, value in cur:
                flags, feed_num, _ = LOG_HEAD.unpack_from(value)
                if feed_num not in authors:
                    authors[feed_num] = bytes(txn.get(U32.pack(feed_num), db=self._db["feed_nums"]))
                _, _, envelope, payload = unpack_log(value, authors[feed_num])
                if payload is None:
                    continue
                try:
                    decoded = entry_format.decode_payload_bytes(payload)
                except InvalidEntryError:
                    continue
                social.index(txn, self._db, entry_format.decode_envelope(envelope), feed_num, decoded, remove=False)

    def recent_posts(self, max_scan: int) -> Iterator[StoredEntry]:
        """The newest timeline entries, newest first, at most `max_scan` of them (for search)."""
        with self._env.begin(buffers=True) as txn:
            cur = txn.cursor(db=self._db["timeline"])
            ok = cur.last()
            count = 0
            while ok and count < max_scan:
                _, feed_num, seq = TIMELINE_KEY.unpack(bytes(cur.key()))
                stored = self._load_num(txn, feed_num, seq)
                if stored is not None:
                    yield stored
                count += 1
                ok = cur.prev()

    def tags_with_prefix(self, prefix: str, limit: int = 20) -> list[str]:
        """Distinct hashtags starting with `prefix` (normalized), in order."""
        out: list[str] = []
        with self._env.begin() as txn:
            cur = txn.cursor(db=self._db["hashtags"])
            ok = cur.set_range(prefix.encode())
            while ok and len(out) < limit:
                tag_bytes = bytes(cur.key()).split(b"\x00", 1)[0]
                tag = tag_bytes.decode()
                if not tag.startswith(prefix):
                    break
                out.append(tag)
                ok = cur.set_range(tag_bytes + b"\x01")  # past every key of this tag
        return out

    # -- media blobs -------------------------------------------------------------------------------

    def blob_size(self, blob_hash: bytes) -> int | None:
        """Size of a complete blob this store holds, or None."""
        with self._env.begin() as txn:
            return blobs.size_of(txn, self._db["blobs"], blob_hash)

    def put_blob_chunks(self, blob_hash: bytes, chunks: list[tuple[int, bytes]]) -> None:
        """Write some chunks of a blob being received (not visible until `finish_blob`)."""
        with self._write() as batch:
            for index, data in chunks:
                blobs.put_chunk(batch.txn, self._db["blobs"], blob_hash, index, data)

    def finish_blob(self, blob_hash: bytes) -> int:
        """Check a received blob against its hash: keep it (returns the size) or drop it and
        raise blobs.BlobError."""
        error: blobs.BlobError | None = None
        with self._write() as batch:
            try:
                return blobs.finish(batch.txn, self._db["blobs"], blob_hash)
            except blobs.BlobError as e:
                error = e  # commit the removal of the chunks, then raise
        raise error

    def discard_partial_blob(self, blob_hash: bytes) -> None:
        """Remove the chunks of a blob whose receiving failed (a complete blob is kept)."""
        with self._write() as batch:
            if blobs.size_of(batch.txn, self._db["blobs"], blob_hash) is None:
                blobs.discard(batch.txn, self._db["blobs"], blob_hash)

    def blob_chunks(self, blob_hash: bytes, start: int = 0, count: int = 16) -> list[tuple[int, bytes]]:
        """Up to `count` chunks of a complete blob from chunk `start` (a short read transaction
        per call, so serving a large blob never pins the database)."""
        with self._env.begin() as txn:
            if blobs.size_of(txn, self._db["blobs"], blob_hash) is None:
                return []
            out = []
            for index, data in blobs.read_chunks(txn, self._db["blobs"], blob_hash, start):
                out.append((index, data))
                if len(out) >= count:
                    break
            return out

    # -- local settings (never replicated) -----------------------------------------------------

    def local_put(self, key: bytes, value: bytes = b"") -> None:
        with self._write() as batch:
            batch.txn.put(key, value, db=self._db["local"])

    def local_get(self, key: bytes) -> bytes | None:
        with self._env.begin() as txn:
            value = txn.get(key, db=self._db["local"])
        return bytes(value) if value is not None else None

    def local_delete(self, key: bytes) -> bool:
        with self._write() as batch:
            return batch.txn.delete(key, db=self._db["local"])

    def local_scan(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        with self._env.begin() as txn:
            return social.scan_prefix(txn, self._db["local"], prefix)

    # -- signature audit (store/audit.py) -----------------------------------------------------

    def unaudited_count(self) -> int:
        """Entries stored on a later entry's signature whose own signatures wait for the audit."""
        if self._unaudited is None:  # counted once; ingest and settle_audit keep it since
            with self._env.begin() as txn:
                self._unaudited = audit.pending(txn, self._db["unaudited"])
        return self._unaudited

    def check_unaudited(self, limit: int = 2_000) -> AuditResult:
        """Verify up to `limit` waiting signatures. Read only: hand the result to settle_audit."""
        with self._env.begin() as txn:
            authors: dict[int, bytes] = {}

            def author_of(feed_num: int) -> bytes:
                if feed_num not in authors:
                    authors[feed_num] = bytes(txn.get(U32.pack(feed_num), db=self._db["feed_nums"]))
                return authors[feed_num]

            return audit.check(txn, self._db["unaudited"], self._db["log"], author_of, limit)

    def settle_audit(self, result: AuditResult) -> list[tuple[bytes, int]]:
        """Apply a check: drop what was checked; freeze each feed an entry failed in.
        Returns the (author, seq) that failed."""
        with self._write() as batch:
            audit.settle(batch.txn, self._db["unaudited"], result)
            for author, _ in result.bad:
                record = self._record(batch, author, create=False)
                if record is not None:
                    batch.records[author] = record._replace(flags=record.flags | FEED_BAD_SIGNATURE)
        if self._unaudited is not None:
            self._unaudited -= result.checked
        return list(result.bad)

    def audit_all(self, batch: int = 2_000) -> list[tuple[bytes, int]]:
        """Audit everything waiting, here and now (for tools without a node running)."""
        bad: list[tuple[bytes, int]] = []
        while True:
            result = self.check_unaudited(batch)
            if not result.ranges:
                return bad
            bad.extend(self.settle_audit(result))

    # -- whole-store check -----------------------------------------------------------------

    def verify(self) -> list[str]:
        """Re-check every stored entry: signature, chain, payload hash, head. Returns problems."""
        problems: list[str] = []
        from murmurate.crypto import encode_id
        with self._env.begin(buffers=True) as txn:
            for author_raw, rec_raw in txn.cursor(db=self._db["feeds"]):
                author = bytes(author_raw)
                rec = FeedRecord.unpack(rec_raw)
                name = encode_id(author)
                prev: Envelope | None = None
                envelopes: list[Envelope] = []
                for seq in range(1, rec.head_seq + 1):
                    try:
                        stored = self._load(txn, author, rec.feed_num, seq)
                    except (InvalidEntryError, TypeError, ValueError, struct.error) as e:
                        problems.append(f"{name}: entry {seq} is damaged and cannot be read ({e})")
                        prev = None
                        continue
                    if stored is None:
                        problems.append(f"{name}: entry {seq} is missing below head {rec.head_seq}")
                        prev = None
                        continue
                    env = stored.envelope
                    envelopes.append(env)
                    if env.author != author or env.seq != seq:
                        problems.append(f"{name}: entry {seq} is filed under the wrong feed or seq")
                    if prev is not None and (env.prev != prev.hash or env.timestamp_ms < prev.timestamp_ms):
                        problems.append(f"{name}: entry {seq} does not follow entry {seq - 1}")
                    if stored.entry.payload is not None:
                        try:
                            entry_format.check_payload(env, stored.entry.payload)
                        except InvalidEntryError as e:
                            problems.append(f"{name}: entry {seq}: {e}")
                    prev = env
                for env, ok in zip(envelopes, verify_signatures(envelopes)):
                    if not ok:
                        problems.append(f"{name}: entry {env.seq}: signature does not verify")
                if rec.head_seq and (prev is None or prev.hash != rec.head_hash):
                    problems.append(f"{name}: recorded head {rec.head_seq} does not match the last entry")
                if rec.forked:
                    problems.append(f"{name}: feed is forked (proof kept; see `murmurate log --author`)")
                if rec.bad_signature:
                    problems.append(f"{name}: feed is frozen: its author signed a chain holding a bad signature")
            log_count = txn.stat(self._db["log"])["entries"]
            seq_count = txn.stat(self._db["by_seq"])["entries"]
            if log_count != seq_count:
                problems.append(f"index mismatch: {log_count} log records, {seq_count} seq keys")
        return problems

    # -- internals -----------------------------------------------------------------------

    def _write(self) -> "_WriteContext":
        return _WriteContext(self)

    def _record(self, batch: _Batch, author: bytes, *, create: bool = True) -> FeedRecord | None:
        rec = batch.records.get(author)
        if rec is not None:
            return rec
        raw = batch.txn.get(author, db=self._db["feeds"])
        if raw is not None:
            rec = FeedRecord.unpack(raw)
        elif create:
            rec = FeedRecord(batch.next_feed_num)
            batch.next_feed_num += 1
            batch.txn.put(U32.pack(rec.feed_num), author, db=self._db["feed_nums"])
        else:
            return None
        batch.records[author] = rec
        return rec

    def _ingest_one(self, batch: _Batch, item: Entry, payload: dict[str, Any] | None, vouched: bool = False) -> None:
        env = item.envelope
        record = self._record(batch, env.author)
        if not record.frozen and follows_head(record.head_seq, record.head_hash, record.head_ts, env):
            # The common case, decided without building a FeedHead: the next entry of a
            # healthy feed.
            if vouched:
                batch.unaudited.note(record.feed_num, batch.next_local_id)
            self._append(batch, item, payload, record)
            if record.held:
                self._drain_held(batch, env.author)
            return
        try:
            if record.frozen:
                raise InvalidEntryError(Reason.FEED_FROZEN, f"feed is {record.frozen_why} and frozen",
                                        author=env.author, seq=env.seq)
            head = record.head
            stored_hash = None
            if head is not None and env.seq <= head.seq:
                stored_hash = self._hash_at(batch.txn, env.author, record.feed_num, env.seq)
            placement = place(head, env, stored_hash)
            if vouched and placement in (Placement.FORK, Placement.HELD):
                # Kept as a fork proof or held for later: nothing appended vouches for it.
                entry_format.check_signature(env)
        except InvalidEntryError as e:
            batch.rejected.append(Rejected(env.author, env.seq, e.reason, str(e)))
            return
        if placement is Placement.APPEND:
            if vouched:
                batch.unaudited.note(record.feed_num, batch.next_local_id)  # the log position _append takes
            self._append(batch, item, payload)
            self._drain_held(batch, env.author)
        elif placement is Placement.DUPLICATE:
            batch.duplicates += 1
            if item.payload is not None:
                self._fill_payload(batch, record, item, payload)
        elif placement is Placement.FORK:
            kept = self._load(batch.txn, env.author, record.feed_num, env.seq)
            self._record_fork(batch, record, kept.envelope, env)
        else:
            self._hold(batch, record, item)

    def _append(self, batch: _Batch, item: Entry, payload: dict[str, Any] | None,
                record: FeedRecord | None = None) -> None:
        env = item.envelope
        txn, db = batch.txn, self._db
        if record is None:
            record = self._record(batch, env.author)
        local_id = batch.next_local_id
        batch.next_local_id += 1
        txn.put(U64.pack(local_id), pack_log(0, record.feed_num, env.raw, item.payload), db=db["log"], append=True)
        feed_key = U32.pack(record.feed_num)
        item_value = SEQ_ITEM.pack(env.seq, local_id, env.timestamp_ms, env.payload_type)
        if batch.seq_cursor is None:
            batch.seq_cursor = txn.cursor(db=db["by_seq"])
        # seq is the feed's new head, so it sorts after the feed's other values: APPENDDUP
        # (full pages). A plain put is the fallback should that ever not hold.
        if not batch.seq_cursor.put(feed_key, item_value, append=True):
            txn.put(feed_key, item_value, db=db["by_seq"])
        batch.records[env.author] = record = FeedRecord(record.feed_num, env.seq, env.hash, env.timestamp_ms,
                                                        record.flags, record.held)
        batch.appended.append((env.author, env.seq))
        batch.appended_types.append(env.payload_type)
        if payload is not None:
            self._index(batch, record, env, payload)

    def _index(self, batch: _Batch, record: FeedRecord, env: Envelope, payload: dict[str, Any], *,
               remove: bool = False) -> None:
        """Add (or remove) what a payload puts in the indexes."""
        txn, db = batch.txn, self._db
        op = (lambda key, name, value=b"": txn.delete(key, db=db[name])) if remove else \
             (lambda key, name, value=b"": txn.put(key, value, db=db[name]))
        ptype = env.payload_type
        post = post_index(payload) if ptype == PayloadType.POST else None
        social.index(txn, db, env, record.feed_num, payload, remove=remove, post=post)
        tail = TIMELINE_KEY.pack(env.timestamp_ms, record.feed_num, env.seq)
        if ptype in TIMELINE_TYPES:
            unlisted = post is not None and payload.get("vis") == "unlisted"
            if ptype != PayloadType.POST or post is not None:
                op(tail, "timeline", UNLISTED if unlisted else b"")
            if post is not None:
                me = env.author + U64.pack(env.seq)
                for parent in {post.reply_to, post.root} - {None}:
                    op(parent.author + U64.pack(parent.seq) + me, "replies")
                for tag in post.tags if not unlisted else ():
                    op(tag.encode() + b"\x00" + tail, "hashtags")
                for who in post.mentions:
                    op(who + tail, "mentions")
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
                self._drop(batch, env.author, record, target)

    def _drop(self, batch: _Batch, author: bytes, record: FeedRecord, seq: int) -> bool:
        txn = batch.txn
        item = self._seq_item(txn, record.feed_num, seq)
        if item is None:
            return False
        local_key = U64.pack(item[1])
        flags, _, envelope, payload = unpack_log(txn.get(local_key, db=self._db["log"]), author)
        if payload is not None:
            env = entry_format.decode_envelope(envelope)
            try:
                self._index(batch, record, env, entry_format.decode_payload_bytes(payload), remove=True)
            except InvalidEntryError:
                pass  # it was never indexed
        txn.put(local_key, pack_log(flags | LOG_PAYLOAD_DROPPED, record.feed_num, envelope, None), db=self._db["log"])
        return True

    def _fill_payload(self, batch: _Batch, record: FeedRecord, item: Entry, payload: dict[str, Any] | None) -> None:
        """A duplicate envelope may bring a payload this node lacks (unless it was deleted)."""
        txn = batch.txn
        local_key = U64.pack(self._seq_item(txn, record.feed_num, item.envelope.seq)[1])
        flags, _, envelope, have = unpack_log(txn.get(local_key, db=self._db["log"]), item.envelope.author)
        if have is not None or flags & LOG_PAYLOAD_DROPPED:
            return
        txn.put(local_key, pack_log(flags, record.feed_num, envelope, item.payload), db=self._db["log"])
        if payload is not None:
            self._index(batch, record, item.envelope, payload)

    def _hold(self, batch: _Batch, record: FeedRecord, item: Entry) -> None:
        env = item.envelope
        key = env.author + U64.pack(env.seq)
        existing = batch.txn.get(key, db=self._db["held"])
        if existing is not None:
            other = entry_format.decode_frame(existing).envelope
            if other.hash == env.hash:
                batch.duplicates += 1
            else:
                self._record_fork(batch, record, other, env)
            return
        if record.held >= MAX_HELD_PER_FEED:
            batch.rejected.append(Rejected(env.author, env.seq, Reason.SEQ_GAP,
                                           f"too many entries held for this feed ({MAX_HELD_PER_FEED}); "
                                           "fetch the gap first"))
            return
        batch.txn.put(key, entry_format.encode_frame(item), db=self._db["held"])
        batch.records[env.author] = record._replace(held=record.held + 1)
        batch.held += 1

    def _drain_held(self, batch: _Batch, author: bytes) -> None:
        """Apply held entries that now follow the head, in order."""
        record = batch.records[author]
        if record.held == 0:
            return
        while True:
            record = batch.records[author]
            key = author + U64.pack(record.head_seq + 1)
            frame = batch.txn.get(key, db=self._db["held"])
            if frame is None:
                return
            batch.txn.delete(key, db=self._db["held"])
            batch.records[author] = record = record._replace(held=record.held - 1)
            item = entry_format.decode_frame(frame)
            try:
                place(record.head, item.envelope)
                payload = entry_format.check_payload(item.envelope, item.payload) if item.payload is not None else None
            except InvalidEntryError as e:
                batch.rejected.append(Rejected(author, item.envelope.seq, e.reason, str(e)))
                return
            self._append(batch, item, payload)

    def _record_fork(self, batch: _Batch, record: FeedRecord, kept: Envelope, refused: Envelope) -> None:
        key = kept.author + U64.pack(kept.seq)
        batch.txn.put(key, msgpack.packb([kept.raw, refused.raw], use_bin_type=True), db=self._db["forks"])
        batch.records[kept.author] = record._replace(flags=record.flags | FEED_FORKED)
        batch.forks.append((kept.author, kept.seq))
        batch.rejected.append(Rejected(kept.author, kept.seq, Reason.FORK,
                                       f"fork: a second entry {kept.seq} signed by the author; proof kept, feed frozen"))

    def _hash_at(self, txn: Any, author: bytes, feed_num: int, seq: int) -> bytes | None:
        stored = self._load(txn, author, feed_num, seq)
        return stored.envelope.hash if stored is not None else None

    def _seq_item(self, txn: Any, feed_num: int, seq: int) -> tuple[int, int, int, int] | None:
        """(seq, local_id, timestamp, payload type) of one entry, from by_seq."""
        cur = txn.cursor(db=self._db["by_seq"])
        want = U64.pack(seq)
        # The shorter search value sorts just before the full 26-byte value that starts with it.
        if not cur.set_range_dup(U32.pack(feed_num), want):
            return None
        value = cur.value()
        return SEQ_ITEM.unpack(value) if value[:8] == want else None

    def _load_num(self, txn: Any, feed_num: int, seq: int) -> StoredEntry | None:
        author = txn.get(U32.pack(feed_num), db=self._db["feed_nums"])
        return self._load(txn, bytes(author), feed_num, seq) if author is not None else None

    def _get_in(self, txn: Any, author: bytes, seq: int) -> StoredEntry | None:
        raw = txn.get(author, db=self._db["feeds"])
        return self._load(txn, author, FeedRecord.unpack(raw).feed_num, seq) if raw is not None else None

    def _load(self, txn: Any, author: bytes, feed_num: int, seq: int) -> StoredEntry | None:
        item = self._seq_item(txn, feed_num, seq)
        if item is None:
            return None
        flags, _, envelope, payload = unpack_log(txn.get(U64.pack(item[1]), db=self._db["log"]), author)
        env = entry_format.decode_envelope(envelope)
        decoded = None
        if payload is not None:
            try:
                decoded = entry_format.decode_payload_bytes(payload)
            except InvalidEntryError:
                decoded = None
        return StoredEntry(Entry(env, payload), decoded, bool(flags & LOG_PAYLOAD_DROPPED))

    def _scan_timeline(self, txn: Any, feed_nums: set[int], limit: int, start: bytes | None) -> list[bytes] | None:
        """Walk the shared time index backwards, keeping keys of `feed_nums`. None if the
        budget ran out before the page filled (the followed feeds are rare in it)."""
        keys: list[bytes] = []
        if not feed_nums or limit <= 0:
            return keys
        cur = txn.cursor(db=self._db["timeline"])
        if start is not None:
            positioned = cur.set_range(start)
            if positioned and cur.key() == start:
                positioned = cur.prev()
            elif positioned:
                positioned = cur.prev()
            else:
                positioned = cur.last()
        else:
            positioned = cur.last()
        if not positioned:
            return keys
        feed_num_of = U32.unpack_from
        # iterprev walks in C; keys are buffers, copied only when kept.
        for scanned, key in enumerate(cur.iterprev(values=False), start=1):
            if feed_num_of(key, 8)[0] in feed_nums:
                keys.append(bytes(key))
                if len(keys) == limit:
                    return keys
            if scanned >= _HOME_SCAN_BUDGET:
                return None
        return keys

    def _merge_timeline(self, txn: Any, records: dict[int, FeedRecord], limit: int,
                        start: bytes | None) -> list[bytes]:
        """Merge the followed feeds' own entries, newest first (a feed's timestamps never
        go down with seq).

        A heap of (newest possible key) per feed: a feed's head timestamp bounds its
        entries, so a feed's by_seq values are only read once its bound reaches the top of
        the heap; feeds quiet since before the page's oldest entry are never opened.
        Heap items are negated (timestamp, feed_num, seq) so the min-heap pops the newest.
        """
        timeline = self._db["timeline"]
        top = TIMELINE_KEY.unpack(start) if start is not None else None
        heap: list[tuple[int, int, int, int, Iterator[tuple[int, int]] | None]] = []
        for num, rec in records.items():
            if rec.head_seq:
                # (ts, num, seq) is unique per feed and item kind, so ties never reach the stream.
                heap.append((-rec.head_ts, -num, -rec.head_seq, 0, None))
        heapq.heapify(heap)
        keys: list[bytes] = []
        while heap and len(keys) < limit:
            neg_ts, neg_num, neg_seq, _, stream = heapq.heappop(heap)
            if stream is None:  # a bound: open the feed
                stream = self._feed_timeline_items(txn, -neg_num, top)
            else:
                key = TIMELINE_KEY.pack(-neg_ts, -neg_num, -neg_seq)
                # by_seq says it is a timeline type; the index says it is readable and kept.
                if txn.get(key, db=timeline) is not None:
                    keys.append(key)
            following = next(stream, None)
            if following is not None:
                heapq.heappush(heap, (-following[0], neg_num, -following[1], 1, stream))
        return keys

    def _feed_timeline_items(self, txn: Any, feed_num: int,
                             top: tuple[int, int, int] | None) -> Iterator[tuple[int, int]]:
        """(timestamp, seq) of one feed's timeline-type entries below `top`, newest first."""
        cur = txn.cursor(db=self._db["by_seq"])
        if not cur.set_key(U32.pack(feed_num)) or not cur.last_dup():
            return
        for value in cur.iterprev_dup(keys=False):
            seq, _, ts, ptype = SEQ_ITEM.unpack(value)
            if ptype in TIMELINE_TYPES and (top is None or (ts, feed_num, seq) < top):
                yield ts, seq


class _WriteContext:
    """One write transaction; maps LMDB's full-map and full-disk errors to StoreFullError."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def __enter__(self) -> _Batch:
        env = self._store._env
        self._txn = env.begin(write=True)
        db = self._store._db
        cur = self._txn.cursor(db=db["log"])
        next_local = U64.unpack(cur.key())[0] + 1 if cur.last() else 1
        cur = self._txn.cursor(db=db["feed_nums"])
        next_num = U32.unpack(cur.key())[0] + 1 if cur.last() else 1
        self._batch = _Batch(self._txn, next_local, next_num)
        return self._batch

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> bool:
        if exc_type is not None:
            self._txn.abort()
            return self._translate(exc)
        try:
            for author, rec in self._batch.records.items():
                self._txn.put(author, rec.pack(), db=self._store._db["feeds"])
            self._txn.commit()
        except BaseException as e:
            self._txn.abort()
            if not self._translate(e):
                raise
        return False

    def _translate(self, exc: BaseException | None) -> bool:
        if isinstance(exc, lmdb.MapFullError):
            raise StoreFullError(
                "the store's map size is reached; the batch was not written and earlier data is intact "
                "(raise store.map_size in the config)") from None
        if isinstance(exc, lmdb.Error) and (getattr(exc, "errno", None) == errno.ENOSPC or "No space" in str(exc)):
            raise StoreFullError("the disk is full; the batch was not written and earlier data is intact") from None
        return False

