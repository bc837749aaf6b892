"""The store's LMDB environment and its write context: one file, its sub-databases, the
schema check, and the one write transaction every write runs in.

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
    forks      author | seq u64 -> [envelope kept, envelope refused]   (refused: the same seq, or
               seq + 1 chained onto another entry: wrong_prev from a validly signed entry)
    blobs      hash | chunk index u32 -> chunk; hash | 0xFFFFFFFF -> size (store/blobs.py)
    peers      peer id -> record (see the network issue)
    unaudited  first local_id u64 -> last local_id u64   (store/audit.py: log records appended
               on a later entry's signature, their own signatures not checked yet)

Which module reads and writes which tables: feeds.py (feeds, feed_nums, log, by_seq, held,
forks: the feeds and ingest), log.py (reading the log), timelines.py (timeline, replies,
hashtags, mentions), social.py (follows and the social indexes), blobs.py, settings.py
(meta's self, local, peers), audit.py (unaudited).
"""

from __future__ import annotations

import errno
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lmdb

from . import audit, social
from .errors import LocalStoreError, SchemaTooNewError, StoreFullError
from .records import U32, U64, FeedRecord

# 1: feeds, log and the timeline, thread, hashtag, mention and follow indexes.
# 2: + the social indexes (store/social.py); a version 1 store is migrated on open by
#    indexing its log.
# 3: + the unaudited table (store/audit.py); nothing to migrate, it starts empty. (A version
#    2 node must not open a version 3 store: it would never audit what is waiting.)
SCHEMA_VERSION = 3
DEFAULT_MAP_SIZE = 64 << 30  # address space only: the file grows as data is written
DB_NAMES = ("meta", "feeds", "feed_nums", "log", "by_seq", "timeline", "replies", "hashtags",
            "mentions", "follows", "held", "forks", "blobs", "peers", "unaudited", *social.DB_NAMES)
DB_FLAGS: dict[str, dict[str, bool]] = {"by_seq": {"dupsort": True, "dupfixed": True}}


@dataclass
class WriteBatch:
    """The write context: one write transaction and what the concerns gather in it (feed
    records, what was appended, refused, held). Written back and committed whole by
    `StoreEnv.write`."""

    txn: Any
    db: dict[str, Any]
    next_local_id: int
    next_feed_num: int
    records: dict[bytes, FeedRecord] = field(default_factory=dict)
    appended: list[tuple[bytes, int]] = field(default_factory=list)
    appended_types: list[int] = field(default_factory=list)
    forks: list[tuple[bytes, int]] = field(default_factory=list)
    rejected: list[Any] = field(default_factory=list)   # feeds.Rejected
    duplicates: int = 0
    held: int = 0
    seq_cursor: Any = None  # a by_seq cursor, made on first use
    unaudited: audit.Runs = field(default_factory=audit.Runs)
    own: bool = False       # the transaction appends this node's own entry (append_own)


@dataclass(frozen=True)
class Commit:
    """What one committed transaction appended, in order: for the writer to announce."""

    appended: tuple[tuple[bytes, int], ...]
    types: tuple[int, ...]
    own: bool


class StoreEnv:
    """One LMDB environment and its sub-databases. Opened writable (and migrated) or read-only."""

    def __init__(self, path: str | Path, *, map_size: int = DEFAULT_MAP_SIZE, readonly: bool = False,
                 migrate: Callable[[Any, dict[str, Any], int], None] | None = None) -> None:
        self.path = Path(path)
        self.readonly = readonly
        # Set by the writer (StoreWriter.__init__): committed appends are kept here until it
        # takes them, so every commit is announced, whatever write made it.
        self.commits: list[Commit] | None = None
        if not readonly:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            self.lmdb = lmdb.open(str(self.path), map_size=map_size, max_dbs=len(DB_NAMES) + 2,
                                  readonly=readonly, subdir=True, create=not readonly, lock=True,
                                  max_readers=256)
        except lmdb.Error as e:
            raise LocalStoreError(f"cannot open the store at {self.path}: {e}") from None
        self._check_schema()
        if readonly:
            # Handles opened inside a read transaction die with it: open them outside one.
            self.db = {n: self.lmdb.open_db(n.encode(), create=False, **DB_FLAGS.get(n, {})) for n in DB_NAMES}
        else:
            try:
                with self.lmdb.begin(write=True) as txn:
                    self.db = {n: self.lmdb.open_db(n.encode(), txn=txn, **DB_FLAGS.get(n, {})) for n in DB_NAMES}
                    raw = txn.get(b"schema", db=self.db["meta"])
                    if raw is not None and U32.unpack(raw)[0] < SCHEMA_VERSION and migrate is not None:
                        migrate(txn, self.db, U32.unpack(raw)[0])
                    txn.put(b"schema", U32.pack(SCHEMA_VERSION), db=self.db["meta"])
            except lmdb.MapFullError:
                raise StoreFullError("the store's map is full: cannot even open it (raise map_size)") from None

    def close(self) -> None:
        self.lmdb.close()

    def begin(self, *, buffers: bool = False) -> Any:
        """A short read transaction (a context manager)."""
        return self.lmdb.begin(buffers=buffers)

    def write(self, *, own: bool = False) -> "_WriteContext":
        """One write transaction: `with env.write() as batch:`. Commits whole on leaving, or
        aborts on an exception; a full map or disk becomes StoreFullError."""
        return _WriteContext(self, own)

    def _check_schema(self) -> None:
        """Refuse a store written by a newer version before anything is written to it."""
        with self.lmdb.begin() as txn:
            try:
                meta = self.lmdb.open_db(b"meta", txn=txn, create=False)
            except lmdb.NotFoundError:
                return
            raw = txn.get(b"schema", db=meta)
        if raw is None:
            return
        version = U32.unpack(raw)[0]
        if version > SCHEMA_VERSION:
            self.lmdb.close()
            raise SchemaTooNewError(
                f"the store at {self.path} has schema version {version}, this Murmurate reads up to "
                f"{SCHEMA_VERSION}: upgrade Murmurate (the store was not changed)")


class _WriteContext:
    """One write transaction; maps LMDB's full-map and full-disk errors to StoreFullError."""

    def __init__(self, env: StoreEnv, own: bool) -> None:
        self._env = env
        self._own = own

    def __enter__(self) -> WriteBatch:
        db = self._env.db
        self._txn = self._env.lmdb.begin(write=True)
        cur = self._txn.cursor(db=db["log"])
        next_local = U64.unpack(cur.key())[0] + 1 if cur.last() else 1
        cur = self._txn.cursor(db=db["feed_nums"])
        next_num = U32.unpack(cur.key())[0] + 1 if cur.last() else 1
        self._batch = WriteBatch(self._txn, db, next_local, next_num, own=self._own)
        return self._batch

    def __exit__(self, exc_type: type | None, exc: BaseException | None, tb: object) -> bool:
        if exc_type is not None:
            self._txn.abort()
            return self._translate(exc)
        batch = self._batch
        try:
            for author, rec in batch.records.items():
                self._txn.put(author, rec.pack(), db=self._env.db["feeds"])
            self._txn.commit()
        except BaseException as e:
            self._txn.abort()
            if not self._translate(e):
                raise
        if batch.appended and self._env.commits is not None:
            self._env.commits.append(Commit(tuple(batch.appended), tuple(batch.appended_types), batch.own))
        return False

    def _translate(self, exc: BaseException | None) -> bool:
        if isinstance(exc, lmdb.MapFullError):
            raise StoreFullError(
                "the store's map size is reached; the batch was not written and earlier data is intact "
                "(raise store.map_size in the config)") from None
        if isinstance(exc, lmdb.Error) and (getattr(exc, "errno", None) == errno.ENOSPC or "No space" in str(exc)):
            raise StoreFullError("the disk is full; the batch was not written and earlier data is intact") from None
        return False
