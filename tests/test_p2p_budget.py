"""node/p2p.py enforcing the budget (node/core/budget.py) with real hosts on 127.0.0.1, and the
py-libp2p buffers it bounds from our side: Yamux receive windows, multistream-select messages.

Every wait has a deadline and waits on a condition (an event, a read that ends), never a sleep.
"""

from __future__ import annotations

import os
import struct
from contextlib import AsyncExitStack, asynccontextmanager
from collections.abc import AsyncIterator

import pytest
import trio

from murmurate.node.core.budget import Limits
from murmurate.node.p2p import (STREAM_WINDOW, YAMUX_MAX_WINDOW, HostConfig, P2PHost, P2PRemoteError, Stream,
                                open_host)

pytestmark = pytest.mark.network  # real libp2p hosts or daemons

SILENT = "/murmurate-test/silent/1"   # the handler holds the stream and never reads
HOLDER = "/murmurate-test/holder/1"   # the handler charges what it is told to hold


def config(limits: Limits = Limits()) -> HostConfig:
    return HostConfig(seed=os.urandom(32), pubsub=False, hole_punch=False, limits=limits)


@asynccontextmanager
async def pair(server_limits: Limits = Limits()) -> AsyncIterator[tuple[P2PHost, P2PHost, trio.Event]]:
    """A server with SILENT and HOLDER handlers that last until `release` is set, and a client."""
    release = trio.Event()

    async def silent(stream: Stream) -> None:
        await release.wait()

    async def holder(stream: Stream) -> None:
        size = struct.unpack(">I", await stream.read(4))[0]
        await stream.hold(size)
        await stream.write(b"held")
        await release.wait()

    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(open_host(config(server_limits)))
        client = await stack.enter_async_context(open_host(config()))
        server.serve(SILENT, silent)
        server.serve(HOLDER, holder)
        with trio.fail_after(10):
            await client.dial(server.addrs()[0])
        yield server, client, release
        release.set()


async def ends(stream: Stream) -> None:
    """Return once the other side closed or reset the stream (reading whatever comes)."""
    try:
        while await stream.read():
            pass
    except P2PRemoteError:
        pass


async def test_streams_per_peer_are_refused_past_the_limit_and_given_back() -> None:
    async with pair(Limits(streams_per_peer=3)) as (server, client, release):
        with trio.fail_after(20):
            opened = [await client.open_stream(server.peer_id, SILENT) for _ in range(3)]
            with pytest.raises(P2PRemoteError):
                await client.open_stream(server.peer_id, SILENT)
            assert server.statistics()["budget_refused_streams_per_peer"] == 1
            assert server.statistics()["budget_streams"] == 3
            assert server.statistics()["budget_memory"] == 3 * STREAM_WINDOW
            release.set()  # the handlers return: the server closes, the client closes, slots come back
            for stream in opened:
                await ends(stream)
                await stream.close()
            while server.statistics()["budget_streams"]:
                await trio.sleep(0.01)  # polling a counter the server updates, under the deadline
            again = await client.open_stream(server.peer_id, SILENT)
            await again.close()


async def test_what_a_handler_holds_is_charged_and_over_budget_resets_the_stream() -> None:
    limits = Limits(memory_per_peer=STREAM_WINDOW * 2 + 100_000)
    async with pair(limits) as (server, client, _):
        with trio.fail_after(20):
            first = await client.open_stream(server.peer_id, HOLDER)
            await first.write(struct.pack(">I", 90_000))
            assert await first.read() == b"held"
            assert server.statistics()["budget_memory"] == STREAM_WINDOW + 90_000
            second = await client.open_stream(server.peer_id, HOLDER)
            await second.write(struct.pack(">I", 20_000))  # 90,000 + 20,000 > the 100,000 left
            await ends(second)  # reset by the server: BudgetExceededError inside its handler
            assert server.statistics()["budget_refused_memory_per_peer"] == 1
            assert server.statistics()["handler_errors"] == 0  # a refusal is not a bug
            assert server.statistics()["budget_memory"] == STREAM_WINDOW + 90_000


async def test_new_peer_ids_per_ip_are_limited() -> None:
    async with AsyncExitStack() as stack:
        server = await stack.enter_async_context(open_host(config(Limits(new_peers_per_ip=2))))
        server.serve(SILENT, lambda stream: trio.sleep(0))
        clients = [await stack.enter_async_context(open_host(config())) for _ in range(3)]
        with trio.fail_after(20):
            for client in clients[:2]:
                await client.dial(server.addrs()[0])
                await (await client.open_stream(server.peer_id, SILENT)).close()
            try:  # the handshake completes before the server counts the peer; then it hangs up
                await clients[2].dial(server.addrs()[0])
                await clients[2].open_stream(server.peer_id, SILENT)
            except P2PRemoteError:
                pass
            else:
                raise AssertionError("a third new peer id from 127.0.0.1 got a stream")
            assert server.statistics()["budget_refused_new_peers_per_ip"] >= 1
            assert sorted(server.connected_peers()) == sorted(c.peer_id for c in clients[:2])


async def test_a_peer_that_sends_past_the_yamux_window_loses_its_connection() -> None:
    # py-libp2p only logged such a peer and buffered whatever it sent (tested: 3 MiB held).
    async with pair() as (server, client, _):
        with trio.fail_after(20):
            stream = await client.open_stream(server.peer_id, SILENT)
            muxed = stream._s.muxed_stream  # Yamux internals: send DATA frames ignoring the window
            chunk = b"\0" * 60_000
            header = struct.pack(">BBHII", 0, 0, 0, muxed.stream_id, len(chunk))
            try:
                for _ in range(3 * YAMUX_MAX_WINDOW // len(chunk)):
                    await muxed.conn._write_frame(header + chunk)
            except Exception:  # libp2p's own error types: the server hung up under us
                pass
            while server.connected_peers():
                await trio.sleep(0.01)  # polling the server's connection list, under the deadline


async def test_a_huge_protocol_name_is_refused_at_once() -> None:
    # py-libp2p read any length a peer announced while negotiating (30 s to gather it).
    async with pair() as (server, client, _):
        with trio.fail_after(20):
            network = client._host.get_network()
            peer = next(iter(client._host.get_connected_peers()))
            raw = await network.new_stream(peer)  # no protocol negotiated yet
            await raw.write(b"\x80\x80\x80\x05")  # varint length 10 MiB of a protocol id
            await raw.write(b"/" * 100_000)
            with trio.fail_after(5):  # within the negotiation timeout (10 s): refused when announced
                try:
                    while await raw.read(65536):
                        pass
                except Exception:
                    pass  # reset: refused
            while server.statistics()["budget_streams"]:
                await trio.sleep(0.01)  # the slot comes back just after the reset
