"""Replication decisions on many nodes: the real engine (node/core/engine.py) in the seeded
simulator (tests/sim/), virtual time, no sockets. Real libp2p and LMDB are covered by the
smaller set in test_replication_inprocess.py, test_live_sync.py and test_network.py."""

from __future__ import annotations

import pytest

from sim.network import FORGER, FORKED_AUTHOR, GARBLER, LIAR, Simulator

MINUTE = 60.0


def settle(sim: Simulator, within: float) -> float:
    """Run until every honest node holds every honest feed; fail if that takes longer than
    `within` virtual seconds. Returns the virtual time it took."""
    start = sim.now
    sim.run(start + within, stop_when=sim.converged, check_every=0.5)
    assert sim.converged(), f"not converged after {within} virtual seconds"
    return sim.now - start


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_nodes_converge_over_a_lossy_network_and_bans_nobody(seed: int) -> None:
    """5% of deliveries cut their stream. Within 20 s, less than resync_s (30 s): a cut sync
    is tried again after 1 s, 2, 4, ..., not only at the next periodic resync."""
    sim = Simulator(40, seed=seed, authors=list(range(8)), loss=0.05)
    for author in range(8):
        sim.post(author, 5)
    settle(sim, 20)
    for author in range(8):  # and what is written later travels live
        sim.post(author, 2)
    settle(sim, 20)
    assert sim.honest_banned_by_honest() == []


def test_a_run_is_repeatable_from_its_seed() -> None:
    def one_run() -> tuple:
        sim = Simulator(30, seed=7, authors=list(range(5)), loss=0.1)
        for author in range(5):
            sim.post(author, 3)
        took = settle(sim, 10 * MINUTE)
        return took, sorted((n.nid, p.peer_id, p.entries_received) for n in sim.nodes for p in n.engine.peers.values())

    assert one_run() == one_run()


def test_a_partition_heals() -> None:
    sim = Simulator(30, seed=4, authors=[0, 1, 15, 16], degree=4)
    left, right = set(range(15)), set(range(15, 30))
    sim.partition(left, right)
    for author in (0, 1, 15, 16):
        sim.post(author, 3)
    sim.run(2 * MINUTE)
    # Each side has its own side's feeds, and nothing of the other side's.
    assert sim.converged([0, 1]) is False and sim.converged([15, 16]) is False
    assert all(sim.nodes[n].store.head(0) == 3 and sim.nodes[n].store.head(15) == 0 for n in left)
    assert all(sim.nodes[n].store.head(15) == 3 and sim.nodes[n].store.head(0) == 0 for n in right)
    sim.heal()
    # Dials back off up to 300 s while the other side is unreachable: within that, all meet.
    settle(sim, 6 * MINUTE)
    assert sim.honest_banned_by_honest() == []


def test_stopped_nodes_catch_up_when_they_start_again() -> None:
    sim = Simulator(30, seed=5, authors=list(range(5)), degree=4)
    for author in range(5):
        sim.post(author, 2)
    settle(sim, 5 * MINUTE)
    stopped = [7, 12, 20, 21]
    for nid in stopped:
        sim.stop(nid)
    for author in range(5):
        sim.post(author, 3)
    sim.run(sim.now + MINUTE)
    assert all(sim.nodes[n].store.head(0) == 2 for n in stopped)
    for nid in stopped:
        sim.start(nid)
    settle(sim, 6 * MINUTE)
    assert sim.honest_banned_by_honest() == []


def test_hostile_peers_are_banned_and_honest_ones_never() -> None:
    hostile = {10: FORGER, 11: FORGER, 12: GARBLER, 13: GARBLER, 14: LIAR}
    sim = Simulator(40, seed=6, authors=list(range(6)), degree=5, kinds=hostile)
    for author in range(6):
        sim.post(author, 4)
    settle(sim, 5 * MINUTE)
    assert sim.honest_banned_by_honest() == []
    banned = {p for n in sim.honest() for p in n.bans}
    met = {int(p) for n in sim.honest() for p in n.engine.peers}
    # Every forger and garbler an honest node met was banned by it; a liar (heads it does
    # not have) harms nothing and is kept.
    for nid, kind in hostile.items():
        if kind in (FORGER, GARBLER) and nid in met:
            assert nid in banned, f"{kind} {nid} not banned"
    assert 14 not in banned
    # No forged entry was stored anywhere honest.
    assert all(e.signed for n in sim.honest() for feed in n.store.feeds.values() for e in feed)


def test_a_forked_author_is_flagged_and_no_relaying_peer_is_banned() -> None:
    """The author shows one history to even-numbered peers and another to odd ones; honest
    nodes relay both. Whoever meets both records the fork and flags the author; nobody bans
    a peer for it, and the other feeds still converge."""
    sim = Simulator(30, seed=8, authors=[0, 1, 2, 3], degree=4, kinds={3: FORKED_AUTHOR})
    for author in (0, 1, 2, 3):
        sim.post(author, 2)
    settle(sim, 5 * MINUTE)  # of honest authors 0-2
    for _ in range(3):  # the author goes on writing both histories, live
        sim.post(3, 1)
        sim.run(sim.now + 10)
    flagged = [n.nid for n in sim.honest() if 3 in n.flagged]
    assert flagged, "no honest node recorded the fork"
    assert all(n.store.forks for n in sim.honest() if n.nid in flagged)
    assert sim.honest_banned_by_honest() == []
    assert not any(3 in n.bans for n in sim.honest())  # the author's own host relays its forks: kept too
    settle(sim, MINUTE)


def test_a_thousand_nodes_converge_in_bounded_virtual_time() -> None:
    sim = Simulator(1_000, seed=9, authors=list(range(10)), degree=3)
    for author in range(10):
        sim.post(author, 3)
    took = settle(sim, 5 * MINUTE)
    assert took <= 30, f"catch-up took {took} virtual seconds"
    for author in range(10):
        sim.post(author, 1)
    took = settle(sim, 5 * MINUTE)
    assert took <= 5, f"live took {took} virtual seconds"
    assert sim.honest_banned_by_honest() == []
