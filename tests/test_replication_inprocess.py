"""Replication between real libp2p hosts on 127.0.0.1 inside one trio run: catch-up,
resuming, gap filling, and hostile peers that are cut off without harming the store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from inprocess import NOW, Node, node
from murmurate.crypto import SigningIdentity, encode_id
from murmurate.node.core import framing, sync
from murmurate.node import replicator
from murmurate.node.p2p import P2PError, P2PHost, Stream
from murmurate.node.replicator import PeerMisbehaved
from murmurate.store import PayloadType, canonical, create_entry, decode_frame, encode_frame

pytestmark = pytest.mark.network  # real libp2p hosts or daemons


def write_posts(n: Node, count: int, start: int = 0) -> None:
    for i in range(start, start + count):
        n.store.append_own(n.identity, PayloadType.POST, {"text": f"post {i}"}, NOW - 100_000 + i)


def follow(n: Node, author: bytes) -> None:
    n.store.append_own(n.identity, PayloadType.FOLLOW, {"id": author}, NOW - 200_000)


async def test_catch_up_fetches_every_missing_entry_in_order(tmp_path: Path) -> None:
    async with node(tmp_path, "a", 1) as a, node(tmp_path, "b", 2) as b:
        write_posts(a, 1_200)  # more than two batches
        follow(b, a.identity.public_key)
        await b.host.dial(a.host.addrs()[0])
        stored = await b.replicator.fetch(a.host.peer_id, b.replicator.wants())
        assert stored == 1_200
        assert b.store.head(a.identity.public_key) == a.store.head(a.identity.public_key)
        assert b.store.verify() == []
        # Nothing new: a second round trip stores nothing and still succeeds.
        assert await b.replicator.fetch(a.host.peer_id, b.replicator.wants()) == 0


@pytest.mark.slow
async def test_a_cut_resumes_from_what_was_stored(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Store batches of at most 500, so the first commit can never hold all 2,000.
    monkeypatch.setattr(replicator, "STORE_BATCH_ENTRIES", 500)
    async with node(tmp_path, "a", 1) as a, node(tmp_path, "b", 2) as b:
        write_posts(a, 2_000)
        follow(b, a.identity.public_key)
        await b.host.dial(a.host.addrs()[0])
        commits = b.writer.listen()
        with trio.move_on_after(30):
            async with trio.open_nursery() as nursery:
                nursery.start_soon(b.replicator.fetch, a.host.peer_id, b.replicator.wants())
                async for _ in commits:  # cut the sync after its first stored batch
                    nursery.cancel_scope.cancel()
                    break
        # A write the cut fetch had handed the writer still commits (the writer is not part of
        # the fetch): wait for the writer to be idle, so `partial` is what is really stored
        # and the second fetch cannot find part of its range stored under it.
        await b.writer.call(lambda store: None)
        partial = b.store.head(a.identity.public_key).seq
        assert 0 < partial < 2_000
        assert await b.replicator.fetch(a.host.peer_id, b.replicator.wants()) == 2_000 - partial
        assert b.store.verify() == [] and b.store.count_entries() == 2_001  # + b's follow


async def test_c_reads_a_through_b(tmp_path: Path) -> None:
    async with node(tmp_path, "a", 1) as a, node(tmp_path, "b", 2) as b:
        write_posts(a, 10)
        follow(b, a.identity.public_key)
        await b.host.dial(a.host.addrs()[0])
        await b.replicator.fetch(a.host.peer_id, b.replicator.wants())
    # a is gone; c only knows b.
    async with node(tmp_path, "b", 2) as b, node(tmp_path, "c", 3) as c:
        follow(c, SigningIdentity(bytes([1]) * 32).public_key)
        await c.host.dial(b.host.addrs()[0])
        assert await c.replicator.fetch(b.host.peer_id, c.replicator.wants()) == 10


# -- hostile servers ---------------------------------------------------------------------------

async def serve_hostile(host: P2PHost, respond: Callable[[Stream], Awaitable[None]]) -> None:
    async def handler(stream: Stream) -> None:
        await stream.read(1 << 20)  # the want
        await respond(stream)
    host.serve(sync.PROTOCOL, handler)


def chain(identity: SigningIdentity, n: int, text: str = "x") -> list[bytes]:
    frames, prev = [], None
    for seq in range(1, n + 1):
        e = create_entry(identity, seq=seq, prev=prev, timestamp_ms=NOW - 1_000 + seq,
                         payload_type=PayloadType.POST, payload={"text": f"{text} {seq}"})
        prev = e.envelope.hash
        frames.append(encode_frame(e))
    return frames


def send(message: sync.Message) -> bytes:
    return framing.encode(sync.encode(message))


AUTHOR = SigningIdentity(bytes([9]) * 32)


def bad_signature() -> list[bytes]:
    frames = chain(AUTHOR, 3)
    third = decode_frame(frames[2])
    envelope = bytearray(third.envelope.raw)
    envelope[-1] ^= 1  # the last byte of the signature
    broken = canonical.pack([bytes(envelope), third.payload])
    return [send(sync.Heads(((AUTHOR.public_key, 3),))),
            send(sync.Entries(AUTHOR.public_key, (broken,))), send(sync.Done())]


def fork() -> list[bytes]:
    other = chain(AUTHOR, 2, text="other")
    return [send(sync.Heads(((AUTHOR.public_key, 2),))), send(sync.Entries(AUTHOR.public_key, tuple(other))),
            send(sync.Done())]


def oversized() -> list[bytes]:
    return [(sync.MAX_MESSAGE_BYTES + 1).to_bytes(4, "big") + b"\x00" * 1000]


def garbage() -> list[bytes]:
    return [b"\x00\x00\x00\x05hello"]


@pytest.mark.parametrize("attack", [bad_signature, oversized, garbage], ids=lambda f: f.__name__)
async def test_hostile_peer_is_cut_off_and_the_store_is_unharmed(tmp_path: Path, attack) -> None:
    async with node(tmp_path, "b", 2) as b, node(tmp_path, "evil", 66) as evil:
        # b already holds the author's first two entries, from an honest source.
        honest = chain(AUTHOR, 2)
        b.store.ingest([decode_frame(f) for f in honest], NOW)
        follow(b, AUTHOR.public_key)
        before = (b.store.count_entries(), b.store.head(AUTHOR.public_key))
        have = 2

        async def respond(stream: Stream) -> None:
            for chunk in attack():
                await stream.write(chunk)
            await stream.close()

        await serve_hostile(evil.host, respond)
        await b.host.dial(evil.host.addrs()[0])
        with pytest.raises(PeerMisbehaved):
            with trio.fail_after(20):
                await b.replicator.fetch(evil.host.peer_id, [sync.FeedWant(AUTHOR.public_key, have)])
        assert b.replicator._is_banned(evil.host.peer_id)
        after_head = b.store.head(AUTHOR.public_key)
        assert after_head == before[1]
        assert b.store.verify() == []
        assert b.store.count_entries() == before[0]
        # Banned: later fetches from it are not even attempted.
        assert await b.replicator.fetch(evil.host.peer_id, b.replicator.wants()) == 0


async def test_a_fork_relayed_by_a_peer_is_recorded_and_the_peer_kept(tmp_path: Path) -> None:
    """Issue 11.2b: the peer shows another history of the author than b holds. Both are
    the author's signatures: b keeps the proof, freezes the feed, flags the author in its
    status, and keeps the peer (it may have seen only that history)."""
    async with node(tmp_path, "b", 2) as b, node(tmp_path, "relay", 66) as relay:
        honest = chain(AUTHOR, 2)
        b.store.ingest([decode_frame(f) for f in honest], NOW)
        follow(b, AUTHOR.public_key)

        async def respond(stream: Stream) -> None:
            for chunk in fork():
                await stream.write(chunk)
            await stream.close()

        await serve_hostile(relay.host, respond)
        await b.host.dial(relay.host.addrs()[0])
        with trio.fail_after(20):
            await b.replicator.fetch(relay.host.peer_id, [sync.FeedWant(AUTHOR.public_key, 0)])
        assert not b.replicator._is_banned(relay.host.peer_id)
        assert b.store.forks() and b.store.forks()[0][2] == decode_frame(honest[0]).envelope.raw
        assert b.store.feed_info(AUTHOR.public_key).forked
        feed = next(f for f in b.replicator.status()["feeds"] if f["id"] == encode_id(AUTHOR.public_key))
        assert feed["frozen"] and "fork" in feed["frozen"]
        assert b.replicator.stats["authors_flagged"] == 1 and b.replicator.stats["peers_cut_off"] == 0


async def test_a_stream_cut_inside_a_frame_is_a_network_failure_not_a_ban(tmp_path: Path) -> None:
    """A connection may drop anywhere: an honest peer whose stream ends mid-frame is not
    banned (bench/relay.py saw this happen to honest sources under load)."""
    async with node(tmp_path, "b", 2) as b, node(tmp_path, "flaky", 67) as flaky:
        follow(b, AUTHOR.public_key)
        whole = send(sync.Entries(AUTHOR.public_key, tuple(chain(AUTHOR, 3))))

        async def respond(stream: Stream) -> None:
            await stream.write(send(sync.Heads(((AUTHOR.public_key, 3),))) + whole[:len(whole) // 2])
            await stream.close()

        await serve_hostile(flaky.host, respond)
        await b.host.dial(flaky.host.addrs()[0])
        with pytest.raises(P2PError):
            with trio.fail_after(20):
                await b.replicator.fetch(flaky.host.peer_id, [sync.FeedWant(AUTHOR.public_key, 0)])
        assert not b.replicator._is_banned(flaky.host.peer_id)
        assert b.store.head(AUTHOR.public_key) is None and b.store.verify() == []


async def test_a_bad_entry_pushed_on_a_live_stream_cuts_the_server_off(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """After a live want's done, what the server pushes is checked like a catch-up: a bad
    signature that no next entry of the author vouches for bans the server and stores nothing."""
    monkeypatch.setattr(replicator, "SUSPECT_WAIT_S", 0.5)
    async with node(tmp_path, "b", 2) as b, node(tmp_path, "evil", 68) as evil:
        follow(b, AUTHOR.public_key)
        honest = chain(AUTHOR, 2)
        third = decode_frame(chain(AUTHOR, 3)[2])
        envelope = bytearray(third.envelope.raw)
        envelope[-1] ^= 1
        broken = canonical.pack([bytes(envelope), third.payload])

        async def respond(stream: Stream) -> None:
            await stream.write(send(sync.Heads(((AUTHOR.public_key, 2),))) +
                               send(sync.Entries(AUTHOR.public_key, tuple(honest))) + send(sync.Done()))
            await stream.write(send(sync.Entries(AUTHOR.public_key, (broken,))))  # "live"
            await stream.read(1)  # hold the stream open until the client hangs up

        await serve_hostile(evil.host, respond)
        await b.host.dial(evil.host.addrs()[0])
        caught_up = trio.Event()
        with pytest.raises(PeerMisbehaved):
            with trio.fail_after(20):
                await b.replicator.fetch(evil.host.peer_id, [sync.FeedWant(AUTHOR.public_key, 0)], live=True,
                                         caught_up=lambda _: caught_up.set())
        assert caught_up.is_set() and b.replicator._is_banned(evil.host.peer_id)
        assert b.store.head(AUTHOR.public_key).seq == 2 and b.store.verify() == []


# -- one author cannot partition honest nodes (issue 11.2) -------------------------------------

def entries_from(identity: SigningIdentity, specs: list[tuple[int, bool]], after=None) -> list:
    """The author's entries with these (timestamp, signature broken) specs, each signed onto
    the one before it exactly as sent (a broken signature included: its author chains on it)."""
    out, prev, seq = [], after.envelope.hash if after else None, after.envelope.seq + 1 if after else 1
    for timestamp, broken in specs:
        e = create_entry(identity, seq=seq, prev=prev, timestamp_ms=timestamp, payload_type=PayloadType.POST,
                         payload={"text": f"entry {seq}"})
        if broken:
            raw = bytearray(e.envelope.raw)
            raw[-1] ^= 1
            e = decode_frame(canonical.pack([bytes(raw), e.payload]))
        out.append(e)
        prev, seq = e.envelope.hash, seq + 1
    return out


def serving(frames_for: Callable[[str], list[bytes]]) -> Callable[[Stream], Awaitable[None]]:
    """A hostile author's sync server: each peer gets the frames `frames_for(peer)` names."""
    async def respond(stream: Stream) -> None:
        frames = frames_for(stream.remote_peer)
        await stream.write(send(sync.Heads(((AUTHOR.public_key, len(frames)),)))
                           + send(sync.Entries(AUTHOR.public_key, tuple(frames))) + send(sync.Done()))
        await stream.close()
    return respond


async def test_an_entry_vouched_for_by_a_refused_one_is_not_relayed(tmp_path: Path) -> None:
    """Issue 11.2a: the author sends h entries 1, 2 (bad signature), 3 (eleven minutes ahead).
    h must not store 2 on 3's word (3 is refused for skew), so v, fetching from h, finds
    nothing wrong with h and keeps it."""
    async with node(tmp_path, "h", 2) as h, node(tmp_path, "v", 3) as v, node(tmp_path, "author", 9) as author:
        sent = entries_from(AUTHOR, [(NOW - 10, False), (NOW - 5, True), (NOW + 11 * 60_000, False)])
        await serve_hostile(author.host, serving(lambda _: [encode_frame(e) for e in sent]))
        follow(h, AUTHOR.public_key)
        follow(v, AUTHOR.public_key)
        await h.host.dial(author.host.addrs()[0])
        with pytest.raises(PeerMisbehaved), trio.fail_after(20):  # the author's host itself sent the bad signature
            await h.replicator.fetch(author.host.peer_id, h.replicator.wants())
        assert h.store.head(AUTHOR.public_key).seq == 1 and h.store.unaudited_count() == 0
        await v.host.dial(h.host.addrs()[0])
        with trio.fail_after(20):
            assert await v.replicator.fetch(h.host.peer_id, v.replicator.wants([AUTHOR.public_key])) == 1
        assert not v.replicator._is_banned(h.host.peer_id) and v.replicator.stats["peers_cut_off"] == 0


async def test_a_bad_signature_the_author_chained_on_is_the_authors_even_across_batches(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """h holds entries 1..600 of which 500 has a bad signature that 501 (validly signed)
    chains onto: the author's doing. h serves 1..500 and 501..600 in two messages and v
    stores batches of 500, so 500 arrives alone at the end of a batch: v waits for the next
    batch, which vouches for it, keeps h, and its audit freezes the feed."""
    monkeypatch.setattr(replicator, "STORE_BATCH_ENTRIES", 500)
    async with node(tmp_path, "h", 2) as h, node(tmp_path, "v", 3) as v:
        specs = [(NOW - 10_000 + i, i == 500) for i in range(1, 601)]
        h.store.ingest(entries_from(AUTHOR, specs), NOW)
        assert h.store.head(AUTHOR.public_key).seq == 600
        follow(v, AUTHOR.public_key)
        await v.host.dial(h.host.addrs()[0])
        with trio.fail_after(30):
            assert await v.replicator.fetch(h.host.peer_id, v.replicator.wants([AUTHOR.public_key])) == 600
        assert not v.replicator._is_banned(h.host.peer_id)
        assert v.store.audit_all() == [(AUTHOR.public_key, 500)]
        assert v.store.feed_info(AUTHOR.public_key).bad_signature


async def test_a_forked_author_cannot_make_honest_nodes_ban_each_other(tmp_path: Path) -> None:
    """Issue 11.2b: a forked author shows v one history (1, 2) and h another (1, 2', 3').
    When v fetches from h it gets 3', signed onto 2' and not onto v's 2: the author signed
    two histories. v keeps the proof, freezes the feed, says so in its status, and keeps h."""
    async with node(tmp_path, "h", 2) as h, node(tmp_path, "v", 3) as v, node(tmp_path, "author", 9) as author:
        first = entries_from(AUTHOR, [(NOW - 10, False)])
        to_v = first + entries_from(AUTHOR, [(NOW - 9, False)], after=first[0])
        to_h = first + entries_from(AUTHOR, [(NOW - 8, False), (NOW - 7, False)], after=first[0])
        await serve_hostile(author.host, serving(
            lambda peer: [encode_frame(e) for e in (to_v if peer == v.host.peer_id else to_h)]))
        for n in (h, v):
            follow(n, AUTHOR.public_key)
            await n.host.dial(author.host.addrs()[0])
            with trio.fail_after(20):
                await n.replicator.fetch(author.host.peer_id, n.replicator.wants([AUTHOR.public_key]))
        assert (v.store.head(AUTHOR.public_key).seq, h.store.head(AUTHOR.public_key).seq) == (2, 3)
        await v.host.dial(h.host.addrs()[0])
        with trio.fail_after(20):
            await v.replicator.fetch(h.host.peer_id, v.replicator.wants([AUTHOR.public_key]))
        assert not v.replicator._is_banned(h.host.peer_id)
        [(who, seq, kept, refused)] = v.store.forks()
        assert (who, seq, kept, refused) == (AUTHOR.public_key, 2, to_v[1].envelope.raw, to_h[2].envelope.raw)
        assert v.store.feed_info(AUTHOR.public_key).forked
        status = v.replicator.status()
        assert [a["id"] for a in status["flagged_authors"]] == [encode_id(AUTHOR.public_key)]
        # h, asked by v in turn, has nothing v lacks and is not harmed either.
        await h.replicator.fetch(v.host.peer_id, h.replicator.wants([AUTHOR.public_key]))
        assert not h.replicator._is_banned(v.host.peer_id)


async def test_a_gap_seen_in_gossip_is_filled_from_the_peer_that_showed_it(tmp_path: Path) -> None:
    """The shell's path for the engine's FetchGap: b holds a's entry 5 beyond a gap (as a
    gossiped entry would arrive), is told where it came from, and fetches 1..4 from a."""
    async with node(tmp_path, "a", 1) as a, node(tmp_path, "b", 2) as b:
        write_posts(a, 5)
        follow(b, a.identity.public_key)
        fifth = a.store.get(a.identity.public_key, 5).entry
        assert b.store.ingest([fifth], NOW).held == 1
        await b.host.dial(a.host.addrs()[0])
        b.replicator._fill_gap(a.host.peer_id, a.identity.public_key)
        # The fill counts what it stored just after the commit that shows it: wait for both.
        with trio.fail_after(20):
            while not (a.host.peer_id in b.replicator.peers
                       and b.replicator.peers[a.host.peer_id].entries_received == 5):  # 1-4 and the held 5
                await trio.sleep(0.02)
        assert b.store.head(a.identity.public_key).seq == 5
        assert b.store.feed_info(a.identity.public_key).held == 0 and b.store.verify() == []


async def test_a_bad_signature_the_audit_finds_shows_in_status(tmp_path: Path) -> None:
    from murmurate.node.auditor import Auditor
    async with node(tmp_path, "v", 3) as v:
        follow(v, AUTHOR.public_key)
        specs = [(NOW - 100 + i, i == 2) for i in range(1, 4)]  # 2 badly signed, 3 signed onto it
        assert len(v.store.ingest(entries_from(AUTHOR, specs), NOW).appended) == 3
        auditor = Auditor(v.store, v.writer, on_bad=v.replicator.feed_frozen)
        await auditor.audit_waiting()
        feed = next(f for f in v.replicator.status()["feeds"] if f["id"] == encode_id(AUTHOR.public_key))
        assert "bad signature (entry 2)" in feed["frozen"] and v.replicator.stats["authors_flagged"] == 1
