"""Issue 11, point 8: `peers` tells the truth while a live stream is open and about bans, and
a node without gossip topics runs no GossipSub at all."""

from __future__ import annotations

import os
import struct
from pathlib import Path

import pytest
import trio

from daemons import DaemonProcess, wait_until
from murmurate.node.core import sync
from murmurate.node.p2p import HostConfig, P2PRemoteError, open_host

pytestmark = pytest.mark.network  # real libp2p hosts or daemons

GOSSIPSUB = "/meshsub/1.1.0"


def peer_row(node: DaemonProcess, peer_id: str) -> dict:
    return next((p for p in node.call("peers") if p["peer_id"] == peer_id), {})


async def thread(fn, *args):
    return await trio.to_thread.run_sync(fn, *args)


async def offers(peer_id: str, addr: str, protocol: str) -> bool:
    """Whether the node at addr accepts a stream on `protocol` (a fresh peer id asks)."""
    async with open_host(HostConfig(seed=os.urandom(32), pubsub=False, hole_punch=False)) as host:
        await host.dial(addr)
        try:
            stream = await host.open_stream(peer_id, protocol)
        except P2PRemoteError:
            return False
        await stream.reset()
        return True


@pytest.fixture
def made(tmp_path: Path):
    nodes: list[DaemonProcess] = []
    yield lambda name, *args: nodes.append(DaemonProcess(tmp_path, name, extra_args=args).init()) or nodes[-1]
    for node in nodes:
        node.close()


async def test_entries_received_grow_while_the_live_stream_is_open_and_no_gossipsub_without_topics(made) -> None:
    a = await thread(lambda: made("a").start())
    b = await thread(lambda: made("b").start())
    a_peer = a.info["peer_id"]
    await thread(lambda: b.call("follow", id=a.contact()))
    await thread(lambda: wait_until(lambda: b.call("status")["live_streams"] >= 1, what="b's live stream from a"))
    before = (await thread(peer_row, b, a_peer))["entries_received"]
    for i in range(3):
        await thread(lambda i=i: a.call("post", text=f"live {i}"))
    # Counted as they are stored, while the stream stays open (before: only once it ended).
    await thread(lambda: wait_until(lambda: peer_row(b, a_peer)["entries_received"] == before + 3,
                                    what="b's peers row for a to count the live entries"))
    assert (await thread(b.call, "status"))["live_streams"] >= 1
    # Neither daemon runs GossipSub: it is not offered, and no negotiation of it was tried
    # (py-libp2p logs a 7-line error for each peer that lacks it).
    assert not await offers(a_peer, a.addr, GOSSIPSUB)
    assert not any("meshsub" in line for line in a.log_so_far() + b.log_so_far())


async def test_a_banned_peer_shows_why_and_gossip_topics_turn_gossipsub_on(made) -> None:
    a = await thread(lambda: made("a", "--gossip-topics", "1").start())
    a_peer = a.info["peer_id"]
    assert await offers(a_peer, a.addr, GOSSIPSUB)  # the test above can fail: the probe works
    async with open_host(HostConfig(seed=os.urandom(32), pubsub=False, hole_punch=False)) as rogue:
        await rogue.dial(a.addr)
        stream = await rogue.open_stream(a_peer, sync.PROTOCOL)
        await stream.write(struct.pack(">I", sync.MAX_MESSAGE_BYTES + 1))  # a frame over the limit
        row = await thread(lambda: wait_until(lambda: peer_row(a, rogue.peer_id).get("banned"),
                                              what="a to ban the rogue peer") and peer_row(a, rogue.peer_id))
    assert "frame of" in row["ban_reason"] and str(sync.MAX_MESSAGE_BYTES) in row["ban_reason"]
