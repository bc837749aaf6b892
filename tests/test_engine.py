"""The replication engine's rules one by one (node/core/engine.py): events and the time in,
actions out. No network, no clock: every time is an argument."""

from __future__ import annotations

from murmurate.node.core import engine_events as ev
from murmurate.node.core.engine import Engine
from murmurate.store import Reason

A = bytes([1]) * 32


def connected(engine: Engine, peer: str, now: float = 0.0) -> list[ev.Action]:
    engine.handle(ev.PeerConnected(peer), now)
    return engine.handle_timer(now)


def test_a_connected_peer_is_synced_at_once_and_again_every_resync_s() -> None:
    engine = Engine(resync_s=30)
    assert connected(engine, "p") == [ev.StartSync("p")]
    assert engine.handle_timer(1) == []  # one sync at a time
    engine.handle(ev.SyncCaughtUp("p", 5, live=False), 2)
    engine.handle(ev.SyncEnded("p", ev.SyncOutcome.COMPLETED), 2)
    assert engine.next_timer(3) == 32
    assert engine.handle_timer(31) == []
    assert engine.handle_timer(32) == [ev.StartSync("p")]
    assert engine.peers["p"].entries_received == 0  # counted by note_received, not by syncs
    engine.note_received("p", 5)
    assert engine.peers["p"].entries_received == 5


def test_a_failed_sync_is_retried_after_1_2_4_seconds_up_to_resync_s() -> None:
    engine = Engine(resync_s=10)
    now = 0.0
    waits = []
    connected(engine, "p", now)
    for _ in range(6):
        engine.handle(ev.SyncEnded("p", ev.SyncOutcome.FAILED), now)
        due = engine.next_timer(now)
        waits.append(due - now)
        now = due
        assert engine.handle_timer(now) == [ev.StartSync("p")]
    assert waits == [1, 2, 4, 8, 10, 10]
    # A live stream that held for a whole resync_s starts over at 1 s.
    engine.handle(ev.SyncCaughtUp("p", 0, live=True), now)
    assert engine.live_streams() == 1
    now += 10
    engine.handle(ev.SyncEnded("p", ev.SyncOutcome.LIVE_ENDED), now)
    assert engine.live_streams() == 0 and engine.next_timer(now) == now + 1


def test_dials_back_off_from_1_s_doubling_to_300_s_and_a_success_resets_it() -> None:
    engine = Engine()
    engine.handle(ev.PeerAdded("p", ("/ip4/1.2.3.4/tcp/1",), "book"), 0)
    now, waits = 0.0, []
    for _ in range(11):
        assert engine.handle_timer(now) == [ev.Dial("p", ("/ip4/1.2.3.4/tcp/1",))]
        engine.handle(ev.DialFailed("p", "refused"), now)
        due = engine.next_timer(now)
        waits.append(due - now)
        now = due
    assert waits == [1, 2, 4, 8, 16, 32, 64, 128, 256, 300, 300]
    assert engine.peers["p"].last_error == "refused"
    engine.handle(ev.DialSucceeded("p"), now)
    assert engine.peers["p"].backoff == 1 and engine.peers["p"].last_error == ""
    # A connected peer is not dialled; one that goes is dialled again when its wait is over.
    assert connected(engine, "p", now) == [ev.StartSync("p")]
    engine.handle(ev.PeerDisconnected("p"), now)
    engine.handle(ev.SyncEnded("p", ev.SyncOutcome.FAILED), now)
    assert engine.handle_timer(now) == [ev.Dial("p", ("/ip4/1.2.3.4/tcp/1",))]


def test_a_peer_at_fault_is_banned_for_ban_s_and_hung_up_on() -> None:
    engine = Engine(ban_s=600)
    engine.handle(ev.PeerAdded("p", ("/a",), "book"), 0)
    connected(engine, "p", 0)
    actions = engine.handle(ev.PeerMisbehaviour("p", "bad_signature", ev.Fault.PEER), 5)
    assert actions == [ev.Ban("p", 605, "bad_signature"), ev.Disconnect("p")]
    engine.handle(ev.SyncEnded("p", ev.SyncOutcome.MISBEHAVED), 5)
    engine.handle(ev.PeerDisconnected("p"), 5)
    assert engine.is_banned("p", 604) and not engine.is_banned("p", 605)
    assert engine.handle_timer(300) == []  # neither synced nor dialled while banned
    assert engine.next_timer(300) == 605
    assert engine.handle_timer(605) == [ev.Dial("p", ("/a",))]


def test_an_authors_fork_flags_the_author_once_and_keeps_the_peer() -> None:
    engine = Engine()
    connected(engine, "p")
    actions = engine.handle(ev.PeerMisbehaviour("p", "fork", ev.Fault.AUTHOR, A), 1)
    assert actions == [ev.AuthorFlagged(A, "fork", "p")]
    assert engine.handle(ev.PeerMisbehaviour("q", "fork again", ev.Fault.AUTHOR, A), 2) == []
    assert engine.flagged == {A: "fork"} and not engine.banned
    assert engine.handle(ev.PeerMisbehaviour("p", "skew", ev.Fault.NONE), 3) == []


def test_whose_fault_each_refusal_is() -> None:
    assert ev.fault_of(Reason.BAD_SIGNATURE) is ev.Fault.PEER
    assert ev.fault_of(Reason.PAYLOAD_HASH_MISMATCH) is ev.Fault.PEER
    assert ev.fault_of(Reason.FORK) is ev.Fault.AUTHOR
    assert ev.fault_of(Reason.WRONG_PREV) is ev.Fault.AUTHOR
    for reason in (Reason.TIMESTAMP_IN_FUTURE, Reason.FEED_FROZEN, Reason.SEQ_GAP, Reason.TIMESTAMP_BEFORE_PREV):
        assert ev.fault_of(reason) is ev.Fault.NONE
    assert {ev.fault_of(r) for r in Reason} == set(ev.Fault)  # every reason has a rule


def test_a_feed_change_restarts_live_streams_and_resyncs_everyone_at_once() -> None:
    engine = Engine(resync_s=30)
    for peer in ("p", "q"):
        connected(engine, peer)
        engine.handle(ev.SyncCaughtUp(peer, 0, live=True), 1)
    assert engine.handle(ev.FeedsChanged(), 2) == [ev.RestartLive()]
    for peer in ("p", "q"):
        engine.handle(ev.SyncEnded(peer, ev.SyncOutcome.CANCELLED), 2)
    assert engine.handle_timer(2) == [ev.StartSync("p"), ev.StartSync("q")]


def test_a_gap_is_fetched_from_its_peer_first_then_the_others_once_at_a_time() -> None:
    engine = Engine()
    for peer in ("p", "q", "r"):
        connected(engine, peer)
    engine.handle(ev.PeerMisbehaviour("r", "garbage", ev.Fault.PEER), 0)
    assert engine.handle(ev.GapSeen("q", A), 1) == [ev.FetchGap("q", A, ("q", "p"))]
    assert engine.handle(ev.GapSeen("q", A), 1) == []
    engine.handle(ev.GapFillEnded("q", A), 2)
    assert engine.handle(ev.GapSeen("q", A), 3) == [ev.FetchGap("q", A, ("q", "p"))]


def test_remote_heads_keep_the_highest_seen() -> None:
    engine = Engine()
    engine.handle(ev.HeadsSeen(((A, 5),)), 0)
    engine.handle(ev.HeadsSeen(((A, 3),)), 0)
    assert engine.remote_heads == {A: 5}


def test_a_sync_asked_for_by_hand_is_not_started_twice() -> None:
    engine = Engine()
    assert engine.begin_sync("p", 0) and not engine.begin_sync("p", 1)
    assert connected(engine, "p", 1) == []  # the timer does not start a second one
    engine.handle(ev.SyncEnded("p", ev.SyncOutcome.COMPLETED), 2)
    assert engine.begin_sync("p", 3)


def test_the_timer_names_a_time_at_which_the_resync_is_due() -> None:
    """next_timer() and handle_timer() must agree to the last bit: 2.3 + 30 - 2.3 < 30 in
    floating point, and a timer that fires with nothing due fires again at once, forever."""
    engine = Engine(resync_s=30)
    engine.handle(ev.PeerConnected("p"), 2.3)
    engine.begin_sync("p", 2.3)
    engine.handle(ev.SyncCaughtUp("p", 0, live=False), 2.3)
    engine.handle(ev.SyncEnded("p", ev.SyncOutcome.COMPLETED), 2.3)
    due = engine.next_timer(2.3)
    assert engine.handle_timer(due) == [ev.StartSync("p")]


def test_a_feed_the_audit_froze_flags_its_author_and_bans_no_one() -> None:
    engine = Engine()
    assert engine.handle(ev.FeedFrozen(A, "bad signature"), 0) == [ev.AuthorFlagged(A, "bad signature", "")]
    assert engine.handle(ev.FeedFrozen(A, "again"), 1) == [] and engine.flagged == {A: "bad signature"}
    assert not engine.banned
