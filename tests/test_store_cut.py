"""A failed audit cuts the feed at the bad entry (issue 11, point 3), on real LMDB.

The chain only the author can make: entry 5 carries a bad signature, 6..10 are signed
properly and 6 names hash(5). Ingest stores 1..10 on seq 10's signature; the audit finds
5 and the store removes 5.. from the log and every index, keeps a proof, moves the head
back to 4 and keeps the feed frozen.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import NOW_MS, bad_signature, chain, identity, posts
from murmurate.store import Entry, PayloadType, Reason, Store, create_entry

A, B, C = identity(51), identity(52), identity(53)
T = NOW_MS - 100_000


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store") as s:
        yield s


def a_feed_bad_at_5() -> list[Entry]:
    """1..4 good (a post tagged 'early', a follow of B, a profile); 5 bad; 6..10 signed over 5,
    naming C in follows, tags, a profile and a block."""
    good = chain(A, [(T + 1, PayloadType.POST, {"text": "one", "tags": ["early"]}),
                     (T + 2, PayloadType.FOLLOW, {"id": B.public_key}),
                     (T + 3, PayloadType.PROFILE, {"name": "A before"}),
                     (T + 4, PayloadType.POST, {"text": "four"}),
                     (T + 5, PayloadType.POST, {"text": "five", "tags": ["late"]})])
    broken = bad_signature(good[-1])
    after = chain(A, [(T + 6, PayloadType.POST, {"text": "six", "tags": ["late"], "mentions": [C.public_key]}),
                      (T + 7, PayloadType.FOLLOW, {"id": C.public_key}),
                      (T + 8, PayloadType.UNFOLLOW, {"id": B.public_key}),
                      (T + 9, PayloadType.PROFILE, {"name": "A after"}),
                      (T + 10, PayloadType.BLOCK, {"id": C.public_key})], after=broken)
    return good[:-1] + [broken] + after


def test_a_failed_audit_cuts_the_feed_at_the_bad_entry_and_everything_after(store: Store) -> None:
    feed = a_feed_bad_at_5()
    reply = create_entry(B, seq=1, prev=None, timestamp_ms=T + 20, payload_type=PayloadType.POST,
                         payload={"text": "re six", "reply": [A.public_key, 6], "root": [A.public_key, 6]})
    store.ingest(feed + [reply], NOW_MS)
    # Before the audit every entry is there (on seq 10's signature).
    assert store.head(A.public_key).seq == 10
    assert [s.envelope.seq for s in store.hashtag("late").items] == [6, 5]
    assert store.follows(A.public_key) == [C.public_key] and store.blocks(A.public_key) == [C.public_key]
    assert store.notifications(C.public_key)[0]  # mentioned at 6, followed at 7
    assert store.tags_with_prefix("lat") == ["late"]

    assert store.audit_all() == [(A.public_key, 5)]

    assert store.head(A.public_key).seq == 4 and store.head(A.public_key).hash == feed[3].envelope.hash
    assert [s.envelope.seq for s in store.entries(A.public_key)] == [1, 2, 3, 4]
    assert store.get(A.public_key, 5) is None and store.get(A.public_key, 10) is None
    assert [s.envelope.seq for s in store.timeline([A.public_key]).items] == [4, 1]
    assert store.hashtag("late").items == () and len(store.hashtag("early").items) == 1
    # What search reads (node/social.py search): recent posts, tags and profiles.
    assert sorted(s.envelope.seq for s in store.recent_posts(100) if s.envelope.author == A.public_key) == [1, 4]
    assert store.tags_with_prefix("lat") == [] and store.tags_with_prefix("ear") == ["early"]
    assert not store.notifications(C.public_key)[0]
    assert store.follows(A.public_key) == [B.public_key] and store.followers(C.public_key) == []
    assert store.followers(B.public_key) == [A.public_key]
    assert store.blocks(A.public_key) == [] and store.profile(A.public_key).payload["name"] == "A before"
    assert store.frames(A.public_key, 1, 10) == store.frames(A.public_key, 1, 4)
    assert len(store.frames(A.public_key, 1, 10)) == 4
    # The proof: the bad envelope and the one the author signed over it.
    [(author, seq, bad, next_)] = store.cuts()
    assert (author, seq, bad, next_) == (A.public_key, 5, feed[4].envelope.raw, feed[5].envelope.raw)
    assert store.cut_at(A.public_key) == 5
    info = store.feed_info(A.public_key)
    assert info.bad_signature
    # Frozen: neither the same history nor a new entry from the author is taken again.
    rejected = store.ingest(feed[4:], NOW_MS).rejected
    assert {r.reason for r in rejected} == {Reason.FEED_FROZEN}
    assert store.head(A.public_key).seq == 4
    # The store is consistent: log and seq index agree, heads match (only the freeze is reported).
    assert [p for p in store.verify() if "frozen" not in p] == []


def test_a_cut_at_the_first_entry_empties_the_feed(store: Store) -> None:
    feed = posts(A, [T + i for i in range(4)])
    broken = bad_signature(feed[0])
    feed = [broken] + posts(A, [T + 1, T + 2], after=broken)
    store.ingest(feed, NOW_MS)
    assert store.audit_all() == [(A.public_key, 1)]
    assert store.head(A.public_key) is None and store.entries(A.public_key) == []
    assert store.count_entries() == 0 and store.cut_at(A.public_key) == 1


def test_a_good_feed_is_not_cut(store: Store) -> None:
    store.ingest(posts(A, [T + i for i in range(6)]), NOW_MS)
    assert store.audit_all() == [] and store.cuts() == [] and store.head(A.public_key).seq == 6


def test_waiting_at_finds_the_range_holding_a_log_position(tmp_path: Path) -> None:
    import lmdb

    from murmurate.store.audit import waiting_at
    from murmurate.store.records import U64

    env = lmdb.open(str(tmp_path / "raw"), max_dbs=1)
    db = env.open_db(b"unaudited")
    with env.begin(write=True) as txn:
        for first, last in ((10, 12), (20, 25), (30, 30)):
            txn.put(U64.pack(first), U64.pack(last), db=db)
    with env.begin(buffers=True) as txn:
        cursor = txn.cursor(db=db)
        waiting = [i for i in range(0, 40) if waiting_at(cursor, i)]
    assert waiting == [10, 11, 12, 20, 21, 22, 23, 24, 25, 30]
    env.close()


def test_a_cut_found_by_a_partial_audit_leaves_nothing_waiting_for_the_removed_entries(store: Store) -> None:
    broken = bad_signature(posts(A, [T + i for i in range(3)])[-1])
    feed = posts(A, [T, T + 1]) + [broken] + posts(A, [T + 3 + i for i in range(7)], after=broken)
    store.ingest(feed, NOW_MS)          # 1..10 on seq 10's signature: 1..9 wait
    assert store.unaudited_count() == 9
    first = store.check_unaudited(limit=4)  # 1..4: finds 3
    assert first.bad == ((A.public_key, 3),)
    store.settle_audit(first)
    assert store.head(A.public_key).seq == 2
    assert store.unaudited_count() == 0  # 5..9 were removed with the cut, not left waiting
