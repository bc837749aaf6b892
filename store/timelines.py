"""Timelines and views over the time indexes: home, per-author, federated, hashtag, and the
index entries a post adds (or removes) for them.

    timeline   timestamp u64 | feed_num u32 | seq u64 -> b"" or UNLISTED
    replies    parent author | seq u64 | child author | seq u64 -> b""
    hashtags   tag utf-8 | 0x00 | timestamp u64 | feed_num u32 | seq u64 -> b""
    mentions   mentioned author | timestamp u64 | feed_num u32 | seq u64 -> b""

Read functions take a StoreEnv and open one short read transaction; `index` runs inside
the write transaction of the entry it indexes.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from . import social
from .entry import Envelope, PayloadType
from .log import StoredEntry, load, load_num
from .payloads import TIMELINE_TYPES, PostIndex
from .records import SEQ_ITEM, TIMELINE_KEY, U32, U64, FeedRecord, decode_cursor, encode_cursor
from .settings import self_id

# Home timeline: scan the shared time index while followed feeds are common in it; past
# this many index keys per page, merge the followed feeds' own indexes instead.
_HOME_SCAN_BUDGET = 4_000
UNLISTED = b"u"  # timeline value of an unlisted post: kept out of hashtag and federated views


@dataclass(frozen=True)
class Page:
    items: tuple[StoredEntry, ...]
    next_cursor: str | None


# -- writes (inside the entry's write transaction) ---------------------------------------------

def index(txn: Any, db: dict[str, Any], env: Envelope, feed_num: int, payload: dict[str, Any],
          post: PostIndex | None, *, remove: bool) -> None:
    """Add (or remove) a timeline-type entry's keys: the time index, and for a readable post
    its thread, hashtag and mention keys. `post` is the post's post_index (None if not a
    readable post)."""
    op = (lambda key, name, value=b"": txn.delete(key, db=db[name])) if remove else \
         (lambda key, name, value=b"": txn.put(key, value, db=db[name]))
    tail = TIMELINE_KEY.pack(env.timestamp_ms, feed_num, env.seq)
    unlisted = post is not None and payload.get("vis") == "unlisted"
    if env.payload_type != PayloadType.POST or post is not None:
        op(tail, "timeline", UNLISTED if unlisted else b"")
    if post is not None:
        me = env.author + U64.pack(env.seq)
        for parent in {post.reply_to, post.root} - {None}:
            op(parent.author + U64.pack(parent.seq) + me, "replies")
        for tag in post.tags if not unlisted else ():
            op(tag.encode() + b"\x00" + tail, "hashtags")
        for who in post.mentions:
            op(who + tail, "mentions")


# -- reads -------------------------------------------------------------------------------------

def home_timeline(env: Any, *, limit: int = 50, cursor: str | None = None) -> Page:
    """Newest-first posts, boosts and encrypted posts of this node's author and the
    feeds they follow. `cursor` is the `next_cursor` of the page before (raises
    ValueError if it is not one)."""
    me = self_id(env)
    authors = ([me] + social.follows(env, me)) if me else []
    return timeline(env, authors, limit=limit, cursor=cursor)


def timeline(env: Any, authors: Sequence[bytes], *, limit: int = 50, cursor: str | None = None) -> Page:
    """Newest-first timeline entries of `authors`."""
    start = decode_cursor(cursor) if cursor else None
    db = env.db
    with env.begin(buffers=True) as txn:
        nums: dict[int, bytes] = {}
        records: dict[int, FeedRecord] = {}
        for author in authors:
            raw = txn.get(author, db=db["feeds"])
            if raw is not None:
                rec = FeedRecord.unpack(raw)
                nums[rec.feed_num] = author
                records[rec.feed_num] = rec
        # Skip the scan when the followed feeds are too rare in the shared index to fill
        # a page within the budget (estimated from their sizes); else scan, and merge if
        # the scan's budget runs out all the same (say the followed went quiet lately).
        followed = sum(rec.head_seq for rec in records.values())
        indexed = txn.stat(db["timeline"])["entries"]
        keys = None
        if min(indexed, limit * indexed / max(followed, 1)) <= _HOME_SCAN_BUDGET:
            keys = scan_timeline(txn, db, set(nums), limit, start)
        if keys is None:
            keys = merge_timeline(txn, db, records, limit, start)
        items = []
        for key in keys:
            _, feed_num, seq = TIMELINE_KEY.unpack(key)
            stored = load(txn, db, nums[feed_num], feed_num, seq)
            if stored is not None:
                items.append(stored)
    next_cursor = encode_cursor(keys[-1]) if len(keys) == limit else None
    return Page(tuple(items), next_cursor)


def hashtag(env: Any, tag: str, *, limit: int = 50, cursor: str | None = None) -> Page:
    prefix = tag.encode() + b"\x00"
    before = social.decode_key_cursor(cursor, prefix) if cursor else None
    db = env.db
    with env.begin(buffers=True) as txn:
        rows = social.scan_desc(txn, db["hashtags"], prefix, limit, before)
        items = []
        for key, _ in rows:
            _, feed_num, seq = TIMELINE_KEY.unpack(key[len(prefix):])
            stored = load_num(txn, db, feed_num, seq)
            if stored is not None:
                items.append(stored)
    return Page(tuple(items), social.encode_key_cursor(rows[-1][0]) if len(rows) == limit else None)


def federated(env: Any, *, limit: int = 50, cursor: str | None = None, include_unlisted: bool = False) -> Page:
    """Everything on the timeline this node holds, newest first (unlisted posts left out)."""
    start = decode_cursor(cursor) if cursor else None
    db = env.db
    with env.begin(buffers=True) as txn:
        cur = txn.cursor(db=db["timeline"])
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
            stored = load_num(txn, db, feed_num, seq)
            if stored is not None:
                items.append(stored)
    return Page(tuple(items), encode_cursor(last_key) if ok and last_key is not None else None)


def recent_posts(env: Any, max_scan: int) -> Iterator[StoredEntry]:
    """The newest timeline entries, newest first, at most `max_scan` of them (for search)."""
    db = env.db
    with env.begin(buffers=True) as txn:
        cur = txn.cursor(db=db["timeline"])
        ok = cur.last()
        count = 0
        while ok and count < max_scan:
            _, feed_num, seq = TIMELINE_KEY.unpack(bytes(cur.key()))
            stored = load_num(txn, db, feed_num, seq)
            if stored is not None:
                yield stored
            count += 1
            ok = cur.prev()


def tags_with_prefix(env: Any, prefix: str, limit: int = 20) -> list[str]:
    """Distinct hashtags starting with `prefix` (normalized), in order."""
    out: list[str] = []
    with env.begin() as txn:
        cur = txn.cursor(db=env.db["hashtags"])
        ok = cur.set_range(prefix.encode())
        while ok and len(out) < limit:
            tag_bytes = bytes(cur.key()).split(b"\x00", 1)[0]
            tag = tag_bytes.decode()
            if not tag.startswith(prefix):
                break
            out.append(tag)
            ok = cur.set_range(tag_bytes + b"\x01")  # past every key of this tag
    return out


# -- the two ways to a home page ---------------------------------------------------------------

def scan_timeline(txn: Any, db: dict[str, Any], feed_nums: set[int], limit: int,
                  start: bytes | None) -> list[bytes] | None:
    """Walk the shared time index backwards, keeping keys of `feed_nums`. None if the
    budget ran out before the page filled (the followed feeds are rare in it)."""
    keys: list[bytes] = []
    if not feed_nums or limit <= 0:
        return keys
    cur = txn.cursor(db=db["timeline"])
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
    budget = _HOME_SCAN_BUDGET
    # iterprev walks in C; keys are buffers, copied only when kept.
    for scanned, key in enumerate(cur.iterprev(values=False), start=1):
        if feed_num_of(key, 8)[0] in feed_nums:
            keys.append(bytes(key))
            if len(keys) == limit:
                return keys
        if scanned >= budget:
            return None
    return keys


def merge_timeline(txn: Any, db: dict[str, Any], records: dict[int, FeedRecord], limit: int,
                   start: bytes | None) -> list[bytes]:
    """Merge the followed feeds' own entries, newest first (a feed's timestamps never
    go down with seq).

    A heap of (newest possible key) per feed: a feed's head timestamp bounds its
    entries, so a feed's by_seq values are only read once its bound reaches the top of
    the heap; feeds quiet since before the page's oldest entry are never opened.
    Heap items are negated (timestamp, feed_num, seq) so the min-heap pops the newest.
    """
    timeline_db = db["timeline"]
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
            stream = _feed_timeline_items(txn, db, -neg_num, top)
        else:
            key = TIMELINE_KEY.pack(-neg_ts, -neg_num, -neg_seq)
            # by_seq says it is a timeline type; the index says it is readable and kept.
            if txn.get(key, db=timeline_db) is not None:
                keys.append(key)
        following = next(stream, None)
        if following is not None:
            heapq.heappush(heap, (-following[0], neg_num, -following[1], 1, stream))
    return keys


def _feed_timeline_items(txn: Any, db: dict[str, Any], feed_num: int,
                         top: tuple[int, int, int] | None) -> Iterator[tuple[int, int]]:
    """(timestamp, seq) of one feed's timeline-type entries below `top`, newest first."""
    cur = txn.cursor(db=db["by_seq"])
    if not cur.set_key(U32.pack(feed_num)) or not cur.last_dup():
        return
    for value in cur.iterprev_dup(keys=False):
        seq, _, ts, ptype = SEQ_ITEM.unpack(value)
        if ptype in TIMELINE_TYPES and (top is None or (ts, feed_num, seq) < top):
            yield ts, seq
