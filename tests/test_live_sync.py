"""Live sync streams (docs/protocol.md 12.2, "live"): after a catch-up the stream stays open
and the server pushes what it stores. Real libp2p hosts on 127.0.0.1, real LMDB.

The second test is the relay's scaling scheme: 10,000 hosted feeds travel source -> relay ->
follower over two live streams, with GossipSub topics for at most MAX_GOSSIP_TOPICS of them.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from pathlib import Path

import pytest
import trio

from inprocess import NOW, Node, node
from murmurate.crypto import SigningIdentity
from murmurate.node import replicator as replicator_module
from murmurate.node.core import sync
from murmurate.store import Entry, PayloadType, create_entry

pytestmark = pytest.mark.network  # real libp2p hosts or daemons

DEADLINE = 60
BIG_DEADLINE = 300


async def wait_for(condition: Callable[[], object], what: str, deadline: float = DEADLINE) -> None:
    """Re-check `condition` until it holds; fail after `deadline` seconds."""
    with trio.fail_after(deadline):
        while not condition():
            await trio.sleep(0.02)


async def live_sync(client: Node, server: Node, nursery: trio.Nursery) -> trio.Event:
    """Run a live fetch of everything `client` wants from `server`; the event is set once
    the catch-up part is stored."""
    caught_up = trio.Event()
    wants = client.replicator.wants()
    nursery.start_soon(lambda: client.replicator.fetch(server.host.peer_id, wants, live=True,
                                                       caught_up=lambda _: caught_up.set()))
    return caught_up


async def test_a_live_stream_pushes_new_entries_as_the_server_stores_them(tmp_path: Path) -> None:
    async with node(tmp_path, "a", 1) as a, node(tmp_path, "b", 2) as b:
        for i in range(5):
            await a.writer.append_own(a.identity, PayloadType.POST, {"text": f"old {i}"}, NOW - 1000 + i)
        await b.writer.append_own(b.identity, PayloadType.FOLLOW, {"id": a.identity.public_key}, NOW - 2000)
        await b.host.dial(a.host.addrs()[0])
        async with trio.open_nursery() as nursery:
            caught_up = await live_sync(b, a, nursery)
            with trio.fail_after(DEADLINE):
                await caught_up.wait()
            assert b.store.head(a.identity.public_key).seq == 5
            await wait_for(lambda: a.replicator.live_served == 1, "a to serve the live stream")
            for i in range(3):
                await a.writer.append_own(a.identity, PayloadType.POST, {"text": f"new {i}"}, NOW + i)
            await wait_for(lambda: (b.store.head(a.identity.public_key) or None) and
                           b.store.head(a.identity.public_key).seq == 8, "b to hold a's new posts")
            # (the counter moves just after the commit the head shows: wait for it too)
            await wait_for(lambda: b.replicator.stats["live_in"] >= 3, "b to count what it took live")
            assert b.replicator.stats["live_in"] == 3
            await wait_for(lambda: a.replicator.stats["live_out"] == 3, "a to count what it pushed")
            assert b.replicator.stats["gossip_in"] == 0
            nursery.cancel_scope.cancel()
        # The client left: the server notices and stops serving.
        await wait_for(lambda: a.replicator.live_served == 0, "a to stop serving")
        assert b.store.verify() == []


async def test_a_second_message_on_a_live_stream_cuts_the_client_off(tmp_path: Path) -> None:
    from murmurate.node.core import framing, sync
    async with node(tmp_path, "a", 1) as a, node(tmp_path, "b", 2) as b:
        await a.writer.append_own(a.identity, PayloadType.POST, {"text": "x"}, NOW)
        await b.host.dial(a.host.addrs()[0])
        stream = await b.host.open_stream(a.host.peer_id, sync.PROTOCOL)
        want = sync.Want((sync.FeedWant(a.identity.public_key, 0),), live=True)
        await stream.write(framing.encode(sync.encode(want)))
        await wait_for(lambda: a.replicator.live_served == 1, "the live stream")
        await stream.write(framing.encode(sync.encode(want)))  # not allowed after a live want
        await wait_for(lambda: b.host.peer_id in a.replicator.banned, "a to cut b off")
        assert a.replicator.live_served == 0


def authors(count: int) -> list[SigningIdentity]:
    return [SigningIdentity(hashlib.blake2b(b"live-%d" % i, digest_size=32).digest()) for i in range(count)]


def entry(who: SigningIdentity, seq: int, prev: Entry | None) -> Entry:
    return create_entry(who, seq=seq, prev=prev.envelope.hash if prev else None, timestamp_ms=NOW - 10_000 + seq,
                        payload_type=PayloadType.POST, payload={"text": f"post {seq}"})


@pytest.mark.slow
async def test_ten_thousand_hosted_feeds_travel_source_relay_follower_live(tmp_path: Path) -> None:
    feeds = 10_000
    people = authors(feeds)
    keys = [p.public_key for p in people]
    firsts = [entry(p, 1, None) for p in people]
    topics = replicator_module.MAX_GOSSIP_TOPICS  # as many as may be: the rest must ride the streams
    async with node(tmp_path, "source", 1) as source, \
            node(tmp_path, "relay", 2, wanted=lambda: keys, gossip_topics=topics) as relay, \
            node(tmp_path, "follower", 3, wanted=lambda: keys, gossip_topics=topics) as follower:
        for i in range(0, feeds, 2_000):
            await source.writer.ingest(firsts[i:i + 2_000], NOW)
        # GossipSub topics are capped; everything else rides the live streams.
        assert len(relay.replicator._subscribed) == topics
        assert len(follower.replicator._subscribed) == topics
        await relay.host.dial(source.host.addrs()[0])
        await follower.host.dial(relay.host.addrs()[0])
        async with trio.open_nursery() as nursery:
            # 10,000 feeds of one entry each are 10,000 messages per hop: about 20 s per hop
            # on a loaded 2-core CI machine, so these waits get a long deadline.
            relay_caught_up = await live_sync(relay, source, nursery)
            with trio.fail_after(BIG_DEADLINE):
                await relay_caught_up.wait()
            follower_caught_up = await live_sync(follower, relay, nursery)
            with trio.fail_after(BIG_DEADLINE):
                await follower_caught_up.wait()
            assert follower.store.count_entries() == feeds
            # New entries on 300 feeds that have no topic anywhere reach the follower through
            # the relay, pushed over the two streams.
            quiet = [i for i in range(feeds) if keys[i] not in relay.replicator._subscribed]
            chosen = random.Random(7).sample(quiet, 300)
            await source.writer.ingest([entry(people[i], 2, firsts[i]) for i in chosen], NOW)
            await wait_for(lambda: all((follower.store.head(keys[i]) or None) and follower.store.head(keys[i]).seq == 2
                                       for i in chosen), "the follower to hold the 300 new entries", BIG_DEADLINE)
            # (the counter moves just after the commit the heads show: wait for it too)
            await wait_for(lambda: follower.replicator.stats["live_in"] >= 300, "the follower to count them")
            assert follower.replicator.stats["live_in"] == 300
            await wait_for(lambda: relay.replicator.stats["live_out"] >= 300, "the relay to count what it pushed")
            nursery.cancel_scope.cancel()


async def test_the_node_audits_what_a_catch_up_took_on_one_signature_per_run(tmp_path: Path) -> None:
    from murmurate.node.auditor import Auditor
    async with node(tmp_path, "a", 1) as a, node(tmp_path, "b", 2) as b:
        for i in range(300):
            await a.writer.append_own(a.identity, PayloadType.POST, {"text": f"p {i}"}, NOW - 1000 + i)
        await b.writer.append_own(b.identity, PayloadType.FOLLOW, {"id": a.identity.public_key}, NOW - 2000)
        await b.host.dial(a.host.addrs()[0])
        auditor = Auditor(b.store, b.writer, batch=64)
        async with trio.open_nursery() as nursery:
            await nursery.start(auditor.run)
            assert await b.replicator.fetch(a.host.peer_id, b.replicator.wants()) == 300
            await wait_for(lambda: b.store.unaudited_count() == 0, "the audit")
            # (how many it checked depends on how the catch-up was split into store batches:
            # every batch's run ends were checked at once)
            assert auditor.failed == [] and b.store.verify() == []
            await wait_for(lambda: auditor.audited > 0, "the auditor to count its work")
            nursery.cancel_scope.cancel()


async def test_a_refused_sync_is_tried_again_within_seconds_and_bans_nobody(tmp_path: Path) -> None:
    # The first sync fails (the server refuses it once). The peer is tried again after a
    # second, not after resync_s (here ten minutes), and a refusal is no reason to ban it.
    refusals = []

    def refuse_once(peer_id: str) -> str | None:
        if refusals:
            return None
        refusals.append(peer_id)
        return "not yet"

    async with node(tmp_path, "a", 1, serve_refusal=refuse_once) as a, \
            node(tmp_path, "b", 2, auto_sync=True, resync_s=600) as b:
        await a.writer.append_own(a.identity, PayloadType.POST, {"text": "hello"}, NOW)
        await b.writer.append_own(b.identity, PayloadType.FOLLOW, {"id": a.identity.public_key}, NOW)
        await b.host.dial(a.host.addrs()[0])
        await wait_for(lambda: b.store.head(a.identity.public_key) is not None, "b to hold a's post")
        assert refusals == [b.host.peer_id]
        assert a.host.peer_id not in b.replicator.banned
        assert b.replicator.peers[a.host.peer_id].retry_s == 2.0  # one retry so far


async def test_a_live_flood_leaves_at_most_max_unaudited_entries_for_the_audit(tmp_path: Path) -> None:
    # The issue saw 38,000 entries wait for the audit after a live flood: it waits for
    # commits to pause, and a flood never pauses. Past max_unaudited, ingest checks every
    # signature itself. No auditor runs here, so the backlog only grows: its final size is
    # its peak.
    from murmurate.node.writer import StoreWriter
    bound = 1_000
    flooder = authors(1)[0]
    feed: list[Entry] = []
    for seq in range(1, 6_001):
        feed.append(entry(flooder, seq, feed[-1] if feed else None))
    async with node(tmp_path, "source", 1) as source, \
            node(tmp_path, "sink", 2, wanted=lambda: [flooder.public_key],
                 writer=lambda store: StoreWriter(store, max_unaudited=bound)) as sink:
        await sink.host.dial(source.host.addrs()[0])
        async with trio.open_nursery() as nursery:
            caught_up = await live_sync(sink, source, nursery)
            with trio.fail_after(DEADLINE):
                await caught_up.wait()
            for i in range(0, len(feed), 300):  # the flood: the source stores and pushes 300 at a time
                await source.writer.ingest(feed[i:i + 300], NOW)
            await wait_for(lambda: (sink.store.head(flooder.public_key) or None) and
                           sink.store.head(flooder.public_key).seq == len(feed), "the sink to take the flood")
            nursery.cancel_scope.cancel()
        # One live message (at most MAX_BATCH_ENTRIES) can land on a backlog just under the bound.
        assert sink.store.unaudited_count() < bound + sync.MAX_BATCH_ENTRIES
        assert sink.writer.fully_verified > 0
        assert sink.store.audit_all() == [] and sink.store.verify() == []


async def test_a_catch_up_is_not_throttled_by_the_audit_backlog_bound(tmp_path: Path) -> None:
    # A catch-up ends (it brings what the peer holds), then the audit runs; checking all its
    # signatures at ingest would halve its rate. Only live entries are checked in full.
    from murmurate.node.writer import StoreWriter
    async with node(tmp_path, "source", 1) as source, \
            node(tmp_path, "sink", 2, writer=lambda store: StoreWriter(store, max_unaudited=100)) as sink:
        for i in range(600):
            await source.writer.append_own(source.identity, PayloadType.POST, {"text": f"p {i}"}, NOW - 1000 + i)
        await sink.host.dial(source.host.addrs()[0])
        author = source.identity.public_key
        assert await sink.replicator.fetch(source.host.peer_id, sink.replicator.wants([author])) == 600
        assert sink.writer.fully_verified == 0 and sink.store.unaudited_count() > 100
        assert sink.store.audit_all() == []
