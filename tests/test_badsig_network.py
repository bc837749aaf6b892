"""A bad signature is not forwarded (issue 11, point 3), between real libp2p hosts.

The attack only the author can make: entry 2 carries a bad signature and the author signs
entry 3 naming hash(2) as prev. A node that ingests 1..3 checks one signature (3's) and
stores 1 and 2 on it, their own signatures waiting for the audit (docs/protocol.md 5.1).
Until the audit has run, such a node must not serve 2 (or anything after it) to a third.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from helpers import signed_over_bad
from inprocess import NOW, Node, node
from murmurate.crypto import SigningIdentity
from murmurate.node.core import framing, sync
from murmurate.node.p2p import Stream
from murmurate.store import PayloadType, encode_frame

pytestmark = pytest.mark.network  # real libp2p hosts or daemons

AUTHOR = SigningIdentity(bytes([91]) * 32)
TIMES = [NOW - 1_000 + i for i in range(10)]


def follow(n: Node, author: bytes) -> None:
    n.store.append_own(n.identity, PayloadType.FOLLOW, {"id": author}, NOW - 200_000)


def send(message: sync.Message) -> bytes:
    return framing.encode(sync.encode(message))


async def serve_once(host, frames: list[bytes]) -> None:
    """The author's own node, serving its badly signed run once."""
    async def handler(stream: Stream) -> None:
        await stream.read(1 << 20)  # the want
        await stream.write(send(sync.Heads(((AUTHOR.public_key, len(frames)),)))
                           + send(sync.Entries(AUTHOR.public_key, tuple(frames))) + send(sync.Done()))
        await stream.close()
    host.serve(sync.PROTOCOL, handler)


async def test_entries_after_an_unaudited_bad_signature_are_not_served_to_a_third_node(tmp_path: Path) -> None:
    frames = [encode_frame(e) for e in signed_over_bad(AUTHOR, TIMES[:3], bad_seq=2)]
    async with node(tmp_path, "author", 91) as author, node(tmp_path, "b", 2) as b, node(tmp_path, "c", 3) as c:
        await serve_once(author.host, frames)
        follow(b, AUTHOR.public_key)
        follow(c, AUTHOR.public_key)
        await b.host.dial(author.host.addrs()[0])
        with trio.fail_after(20):
            assert await b.replicator.fetch(author.host.peer_id, [sync.FeedWant(AUTHOR.public_key, 0)]) == 3
        assert b.store.head(AUTHOR.public_key).seq == 3 and b.store.unaudited_count() == 2  # no audit yet
        await c.host.dial(b.host.addrs()[0])
        with trio.fail_after(20):
            assert await c.replicator.fetch(b.host.peer_id, c.replicator.wants()) == 1
        assert c.store.head(AUTHOR.public_key).seq == 1 and c.store.verify() == []
        assert not c.replicator._is_banned(b.host.peer_id)  # b served nothing bad


async def test_a_live_stream_does_not_push_entries_after_an_unaudited_bad_signature(tmp_path: Path) -> None:
    good = signed_over_bad(AUTHOR, TIMES[:3], bad_seq=2)
    async with node(tmp_path, "author", 91) as author, node(tmp_path, "b", 2) as b, node(tmp_path, "c", 3) as c:
        await serve_once(author.host, [encode_frame(e) for e in good])
        follow(b, AUTHOR.public_key)
        follow(c, AUTHOR.public_key)
        await c.host.dial(b.host.addrs()[0])
        async with trio.open_nursery() as nursery:
            caught_up = trio.Event()
            nursery.start_soon(lambda: c.replicator.fetch(b.host.peer_id, c.replicator.wants(), live=True,
                                                          caught_up=lambda _: caught_up.set()))
            with trio.fail_after(20):
                await caught_up.wait()
            commits = c.writer.listen()
            await b.host.dial(author.host.addrs()[0])
            with trio.fail_after(20):
                assert await b.replicator.fetch(author.host.peer_id, [sync.FeedWant(AUTHOR.public_key, 0)]) == 3
                async for commit in commits:  # c stores what b pushes: entry 1, and no more
                    if any(a == AUTHOR.public_key for a, _ in commit.appended):
                        break
            commits.close()
            # b announced 1..3 in one commit; whatever it pushes for it was sent before the
            # entries c stored, so c's head after that commit is all b will push.
            assert c.store.head(AUTHOR.public_key).seq == 1
            nursery.cancel_scope.cancel()


async def test_the_audit_cuts_the_feed_and_the_writer_announces_the_cut(tmp_path: Path) -> None:
    from murmurate.node.auditor import Auditor

    frames = [encode_frame(e) for e in signed_over_bad(AUTHOR, TIMES[:5], bad_seq=2)]
    async with node(tmp_path, "author", 91) as author, node(tmp_path, "b", 2) as b, node(tmp_path, "c", 3) as c:
        await serve_once(author.host, frames)
        follow(b, AUTHOR.public_key)
        follow(c, AUTHOR.public_key)
        await b.host.dial(author.host.addrs()[0])
        with trio.fail_after(20):
            assert await b.replicator.fetch(author.host.peer_id, [sync.FeedWant(AUTHOR.public_key, 0)]) == 5
        commits = b.writer.listen()
        async with trio.open_nursery() as nursery:
            auditor = Auditor(b.writer.view, b.writer, quiet_s=0.01)
            await nursery.start(auditor.run)
            with trio.fail_after(20):
                async for commit in commits:
                    if commit.cut:
                        break
            assert commit.cut == ((AUTHOR.public_key, 2),) and commit.appended == ()
            nursery.cancel_scope.cancel()
        assert auditor.failed == [(AUTHOR.public_key, 2)]
        assert b.store.head(AUTHOR.public_key).seq == 1 and b.store.cut_at(AUTHOR.public_key) == 2
        assert [s.envelope.seq for s in b.store.entries(AUTHOR.public_key)] == [1]
        await c.host.dial(b.host.addrs()[0])
        with trio.fail_after(20):
            assert await c.replicator.fetch(b.host.peer_id, c.replicator.wants()) == 1
        assert c.store.head(AUTHOR.public_key).seq == 1
