"""One signature per run, and the audit of the rest (store/verify.py verify_chained,
store/audit.py), on real LMDB.

The threat the audit answers: only the author can sign an entry that commits to a bad
signature before it, so a run checked by its last signature is exactly what the author
wrote; the audit then checks each entry's own signature and freezes a feed whose author
signed a chain holding a bad one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from helpers import NOW_MS, bad_signature, identity, posts
from murmurate.store import Entry, PayloadType, Reason, Store, create_entry, decode_envelope
from murmurate.store.verify import BAD, SIGNED, VOUCHED, verify_chained

A, B = identity(31), identity(32)
TIMES = [NOW_MS - 100_000 + i for i in range(40)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store") as s:
        yield s


def author_signed_badly(entries: list[Entry], index: int) -> list[Entry]:
    """The chain as a broken (or malicious) author would sign it: entry `index` carries a bad
    signature and the author goes on signing entries that commit to it."""
    out = entries[:index]
    broken = bad_signature(entries[index])
    out.append(broken)
    last = broken
    for entry in entries[index + 1:]:
        env = entry.envelope
        fixed = create_entry(A, seq=env.seq, prev=last.envelope.hash, timestamp_ms=env.timestamp_ms,
                             payload_type=env.payload_type, payload={"text": f"after {env.seq}"})
        out.append(fixed)
        last = fixed
    return out


def reasons(report) -> dict[tuple[bytes | None, int | None], Reason]:
    return {(r.author, r.seq): r.reason for r in report.rejected}


def test_a_run_is_checked_by_its_last_signature_and_audited_later(store: Store) -> None:
    feed = posts(A, TIMES[:30])
    report = store.ingest(feed, NOW_MS)
    assert len(report.appended) == 30 and not report.rejected
    assert store.unaudited_count() == 29  # all but the run's last, whose signature was checked
    assert store.audit_all() == []
    assert store.unaudited_count() == 0
    assert not store.feed_info(A.public_key).bad_signature
    assert store.verify() == []


def test_the_audit_works_in_parts_and_a_range_survives_a_partial_check(store: Store) -> None:
    store.ingest(posts(A, TIMES[:30]), NOW_MS)
    first = store.check_unaudited(limit=10)
    assert first.checked == 10 and first.bad == ()
    store.settle_audit(first)
    assert store.unaudited_count() == 19
    assert store.audit_all(batch=7) == [] and store.unaudited_count() == 0


def test_a_bad_signature_the_author_chained_on_is_found_by_the_audit_and_freezes_the_feed(store: Store) -> None:
    feed = author_signed_badly(posts(A, TIMES[:10]), 4)  # seq 5 is signed badly; 6..10 commit to it
    report = store.ingest(feed, NOW_MS)
    assert len(report.appended) == 10  # only seq 10's signature was checked at ingest
    assert store.audit_all() == [(A.public_key, 5)]
    info = store.feed_info(A.public_key)
    assert info.bad_signature and not info.forked
    more = create_entry(A, seq=11, prev=feed[-1].envelope.hash, timestamp_ms=TIMES[11],
                        payload_type=PayloadType.POST, payload={"text": "more"})
    assert reasons(store.ingest([more], NOW_MS)) == {(A.public_key, 11): Reason.FEED_FROZEN}
    assert any("bad signature" in p for p in store.verify())
    assert store.unaudited_count() == 0


def test_a_run_whose_last_signature_fails_is_checked_entry_by_entry(store: Store) -> None:
    feed = posts(A, TIMES[:8])
    feed[-1] = bad_signature(feed[-1])  # tampered in transit: flips a signature bit, hash changes too
    report = store.ingest(feed, NOW_MS)
    assert reasons(report) == {(A.public_key, 8): Reason.BAD_SIGNATURE}
    assert store.head(A.public_key).seq == 7
    assert store.unaudited_count() == 0  # each of 1..7 had its own signature checked


def test_an_entry_changed_in_the_middle_breaks_the_run_and_is_refused(store: Store) -> None:
    feed = posts(A, TIMES[:8])
    feed[3] = bad_signature(feed[3])  # its hash no longer matches seq 5's prev: the run ends at it
    report = store.ingest(feed, NOW_MS)
    assert reasons(report)[(A.public_key, 4)] == Reason.BAD_SIGNATURE
    assert store.head(A.public_key).seq == 3
    # 5..8 were checked by seq 8's signature but cannot follow a refused seq 4: held, each
    # checked on its own since nothing appended vouches for them.
    assert report.held == 4
    assert store.audit_all() == []


def test_held_entries_vouched_for_by_a_later_one_are_checked_on_their_own(store: Store) -> None:
    feed = author_signed_badly(posts(A, TIMES[:10]), 5)  # seq 6 signed badly by the author
    report = store.ingest(feed[3:], NOW_MS)              # 4..10: a gap before them, so all held
    assert reasons(report) == {(A.public_key, 6): Reason.BAD_SIGNATURE}
    assert report.held == 6


def test_runs_of_two_feeds_interleaved_are_told_apart(store: Store) -> None:
    a, b = posts(A, TIMES[:5]), posts(B, TIMES[:5])
    mixed = a[:3] + b[:3] + a[3:] + b[3:]
    verdicts = verify_chained([e.envelope for e in mixed])
    assert verdicts == [VOUCHED, VOUCHED, SIGNED, VOUCHED, VOUCHED, SIGNED, VOUCHED, SIGNED, VOUCHED, SIGNED]
    report = store.ingest(mixed, NOW_MS)
    assert len(report.appended) == 10
    assert store.unaudited_count() == 6 and store.audit_all() == []


@settings(max_examples=40, deadline=None)
@given(bad=st.sets(st.integers(0, 11), max_size=4), cuts=st.sets(st.integers(1, 11), max_size=3))
def test_chained_verdicts_never_call_a_bad_signature_good(bad: set[int], cuts: set[int]) -> None:
    """Whatever entries carry a flipped signature and wherever the list is split into runs:
    an entry is SIGNED only if its signature verifies, VOUCHED only if a later entry of its
    run is SIGNED and commits to it byte for byte, and every bad one is BAD or VOUCHED for by
    nothing that verifies."""
    feed = posts(A, TIMES[:12])
    entries = [bad_signature(e) if i in bad else e for i, e in enumerate(feed)]
    # Cuts drop an entry, so the list is several runs (and gaps) of one feed.
    kept = [e for i, e in enumerate(entries) if i not in cuts]
    verdicts = verify_chained([e.envelope for e in kept])
    for i, (entry, verdict) in enumerate(zip(kept, verdicts)):
        is_bad = entry.envelope.raw != feed[entry.envelope.seq - 1].envelope.raw
        if verdict == SIGNED:
            assert not is_bad
        elif verdict == BAD:
            assert is_bad
        else:
            # Vouched: the next entry in the list is the next seq and commits to this one's
            # exact bytes, and the run ends in a SIGNED entry.
            nxt = kept[i + 1].envelope
            assert nxt.seq == entry.envelope.seq + 1 and nxt.prev == entry.envelope.hash
            assert SIGNED in verdicts[i + 1:]
            assert not is_bad  # a flipped signature changes the hash: nothing honest vouches for it


def test_audit_state_survives_a_reopen(tmp_path: Path) -> None:
    with Store(tmp_path / "s") as s:
        s.ingest(posts(A, TIMES[:12]), NOW_MS)
        assert s.unaudited_count() == 11
    with Store(tmp_path / "s") as s:
        assert s.unaudited_count() == 11
        assert s.audit_all() == [] and s.unaudited_count() == 0


def test_a_decoded_envelope_caches_its_hash() -> None:
    env = posts(A, TIMES[:1])[0].envelope
    again = decode_envelope(env.raw)
    assert env.hash == again.hash and env.hash is env.hash


async def test_the_auditor_waits_for_commits_to_pause_but_not_forever(tmp_path: Path, mock_clock) -> None:
    # Time is trio's MockClock, moved by hand: "no commit for quiet_s" and "max_defer_s in
    # all" are decided on it, while the store's work runs in real threads.
    import time

    import trio
    import trio.testing

    from murmurate.node.auditor import Auditor
    from murmurate.node.writer import StoreWriter

    entries = posts(A, [NOW_MS - 100_000 + i for i in range(60)])
    with Store(tmp_path / "store") as store:
        writer = StoreWriter(store)
        auditor = Auditor(store, writer, batch=1_000, quiet_s=0.3, max_defer_s=2.0)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            await nursery.start(auditor.run)

            async def settle() -> None:
                await trio.testing.wait_all_tasks_blocked()

            async def wait_for_audit(done: Callable[[], bool]) -> None:
                """Wait (in real time, up to 30 s) until `done()`: the audit runs in threads."""
                deadline = time.monotonic() + 30
                while not done():
                    assert time.monotonic() < deadline, "the audit did not run"
                    await trio.to_thread.run_sync(lambda: None)  # let the audit's threads work
                    await settle()

            async def ingest(part: list[Entry]) -> None:
                await writer.ingest(part, NOW_MS)
                await settle()

            # A catch-up: a commit every 0.2 s. The audit keeps waiting.
            for i in range(0, 30, 10):
                await ingest(entries[i:i + 10])
                mock_clock.jump(0.2)
                await settle()
            assert auditor.audited == 0 and store.unaudited_count() > 0
            # A pause of quiet_s: it audits everything.
            mock_clock.jump(0.35)
            await wait_for_audit(lambda: store.unaudited_count() == 0 and auditor.audited > 0)
            # Commits 0.25 s apart, never pausing for quiet_s: no audit for 1.75 s...
            audited = auditor.audited
            for i in range(30, 51, 3):
                await ingest(entries[i:i + 3])
                mock_clock.jump(0.25)
                await settle()
            assert auditor.audited == audited and store.unaudited_count() > 0
            # ...but once max_defer_s (2 s) has passed, it audits (a batch: while commits go
            # on, it then waits for the next pause or max_defer_s again).
            for i in range(51, 60, 3):
                await ingest(entries[i:i + 3])
                mock_clock.jump(0.25)
            await wait_for_audit(lambda: auditor.audited > audited)
            nursery.cancel_scope.cancel()


def test_the_kept_count_of_unaudited_entries_agrees_with_the_table(tmp_path: Path) -> None:
    # unaudited_count is counted once, then kept by ingest and settle_audit: the writer asks
    # it before every batch. After partial audits it must still match a fresh count.
    with Store(tmp_path / "s") as s:
        assert s.unaudited_count() == 0
        s.ingest(posts(A, TIMES[:12]), NOW_MS)
        s.ingest(posts(B, TIMES[:9]), NOW_MS)
        assert s.unaudited_count() == 11 + 8
        s.settle_audit(s.check_unaudited(limit=5))
        assert s.unaudited_count() == 14
        kept = s.unaudited_count()
    with Store(tmp_path / "s") as s:
        assert s.unaudited_count() == kept


def test_ingest_without_deferring_checks_every_signature_and_leaves_nothing_to_audit(store: Store) -> None:
    feed = posts(A, TIMES[:20])
    report = store.ingest(author_signed_badly(feed, 7), NOW_MS, defer_audit=False)
    assert [seq for _, seq in report.appended] == list(range(1, 8))
    assert reasons(report)[(A.public_key, 8)] is Reason.BAD_SIGNATURE
    assert store.unaudited_count() == 0
