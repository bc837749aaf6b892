"""The LMDB store on real files: chains, ingest, held entries, forks, deletes, follows,
the home timeline and the whole-store check."""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import NOW_MS, bad_signature, chain, identity, key_of, post, posts, raw_env
from murmurate.crypto import encode_id
from murmurate.store import (MAX_CLOCK_SKEW_MS, Entry, InvalidEntryError, PayloadType, Reason, Store,
                             check_signature, create_entry, decode_envelope)
from murmurate.store import feeds, lmdb_store, timelines
from murmurate.store.records import FeedRecord

A, B, C = identity(1), identity(2), identity(3)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store") as s:
        yield s


def envelopes(store: Store, author: bytes) -> list[bytes]:
    return [s.envelope.raw for s in store.entries(author)]


def reasons(report: lmdb_store.IngestReport) -> dict[tuple[bytes | None, int | None], Reason]:
    return {(r.author, r.seq): r.reason for r in report.rejected}


# -- own feed --------------------------------------------------------------------------------

def test_append_own_chain_with_clock_going_back(store: Store) -> None:
    clock = [1_000, 2_000, 1_500, 3_000, 10]
    made = [store.append_own(A, PayloadType.POST, post(f"n{i}"), now) for i, now in enumerate(clock)]
    assert [e.envelope.seq for e in made] == [1, 2, 3, 4, 5]
    assert [e.envelope.timestamp_ms for e in made] == [1_000, 2_000, 2_000, 3_000, 3_000]
    assert made[0].envelope.prev is None
    for before, after in zip(made, made[1:]):
        assert after.envelope.prev == before.envelope.hash
    head = store.head(A.public_key)
    assert (head.seq, head.hash, head.timestamp_ms) == (5, made[-1].envelope.hash, 3_000)
    assert envelopes(store, A.public_key) == [e.envelope.raw for e in made]
    assert store.get(A.public_key, 3).payload == post("n2")
    assert store.verify() == []


def test_append_own_refuses_an_oversized_post_and_stores_nothing(store: Store) -> None:
    store.append_own(A, PayloadType.POST, post("ok"), NOW_MS)
    with pytest.raises(ValueError):
        store.append_own(A, PayloadType.POST, post("x" * 9000), NOW_MS)
    assert store.head(A.public_key).seq == 1 and store.count_entries() == 1


# -- ingest ----------------------------------------------------------------------------------

def test_ingest_in_batches_from_another_store(tmp_path: Path) -> None:
    with Store(tmp_path / "a") as source:
        for i in range(7):
            for who in (A, B, C)[: 1 + i % 3]:
                store_kind = PayloadType.POST if i % 2 else PayloadType.FAVOURITE
                body = post(f"{i}") if store_kind == PayloadType.POST else {"ref": [B.public_key, 1]}
                source.append_own(who, store_kind, body, NOW_MS + i)
        feeds = {who.public_key: source.entries(who.public_key) for who in (A, B, C)}
    # Interleave the authors the way a peer streams several feeds at once.
    stream = [s.entry for group in zip(*feeds.values()) for s in group]
    stream += [s.entry for f in feeds.values() for s in f[len(min(feeds.values(), key=len)):]]
    assert len(stream) == sum(len(f) for f in feeds.values())
    with Store(tmp_path / "b") as sink:
        appended = []
        for i in range(0, len(stream), 4):
            report = sink.ingest(stream[i:i + 4], NOW_MS)
            assert report.rejected == () and report.held == 0
            appended += report.appended
        assert appended == [key_of(e) for e in stream]
        for author, stored in feeds.items():
            got = sink.entries(author)
            assert [s.envelope.raw for s in got] == [s.envelope.raw for s in stored]
            assert [s.entry.payload for s in got] == [s.entry.payload for s in stored]
        assert sink.verify() == []


def test_duplicates_counted_and_change_nothing(store: Store) -> None:
    feed = posts(A, [10, 20, 30])
    assert len(store.ingest(feed, NOW_MS).appended) == 3
    again = store.ingest(feed + feed[:1], NOW_MS)
    assert (again.appended, again.duplicates, again.rejected) == ((), 4, ())
    assert store.count_entries() == 3


def test_payload_arriving_after_its_envelope_is_filled_in(store: Store) -> None:
    feed = posts(A, [10, 20])
    store.ingest([Entry(e.envelope, None) for e in feed], NOW_MS)
    assert store.get(A.public_key, 1).entry.payload is None
    assert store.timeline([A.public_key]).items == ()
    report = store.ingest(feed, NOW_MS)
    assert report.duplicates == 2
    assert store.get(A.public_key, 1).payload == post("post 1 at 10")
    assert len(store.timeline([A.public_key]).items) == 2
    assert store.verify() == []


def test_gap_is_held_then_applied_in_order(store: Store) -> None:
    feed = posts(A, range(100, 110))
    report = store.ingest(feed[5:], NOW_MS)
    assert (report.appended, report.held) == ((), 5)
    assert store.feed_info(A.public_key).held == 5 and store.head(A.public_key) is None
    report = store.ingest(feed[:5], NOW_MS)
    assert report.appended == tuple(key_of(e) for e in feed)
    info = store.feed_info(A.public_key)
    assert (info.head.seq, info.held) == (10, 0)
    assert envelopes(store, A.public_key) == [e.envelope.raw for e in feed]
    assert store.verify() == []


def test_gap_fills_across_batches(store: Store) -> None:
    feed = posts(A, range(100, 112))
    assert store.ingest(feed[8:], NOW_MS).held == 4
    assert store.ingest(feed[3:6], NOW_MS).held == 3
    first = store.ingest(feed[:2], NOW_MS)
    assert first.appended == tuple(key_of(e) for e in feed[:2])
    assert store.feed_info(A.public_key).held == 7
    rest = store.ingest(feed[6:8] + feed[2:3], NOW_MS)  # the gap's last piece comes last
    assert rest.held == 2 and rest.appended == tuple(key_of(e) for e in feed[2:])
    assert store.feed_info(A.public_key).held == 0
    assert envelopes(store, A.public_key) == [e.envelope.raw for e in feed]


def test_held_entries_survive_reopen(tmp_path: Path) -> None:
    feed = posts(A, range(100, 110))
    with Store(tmp_path / "s") as s:
        assert s.ingest(feed[2:], NOW_MS).held == 8
    with Store(tmp_path / "s") as s:
        assert s.feed_info(A.public_key).held == 8
        report = s.ingest(feed[:2], NOW_MS)
        assert report.appended == tuple(key_of(e) for e in feed)
        assert s.verify() == []


def test_held_duplicate_counted(store: Store) -> None:
    feed = posts(A, [1, 2, 3])
    store.ingest(feed[2:], NOW_MS)
    report = store.ingest(feed[2:], NOW_MS)
    assert (report.held, report.duplicates) == (0, 1)
    assert store.feed_info(A.public_key).held == 1


def test_held_cap(store: Store, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(feeds, "MAX_HELD_PER_FEED", 5)
    feed = posts(A, range(100, 112))
    other = posts(B, [5, 6])
    report = store.ingest(feed[1:] + other, NOW_MS)
    assert report.held == 5
    assert [r.seq for r in report.rejected] == [7, 8, 9, 10, 11, 12]
    assert {r.reason for r in report.rejected} == {Reason.SEQ_GAP}
    assert report.appended == tuple(key_of(e) for e in other)  # other feeds are not held back
    assert store.feed_info(A.public_key).held == 5
    report = store.ingest(feed[:1], NOW_MS)
    assert report.appended == tuple(key_of(e) for e in feed[:6])
    assert store.feed_info(A.public_key).held == 0
    # Room again: the refused ones come back the ordinary way.
    assert len(store.ingest(feed[6:], NOW_MS).appended) == 6


# -- forks -----------------------------------------------------------------------------------

def test_fork_keeps_proof_and_freezes_feed(store: Store) -> None:
    feed = posts(A, [10, 20, 30, 40])
    store.ingest(feed[:3] + posts(B, [1]), NOW_MS)
    rival = posts(A, [25], after=feed[0], label="rival ")[0]
    assert rival.envelope.seq == 2 and rival.envelope.hash != feed[1].envelope.hash
    before = {who: store.entries(who) for who in (A.public_key, B.public_key)}
    count = store.count_entries()

    later_b = posts(B, [2], after=store.entries(B.public_key)[-1].entry)
    report = store.ingest([rival] + later_b, NOW_MS)
    assert report.forks == ((A.public_key, 2),)
    assert reasons(report) == {(A.public_key, 2): Reason.FORK}
    assert report.appended == tuple(key_of(e) for e in later_b)

    [(author, seq, kept, refused)] = store.forks()
    assert (author, seq, kept, refused) == (A.public_key, 2, feed[1].envelope.raw, rival.envelope.raw)
    for raw in (kept, refused):  # both are the author's own signatures: a proof
        env = decode_envelope(raw)
        check_signature(env)
        assert (env.author, env.seq) == (A.public_key, 2)
    assert store.feed_info(A.public_key).forked

    report = store.ingest(feed[3:], NOW_MS)
    assert reasons(report) == {(A.public_key, 4): Reason.FEED_FROZEN}
    with pytest.raises(InvalidEntryError) as err:
        store.append_own(A, PayloadType.POST, post("more"), NOW_MS)
    assert err.value.reason == Reason.FEED_FROZEN

    assert store.entries(A.public_key) == before[A.public_key]
    assert store.entries(B.public_key)[:1] == before[B.public_key]
    assert store.count_entries() == count + 1  # only B's new entry
    assert store.head(A.public_key).seq == 3
    problems = store.verify()
    assert len(problems) == 1 and "forked" in problems[0] and encode_id(A.public_key) in problems[0]


def test_fork_among_held_entries(store: Store) -> None:
    feed = posts(A, [10, 20, 30])
    rival = posts(A, [31], after=feed[1], label="rival ")[0]
    store.ingest(feed[2:], NOW_MS)
    report = store.ingest([rival], NOW_MS)
    assert report.forks == ((A.public_key, 3),)
    assert store.feed_info(A.public_key).forked
    assert [(a, s) for a, s, _, _ in store.forks()] == [(A.public_key, 3)]


# -- refusals --------------------------------------------------------------------------------

def test_bad_entries_refused_while_good_ones_of_the_batch_are_stored(store: Store) -> None:
    good_a = posts(A, [10, 20, 30])
    good_b = posts(B, [10])
    forged = bad_signature(posts(C, [10])[0])
    stranger = identity(4)
    wrong_prev = create_entry(stranger, seq=2, prev=bytes(32), timestamp_ms=10,
                              payload_type=PayloadType.POST, payload=post("x"))
    start = posts(stranger, [5])
    future = posts(identity(5), [NOW_MS + MAX_CLOCK_SKEW_MS + 1])[0]
    at_limit = posts(identity(6), [NOW_MS + MAX_CLOCK_SKEW_MS])[0]
    honest = posts(identity(7), [10])[0]
    swapped = Entry(honest.envelope, honest.payload.replace(b"post", b"pots"))  # same size, other bytes
    short = Entry(honest.envelope, honest.payload[:-1])
    batch = [good_a[0], forged, start[0], good_a[1], future, wrong_prev, swapped, short,
             good_a[2], at_limit, good_b[0]]
    report = store.ingest(batch, NOW_MS)
    got = sorted((r.author, r.seq, r.reason) for r in report.rejected)
    assert got == sorted([
        (*key_of(forged), Reason.BAD_SIGNATURE),
        (stranger.public_key, 2, Reason.FORK),  # signed onto another entry 1: a fork (7.2)
        (*key_of(future), Reason.TIMESTAMP_IN_FUTURE),
        (*key_of(honest), Reason.PAYLOAD_HASH_MISMATCH),
        (*key_of(honest), Reason.PAYLOAD_SIZE_MISMATCH),
    ])
    assert report.appended == tuple(key_of(e) for e in [good_a[0], start[0], good_a[1], good_a[2],
                                                        at_limit, good_b[0]])
    for who in (C, identity(5), identity(7)):
        assert store.head(who.public_key) is None
    assert store.head(stranger.public_key).seq == 1
    assert store.count_entries() == 6
    assert all(r.message for r in report.rejected)
    # The refused entry that was honest all along is taken when its real payload comes.
    assert store.ingest([honest], NOW_MS).appended == (key_of(honest),)
    assert [p for p in store.verify() if encode_id(stranger.public_key) not in p] == []
    assert store.feed_info(stranger.public_key).forked


def test_timestamp_before_prev_refused(store: Store) -> None:
    first = posts(A, [100])
    backwards = posts(A, [99], after=first[0])
    report = store.ingest(first + backwards, NOW_MS)
    assert reasons(report) == {(A.public_key, 2): Reason.TIMESTAMP_BEFORE_PREV}
    assert store.head(A.public_key).seq == 1


def test_held_entry_with_wrong_prev_is_a_fork_when_reached(store: Store) -> None:
    """The author signed entry 3 onto another entry 2 than the one it signed into the feed:
    two histories, so the proof is kept and the feed frozen (issue 11.2b), not merely refused."""
    feed = posts(A, [1, 2])
    stray = create_entry(A, seq=3, prev=bytes(32), timestamp_ms=3, payload_type=PayloadType.POST,
                         payload=post("stray"))
    assert store.ingest([stray], NOW_MS).held == 1
    report = store.ingest(feed, NOW_MS)
    assert report.appended == tuple(key_of(e) for e in feed)
    assert reasons(report) == {(A.public_key, 3): Reason.FORK}
    assert store.feed_info(A.public_key).held == 0 and store.feed_info(A.public_key).forked
    assert store.forks() == [(A.public_key, 2, feed[1].envelope.raw, stray.envelope.raw)]


def test_next_entry_onto_another_history_is_kept_as_a_fork_proof(store: Store) -> None:
    """What a node sees when a forked author showed another history to the peer it fetches
    from: entry n+1 signed onto a different entry n. Both envelopes are the author's."""
    feed = posts(A, [10, 20])
    rival = posts(A, [25], after=feed[0], label="rival ")
    store.ingest(feed, NOW_MS)
    onto_rival = posts(A, [30], after=rival[0])
    assert onto_rival[0].envelope.seq == 3 and onto_rival[0].envelope.prev != feed[1].envelope.hash
    report = store.ingest(onto_rival, NOW_MS)
    assert reasons(report) == {(A.public_key, 3): Reason.FORK}
    assert report.forks == ((A.public_key, 2),) and store.feed_info(A.public_key).forked
    [(author, seq, kept, refused)] = store.forks()
    assert (author, seq, kept, refused) == (A.public_key, 2, feed[1].envelope.raw, onto_rival[0].envelope.raw)
    for raw in (kept, refused):
        check_signature(decode_envelope(raw))
    assert store.head(A.public_key).seq == 2


def signed_onto_a_bad_signature(timestamps: list[int]) -> list[Entry]:
    """A's entries 1, 2 (its signature broken), 3 (signed by A onto that broken 2)."""
    first = posts(A, timestamps[:2])
    broken = bad_signature(first[1])
    return [first[0], broken, posts(A, timestamps[2:], after=broken)[0]]


def test_a_run_vouches_only_up_to_an_entry_that_is_stored(store: Store) -> None:
    """Issue 11.2a: 1, 2 with a bad signature, 3 eleven minutes ahead. 3's signature must not
    vouch for 2, since 3 is refused: 2 is checked on its own, refused, and only 1 stored, so
    this node never serves 2 as if the author had signed it."""
    batch = signed_onto_a_bad_signature([10, 20, NOW_MS + MAX_CLOCK_SKEW_MS + 60_000])
    report = store.ingest(batch, NOW_MS)
    assert reasons(report) == {(A.public_key, 2): Reason.BAD_SIGNATURE, (A.public_key, 3): Reason.TIMESTAMP_IN_FUTURE}
    assert report.appended == (key_of(batch[0]),)
    assert store.unaudited_count() == 0  # 1 was checked on its own too: nothing stored on 3's word
    assert store.verify() == []


def test_a_run_whose_end_goes_back_in_time_vouches_for_nothing(store: Store) -> None:
    batch = signed_onto_a_bad_signature([100, 200, 150])
    report = store.ingest(batch, NOW_MS)
    assert reasons(report)[(A.public_key, 2)] == Reason.BAD_SIGNATURE
    assert store.head(A.public_key).seq == 1 and store.verify() == []


def test_a_run_vouches_as_before_when_its_end_is_stored(store: Store) -> None:
    feed = signed_onto_a_bad_signature([10, 20, 30])
    report = store.ingest(feed, NOW_MS)
    assert report.appended == tuple(key_of(e) for e in feed) and store.unaudited_count() == 2
    assert store.audit_all() == [(A.public_key, 2)]  # the audit then freezes the feed
    assert store.feed_info(A.public_key).bad_signature


# -- dropping payloads -----------------------------------------------------------------------

def test_drop_payload_keeps_the_chain_verifiable(store: Store) -> None:
    feed = posts(A, [10, 20, 30])
    store.ingest(feed, NOW_MS)
    assert store.drop_payload(A.public_key, 2)
    dropped = store.get(A.public_key, 2)
    assert dropped.dropped and dropped.entry.payload is None and dropped.payload is None
    assert dropped.envelope.raw == feed[1].envelope.raw
    assert store.verify() == []
    assert [s.envelope.seq for s in store.timeline([A.public_key]).items] == [3, 1]
    assert not store.drop_payload(A.public_key, 9)
    assert not store.drop_payload(B.public_key, 1)
    # A peer sending the payload again does not bring it back.
    assert store.ingest(feed, NOW_MS).duplicates == 3
    assert store.get(A.public_key, 2).payload is None
    assert [s.envelope.seq for s in store.timeline([A.public_key]).items] == [3, 1]


def test_delete_entry_drops_its_target_on_ingest(store: Store) -> None:
    tag_post = post("tagged", tags=["news"], mentions=[B.public_key])
    feed = chain(A, [(10, PayloadType.POST, tag_post), (20, PayloadType.POST, post("stays")),
                     (30, PayloadType.DELETE, {"target": 1})])
    store.ingest(feed[:2], NOW_MS)
    assert len(store.timeline([A.public_key]).items) == 2
    store.ingest(feed[2:], NOW_MS)
    target = store.get(A.public_key, 1)
    assert target.dropped and target.entry.payload is None
    assert [s.envelope.seq for s in store.timeline([A.public_key]).items] == [2]
    assert store.get(A.public_key, 2).payload == post("stays")
    assert store.verify() == []
    store.ingest(feed[:1], NOW_MS)  # the original payload again, from a peer that missed the delete
    assert store.get(A.public_key, 1).entry.payload is None
    assert [s.envelope.seq for s in store.timeline([A.public_key]).items] == [2]


def test_delete_in_the_same_batch_and_via_append_own(tmp_path: Path) -> None:
    feed = chain(A, [(10, PayloadType.POST, post("gone")), (20, PayloadType.DELETE, {"target": 1})])
    with Store(tmp_path / "a") as s:
        s.ingest(feed, NOW_MS)
        assert s.get(A.public_key, 1).dropped
    with Store(tmp_path / "b") as s:
        s.append_own(A, PayloadType.POST, post("gone"), 10)
        s.append_own(A, PayloadType.DELETE, {"target": 1}, 20)
        assert s.get(A.public_key, 1).dropped and s.timeline([A.public_key]).items == ()
        assert s.verify() == []


@pytest.mark.parametrize("target", [3, 4, 0, "1", True, None])
def test_delete_of_itself_a_later_or_a_bad_target_drops_nothing(store: Store, target: object) -> None:
    feed = chain(A, [(10, PayloadType.POST, post("a")), (20, PayloadType.POST, post("b")),
                     (30, PayloadType.DELETE, {"target": target})])
    store.ingest(feed, NOW_MS)
    assert not any(s.dropped for s in store.entries(A.public_key))


# -- follows ---------------------------------------------------------------------------------

def test_follow_and_unfollow_change_follows(tmp_path: Path) -> None:
    me = identity(10)
    with Store(tmp_path / "own") as own:
        assert own.follows(me.public_key) == []
        for kind, who in [(PayloadType.FOLLOW, A), (PayloadType.FOLLOW, B), (PayloadType.FOLLOW, C),
                          (PayloadType.UNFOLLOW, B), (PayloadType.FOLLOW, A)]:
            own.append_own(me, kind, {"id": who.public_key}, NOW_MS)
        assert sorted(own.follows(me.public_key)) == sorted([A.public_key, C.public_key])
        assert own.follows(A.public_key) == []
        entries = [s.entry for s in own.entries(me.public_key)]
    with Store(tmp_path / "peer") as peer:
        peer.ingest(entries[:3], NOW_MS)
        assert sorted(peer.follows(me.public_key)) == sorted([A.public_key, B.public_key, C.public_key])
        peer.ingest(entries[3:], NOW_MS)
        assert sorted(peer.follows(me.public_key)) == sorted([A.public_key, C.public_key])


# -- whole-store check -----------------------------------------------------------------------

# The damage is done through a raw LMDB transaction and found by content (the entry's
# signature, payload or timestamp bytes), so these tests do not depend on the record layout.

def _damage(path: Path, entry: Entry, where: str) -> None:
    env = raw_env(path)
    try:
        with env.begin(write=True) as txn:
            log = env.open_db(b"log", txn=txn, create=False)
            sig = entry.envelope.signature
            [(key, value)] = [(bytes(k), bytearray(v)) for k, v in txn.cursor(db=log) if sig in bytes(v)]
            stamp = b"\xcf" + entry.envelope.timestamp_ms.to_bytes(8, "big")
            if where == "signature":
                value[value.index(sig) + 10] ^= 0x04
            elif where == "payload":
                value[value.index(entry.payload) + len(entry.payload) - 2] ^= 0x04
            elif where == "timestamp":
                value[value.index(stamp) + 8] ^= 0x01
            elif where == "garbage":
                value = bytearray(b"\xc1" * len(value))
            elif where == "record deleted":
                assert txn.delete(key, db=log)
                return
            else:
                raise AssertionError(where)
            txn.put(key, bytes(value), db=log)
    finally:
        env.close()


@pytest.mark.parametrize("where,says", [
    ("signature", ["entry 2: signature does not verify"]),
    ("payload", ["entry 2"]),
    ("timestamp", ["entry 2: signature does not verify", "entry 3 does not follow entry 2"]),
    ("garbage", ["entry 2"]),
    ("record deleted", ["entry 2"]),
])
def test_verify_reports_a_damaged_record(tmp_path: Path, where: str, says: list[str]) -> None:
    path = tmp_path / "store"
    feed = posts(A, [NOW_MS - 30, NOW_MS - 20, NOW_MS - 10])
    with Store(path) as s:
        s.ingest(feed + posts(B, [10, 20]), NOW_MS)
        assert s.verify() == []
    _damage(path, feed[1], where)
    with Store(path) as s:
        problems = s.verify()
    assert problems, "the damage went unnoticed"
    for text in says:
        assert any(text in p and encode_id(A.public_key) in p for p in problems), (text, problems)
    assert not any(encode_id(B.public_key) in p for p in problems)


def test_verify_reports_a_head_that_claims_too_much(tmp_path: Path) -> None:
    path = tmp_path / "store"
    with Store(path) as s:
        s.ingest(posts(A, [10, 20, 30]), NOW_MS)
    env = raw_env(path)
    try:
        with env.begin(write=True) as txn:
            feeds = env.open_db(b"feeds", txn=txn, create=False)
            rec = FeedRecord.unpack(txn.get(A.public_key, db=feeds))
            txn.put(A.public_key, rec._replace(head_seq=4).pack(), db=feeds)
    finally:
        env.close()
    with Store(path) as s:
        problems = s.verify()
    assert any("entry 4 is missing" in p for p in problems), problems
    assert any("recorded head 4 does not match" in p for p in problems), problems


# -- home timeline ---------------------------------------------------------------------------

ME = identity(20)
FOLLOWED = [identity(21 + i) for i in range(4)]
STRANGER, DROPPED_FRIEND = identity(25), identity(26)


@pytest.fixture(scope="module")
def social(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, list[tuple[bytes, int]]]]:
    """A store with this node's author, four followed feeds, an unfollowed one and a busy
    stranger; returns it with the (author, seq) the home timeline must show."""
    rng = random.Random(20240501)
    store = Store(tmp_path_factory.mktemp("social") / "store")
    store.set_self(ME.public_key)
    expected: list[tuple[bytes, int]] = []
    follows = [(PayloadType.FOLLOW, who) for who in FOLLOWED + [DROPPED_FRIEND]]
    follows.append((PayloadType.UNFOLLOW, DROPPED_FRIEND))
    for kind, who in follows:
        store.append_own(ME, kind, {"id": who.public_key}, 50)
    for ts in sorted(rng.sample(range(50, 400), 5)):
        expected.append(key_of(store.append_own(ME, PayloadType.POST, post(f"mine {ts}"), ts)))
    for n, who in enumerate(FOLLOWED + [DROPPED_FRIEND, STRANGER]):
        shown = who in FOLLOWED
        count = 80 if who is STRANGER else 15
        items = []
        for i, ts in enumerate(sorted(rng.randrange(0, 400) for _ in range(count))):
            kind = rng.choice([PayloadType.POST] * 6 + [PayloadType.BOOST, PayloadType.FAVOURITE])
            body = post(f"{n}/{i}") if kind == PayloadType.POST else {"ref": [ME.public_key, 6]}
            if i == 3:
                kind, body = PayloadType.POST, {"txt": "no text field: unreadable, not shown"}
            items.append((ts, kind, body))
        items.append((400, PayloadType.DELETE, {"target": 2}))
        feed = chain(who, items)
        for e in feed:
            if shown and e.envelope.payload_type in (PayloadType.POST, PayloadType.BOOST) \
                    and e.envelope.seq not in (2, 4):
                expected.append(key_of(e))
        # Interleave delivery across batches so feed numbers and arrival order differ.
        for i in range(0, len(feed), 7):
            store.ingest(feed[i:i + 7], NOW_MS)
    yield store, expected
    store.close()


def _walk(store: Store, sizes: list[int]) -> list[tuple[bytes, int]]:
    seen: list[tuple[bytes, int]] = []
    cursor = None
    for turn in range(10_000):
        limit = sizes[min(turn, len(sizes) - 1)]
        page = store.home_timeline(limit=limit, cursor=cursor)
        assert len(page.items) <= limit
        seen += [key_of(s.entry) for s in page.items]
        if page.next_cursor is None:
            return seen
        assert len(page.items) == limit
        cursor = page.next_cursor
    raise AssertionError("pagination does not end")


def _full(store: Store) -> list[tuple[bytes, int]]:
    page = store.home_timeline(limit=100_000)
    assert page.next_cursor is None
    return [key_of(s.entry) for s in page.items]


def test_home_timeline_shows_own_and_followed_posts_newest_first(social: tuple[Store, list]) -> None:
    store, expected = social
    page = store.home_timeline(limit=100_000)
    got = [key_of(s.entry) for s in page.items]
    assert len(got) == len(set(got))
    assert sorted(got) == sorted(expected)
    stamps = [s.envelope.timestamp_ms for s in page.items]
    assert stamps == sorted(stamps, reverse=True)
    assert all(s.payload is not None for s in page.items)


class _MergeSpy:
    def __init__(self, mp: pytest.MonkeyPatch, budget: int) -> None:
        self.calls = 0
        real = timelines.merge_timeline

        def spy(*args: object) -> list[bytes]:
            self.calls += 1
            return real(*args)

        mp.setattr(timelines, "_HOME_SCAN_BUDGET", budget)
        mp.setattr(timelines, "merge_timeline", spy)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 13), min_size=1, max_size=20))
def test_pages_visit_every_item_once_through_the_scan(social: tuple[Store, list], sizes: list[int]) -> None:
    store, _ = social
    with pytest.MonkeyPatch.context() as mp:
        spy = _MergeSpy(mp, timelines._HOME_SCAN_BUDGET)
        assert _walk(store, sizes) == _full(store)
    assert spy.calls == 0


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(1, 13), min_size=1, max_size=20), st.sampled_from([1, 2, 5]))
def test_pages_visit_every_item_once_through_the_merge(social: tuple[Store, list], sizes: list[int],
                                                       budget: int) -> None:
    store, expected = social
    scanned = _full(store)
    with pytest.MonkeyPatch.context() as mp:
        spy = _MergeSpy(mp, budget)
        merged = _full(store)
        assert spy.calls == 1
        assert _walk(store, sizes) == scanned
    assert merged == scanned


def test_timeline_pages_end_with_no_cursor(social: tuple[Store, list]) -> None:
    store, expected = social
    last = store.home_timeline(limit=len(expected) + 1)
    assert last.next_cursor is None and len(last.items) == len(expected)
    exact = store.home_timeline(limit=len(expected))
    assert store.home_timeline(limit=5, cursor=exact.next_cursor).items == ()


@pytest.mark.parametrize("cursor", ["!!!!", "abc", "é", "AAAA", "A" * 26, "A" * 28, "%%%"])
def test_bad_cursor_raises_value_error(social: tuple[Store, list], cursor: str) -> None:
    store, _ = social
    with pytest.raises(ValueError):
        store.home_timeline(limit=5, cursor=cursor)


def test_home_timeline_without_self_is_empty(store: Store) -> None:
    store.ingest(posts(A, [1, 2]), NOW_MS)
    assert store.home_timeline() == lmdb_store.Page((), None)
