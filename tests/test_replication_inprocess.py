"""Replication between real libp2p hosts on 127.0.0.1 inside one trio run: catch-up,
resuming, gap filling, and hostile peers that are cut off without harming the store."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import trio

from inprocess import NOW, Node, node
from murmurate.crypto import SigningIdentity
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


@pytest.mark.parametrize("attack", [bad_signature, fork, oversized, garbage], ids=lambda f: f.__name__)
async def test_hostile_peer_is_cut_off_and_the_store_is_unharmed(tmp_path: Path, attack) -> None:
    async with node(tmp_path, "b", 2) as b, node(tmp_path, "evil", 66) as evil:
        # b already holds the author's first two entries, from an honest source.
        honest = chain(AUTHOR, 2)
        b.store.ingest([decode_frame(f) for f in honest], NOW)
        follow(b, AUTHOR.public_key)
        before = (b.store.count_entries(), b.store.head(AUTHOR.public_key))
        have = 0 if attack is fork else 2

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
        assert b.store.verify() == [] or attack is fork
        if attack is fork:
            assert b.store.forks() and b.store.forks()[0][2] == decode_frame(honest[0]).envelope.raw
        assert b.store.count_entries() == before[0]
        # Banned: later fetches from it are not even attempted.
        assert await b.replicator.fetch(evil.host.peer_id, b.replicator.wants()) == 0


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


async def test_a_bad_entry_pushed_on_a_live_stream_cuts_the_server_off(tmp_path: Path) -> None:
    """After a live want's done, what the server pushes is checked like a catch-up: a bad
    signature bans the server and stores nothing."""
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
