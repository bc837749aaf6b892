"""The store's two faces over one LMDB environment (store/env.py, which has the layout):

- `StoreView`: the reads, and nothing else. What the daemon, API, replicator, relay and
  views hold: a stray write is an AttributeError at once.
- `Store`: a StoreView plus the writes. Exactly one holder per process: the node's writer
  (node/writer.py StoreWriter), or the command line when no daemon runs (its own single
  writer). `Store.view()` hands out read views of the same environment.

Each method delegates to the module of its concern: feeds.py (feeds and ingest),
timelines.py, social.py, blobs.py, settings.py (self, local settings, peers), audit.py.
Each write method is one transaction (`StoreEnv.write`): it commits whole or not at all,
so a crash loses at most the batch in flight. Readers use short read transactions.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from murmurate.crypto import SigningIdentity

from . import audit, blobs, cut, feeds, settings, social, timelines
from .audit import AuditResult
from .entry import Entry
from .env import DB_NAMES, DEFAULT_MAP_SIZE, SCHEMA_VERSION, Commit, StoreEnv
from .feed import FeedHead
from .feeds import MAX_HELD_PER_FEED, FeedInfo, IngestReport, Rejected
from .log import StoredEntry
from .records import U32
from .timelines import UNLISTED, Page

__all__ = ["SCHEMA_VERSION", "DEFAULT_MAP_SIZE", "MAX_HELD_PER_FEED", "UNLISTED", "Commit", "FeedInfo",
           "IngestReport", "Page", "Rejected", "Store", "StoreView", "StoredEntry", "WRITE_METHODS"]

# The write methods of `Store`, none of which a StoreView has (tests/test_store_view.py).
WRITE_METHODS = ("set_self", "append_own", "ingest", "drop_payload", "put_peer", "put_blob_chunks",
                 "finish_blob", "discard_partial_blob", "local_put", "local_delete", "index_opened",
                 "settle_audit", "audit_all", "record_commits", "take_commits")


class StoreView:
    """Read-only access to a store. Get one from `Store.view()` (or the writer's `view`)."""

    def __init__(self, env: StoreEnv) -> None:
        self._env = env

    @property
    def path(self) -> Path:
        return self._env.path

    @property
    def schema_version(self) -> int:
        with self._env.begin() as txn:
            return U32.unpack(txn.get(b"schema", db=self._env.db["meta"]))[0]

    @property
    def self_id(self) -> bytes | None:
        return settings.self_id(self._env)

    # -- feeds -----------------------------------------------------------------------------

    def head(self, author: bytes) -> FeedHead | None:
        return feeds.head(self._env, author)

    def feed_info(self, author: bytes) -> FeedInfo | None:
        return feeds.feed_info(self._env, author)

    def feeds(self) -> list[FeedInfo]:
        return feeds.feeds(self._env)

    def get(self, author: bytes, seq: int) -> StoredEntry | None:
        return feeds.get(self._env, author, seq)

    def entries(self, author: bytes, *, from_seq: int = 1, to_seq: int | None = None,
                newest_first: bool = False, limit: int | None = None) -> list[StoredEntry]:
        """One author's entries between two seqs (inclusive)."""
        return feeds.entries(self._env, author, from_seq=from_seq, to_seq=to_seq, newest_first=newest_first,
                             limit=limit)

    def forks(self) -> list[tuple[bytes, int, bytes, bytes]]:
        """Proven forks: (author, seq, envelope kept, envelope refused)."""
        return feeds.forks(self._env)

    def of_type(self, payload_type: int, refs: Iterable[tuple[bytes, int]] | None = None) -> list[StoredEntry]:
        """The stored entries of one payload type, among `refs` or in the whole store."""
        return feeds.of_type(self._env, payload_type, refs)

    def frames(self, author: bytes, from_seq: int, to_seq: int) -> list[bytes]:
        """Wire frames of one feed's entries from_seq..to_seq (inclusive), for serving peers."""
        return feeds.frames(self._env, author, from_seq, to_seq)

    def frame_sizes(self, author: bytes, from_seq: int, to_seq: int) -> list[int]:
        """len() of each of `frames(author, from_seq, to_seq)`, from the records' lengths."""
        return feeds.frame_sizes(self._env, author, from_seq, to_seq)

    def heads(self, authors: Iterable[bytes]) -> dict[bytes, int]:
        """Head seq of each of `authors` this store holds (feeds it lacks are left out)."""
        return feeds.heads(self._env, authors)

    def count_entries(self) -> int:
        return feeds.count_entries(self._env)

    def verify(self) -> list[str]:
        """Re-check every stored entry: signature, chain, payload hash, head. Returns problems."""
        return feeds.verify(self._env)

    def space(self) -> tuple[int, int]:
        """(bytes the store file uses, up to its last page; the map's size): the storage caps'
        figures, without disk_usage's walk of every sub-database."""
        info = self._env.lmdb.info()
        return (info["last_pgno"] + 1) * self._env.lmdb.stat()["psize"], info["map_size"]

    def disk_usage(self) -> dict[str, int]:
        """Bytes in use: the whole file up to its last page, and per sub-database."""
        lm = self._env.lmdb
        info = lm.info()
        page = lm.stat()["psize"]
        out = {"total": (info["last_pgno"] + 1) * page}
        with self._env.begin() as txn:
            for name in DB_NAMES:
                st = txn.stat(self._env.db[name])
                out[name] = (st["branch_pages"] + st["leaf_pages"] + st["overflow_pages"]) * page
        return out

    # -- timelines -------------------------------------------------------------------------

    def home_timeline(self, *, limit: int = 50, cursor: str | None = None) -> Page:
        """Newest-first posts, boosts and encrypted posts of this node's author and the
        feeds they follow. Raises ValueError for a cursor that is not one."""
        return timelines.home_timeline(self._env, limit=limit, cursor=cursor)

    def timeline(self, authors: Sequence[bytes], *, limit: int = 50, cursor: str | None = None) -> Page:
        """Newest-first timeline entries of `authors`."""
        return timelines.timeline(self._env, authors, limit=limit, cursor=cursor)

    def hashtag(self, tag: str, *, limit: int = 50, cursor: str | None = None) -> Page:
        return timelines.hashtag(self._env, tag, limit=limit, cursor=cursor)

    def federated(self, *, limit: int = 50, cursor: str | None = None, include_unlisted: bool = False) -> Page:
        """Everything on the timeline this node holds, newest first (unlisted posts left out)."""
        return timelines.federated(self._env, limit=limit, cursor=cursor, include_unlisted=include_unlisted)

    def recent_posts(self, max_scan: int) -> Iterator[StoredEntry]:
        """The newest timeline entries, newest first, at most `max_scan` of them (for search)."""
        return timelines.recent_posts(self._env, max_scan)

    def tags_with_prefix(self, prefix: str, limit: int = 20) -> list[str]:
        return timelines.tags_with_prefix(self._env, prefix, limit)

    # -- social indexes --------------------------------------------------------------------

    def follows(self, follower: bytes) -> list[bytes]:
        """The authors `follower` follows, as their own feed says."""
        return social.follows(self._env, follower)

    def interactions(self, author: bytes, seq: int) -> dict[str, list[tuple[bytes, int]]]:
        return social.interactions(self._env, author, seq)

    def notifications(self, recipient: bytes, *, limit: int = 50, cursor: str | None = None
                      ) -> tuple[list[tuple[StoredEntry, list[str]]], str | None]:
        return social.notifications(self._env, recipient, limit=limit, cursor=cursor)

    def edits(self, author: bytes, seq: int) -> list[int]:
        return social.edits(self._env, author, seq)

    def blocks(self, blocker: bytes) -> list[bytes]:
        return social.blocks(self._env, blocker)

    def followers(self, followee: bytes) -> list[bytes]:
        return social.followers(self._env, followee)

    def profile(self, author: bytes) -> StoredEntry | None:
        return social.profile(self._env, author)

    def profile_authors(self) -> list[bytes]:
        return social.profile_authors(self._env)

    def replies_under(self, author: bytes, seq: int) -> list[StoredEntry]:
        return social.replies_under(self._env, author, seq)

    def reply_count(self, author: bytes, seq: int) -> int:
        return social.reply_count(self._env, author, seq)

    def reply_refs(self, author: bytes, seq: int) -> list[tuple[int, bytes, int]]:
        return social.reply_refs(self._env, author, seq)

    # -- blobs, local settings, peers, audit -----------------------------------------------

    def blob_size(self, blob_hash: bytes) -> int | None:
        return blobs.blob_size(self._env, blob_hash)

    def blob_chunks(self, blob_hash: bytes, start: int = 0, count: int = 16) -> list[tuple[int, bytes]]:
        return blobs.blob_chunks(self._env, blob_hash, start, count)

    def local_get(self, key: bytes) -> bytes | None:
        return settings.local_get(self._env, key)

    def local_scan(self, prefix: bytes) -> list[tuple[bytes, bytes]]:
        return settings.local_scan(self._env, prefix)

    def peers(self) -> dict[bytes, dict[str, Any]]:
        """The peer book: peer id -> what put_peer recorded."""
        return settings.peers(self._env)

    def unaudited_count(self) -> int:
        return audit.unaudited_count(self._env)

    def cut_at(self, author: bytes) -> int | None:
        """The seq the audit cut this feed at (its first bad signature; entries from it on
        were removed and the feed is frozen), or None."""
        return cut.cut_at(self._env, author)

    def cuts(self) -> list[tuple[bytes, int, bytes, bytes | None]]:
        """Every cut feed: (author, bad seq, bad envelope, envelope signed over it or None)."""
        return cut.cuts(self._env)

    def check_unaudited(self, limit: int = 2_000) -> AuditResult:
        """Verify up to `limit` waiting signatures. Read only: the writer applies the result
        (Store.settle_audit)."""
        return audit.check_unaudited(self._env, limit)


class Store(StoreView):
    """A node's store, writable. Open with `Store(path)`; close with `close()` or `with`.
    Within a node only its writer holds one; everything else gets `view()`."""

    def __init__(self, path: str | Path, *, map_size: int = DEFAULT_MAP_SIZE, readonly: bool = False) -> None:
        super().__init__(StoreEnv(path, map_size=map_size, readonly=readonly, migrate=feeds.migrate))

    def view(self) -> StoreView:
        """A read-only view of this store (no write methods at all)."""
        return StoreView(self._env)

    # -- life cycle ------------------------------------------------------------------------

    def close(self) -> None:
        self._env.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- commits, for the writer to announce -----------------------------------------------

    def record_commits(self) -> None:
        """From now on keep what each committed transaction appended until `take_commits`
        (the writer announces them: every commit, whatever write made it)."""
        if self._env.commits is None:
            self._env.commits = []

    def take_commits(self) -> list[Commit]:
        commits = self._env.commits or []
        if self._env.commits is not None:
            self._env.commits = []
        return commits

    # -- writes ----------------------------------------------------------------------------

    def set_self(self, author: bytes) -> None:
        """Record whose node this is (the home timeline is this author's and their follows')."""
        with self._env.write() as batch:
            settings.set_self(batch, author)

    def append_own(self, identity: SigningIdentity, payload_type: int, payload: dict[str, Any],
                   now_ms: int) -> Entry:
        """Sign and store the next entry of `identity`'s feed (signed before the write
        transaction: feeds.append_own). Raises ValueError, InvalidEntryError, StoreFullError."""
        return feeds.append_own(self._env, identity, payload_type, payload, now_ms)

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
        entry vouches for it. With `defer_audit` False every signature is checked here and
        nothing is left for the audit (the writer asks for that while the audit lags).
        """
        checked, rejected = feeds.check_incoming(entries, now_ms, defer_audit)
        with self._env.write() as batch:
            feeds.ingest_checked(batch, checked, rejected)
        if self._env.unaudited is not None:
            self._env.unaudited += batch.unaudited.count()
        return feeds.report(batch)

    def drop_payload(self, author: bytes, seq: int) -> bool:
        """Drop one entry's payload (and what it indexed), keeping the envelope. True if found."""
        with self._env.write() as batch:
            return feeds.drop_payload(batch, author, seq)

    def put_peer(self, peer_id: bytes, info: dict[str, Any]) -> None:
        with self._env.write() as batch:
            settings.put_peer(batch, peer_id, info)

    def local_put(self, key: bytes, value: bytes = b"") -> None:
        with self._env.write() as batch:
            settings.local_put(batch, key, value)

    def local_delete(self, key: bytes) -> bool:
        with self._env.write() as batch:
            return settings.local_delete(batch, key)

    def put_blob_chunks(self, blob_hash: bytes, chunks: list[tuple[int, bytes]]) -> None:
        """Write some chunks of a blob being received (not visible until `finish_blob`)."""
        with self._env.write() as batch:
            blobs.put_chunks(batch, blob_hash, chunks)

    def finish_blob(self, blob_hash: bytes) -> int:
        """Check a received blob against its hash: keep it (returns the size) or drop it and
        raise blobs.BlobError."""
        error: blobs.BlobError | None = None
        with self._env.write() as batch:
            try:
                return blobs.finish(batch.txn, batch.db["blobs"], blob_hash)
            except blobs.BlobError as e:
                error = e  # commit the removal of the chunks, then raise
        raise error

    def discard_partial_blob(self, blob_hash: bytes) -> None:
        """Remove the chunks of a blob whose receiving failed (a complete blob is kept)."""
        with self._env.write() as batch:
            blobs.discard_partial(batch, blob_hash)

    def index_opened(self, author: bytes, seq: int, payload: dict[str, Any], *, remove: bool = False) -> bool:
        """Index (or, with `remove`, un-index) the plaintext of a private post this node opened
        (store/social.py index_opened). node/private.py calls it when it opens the post and
        when the post is deleted. False if the entry is not a stored type-11 entry (or, to
        add, its payload was dropped) or the plaintext is not a readable post."""
        with self._env.write() as batch:
            return feeds.index_opened(batch, author, seq, payload, remove=remove)

    def settle_audit(self, result: AuditResult) -> list[tuple[bytes, int]]:
        """Apply a check: drop what was checked; freeze each feed an entry failed in and cut
        it at that entry (store/cut.py). Returns the (author, seq) that failed."""
        with self._env.write() as batch:
            audit.settle(batch.txn, batch.db["unaudited"], result)
            feeds.mark_bad_signature(batch, result.bad)
            forgotten = cut.cut_feeds(batch, result.bad)
        if self._env.unaudited is not None:
            self._env.unaudited -= result.checked + forgotten
        return list(result.bad)

    def audit_all(self, batch: int = 2_000) -> list[tuple[bytes, int]]:
        """Audit everything waiting, here and now (for tools without a node running)."""
        bad: list[tuple[bytes, int]] = []
        while True:
            result = self.check_unaudited(batch)
            if not result.ranges:
                return bad
            bad.extend(self.settle_audit(result))
