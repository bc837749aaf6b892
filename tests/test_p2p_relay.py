"""node/p2p.py's circuit relay v2 and connection gate, with real hosts on 127.0.0.1.

A relay host (HostConfig.hop) lets a reserved peer be reached through it; the gate shuts a
peer out of connections, streams and pubsub. (The NAT scenario with namespaces and real
daemons is tests/test_nat.py.) Every wait has a deadline and waits on a condition.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

import pytest
import trio

from murmurate.node.p2p import (CircuitLimits, HostConfig, Message, P2PHost, P2PLocalError, P2PRemoteError, Stream,
                                open_host)

pytestmark = pytest.mark.network  # real libp2p hosts or daemons

ECHO = "/murmurate-test/echo/1"
EXPLAIN = "/murmurate-test/why/1"


def seed(n: int) -> bytes:
    return hashlib.blake2b(b"p2p-relay-test-%d" % n, digest_size=32).digest()


@asynccontextmanager
async def hosts(*configs: HostConfig) -> AsyncIterator[list[P2PHost]]:
    async with AsyncExitStack() as stack:
        yield [await stack.enter_async_context(open_host(c)) for c in configs]


async def echo(stream: Stream) -> None:
    while data := await stream.read():
        await stream.write(data)


async def round_trip(host: P2PHost, peer: str, data: bytes) -> bytes:
    stream = await host.open_stream(peer, ECHO)
    await stream.write(data)
    await stream.close()
    got = b""
    while chunk := await stream.read():
        got += chunk
    return got


async def until(condition, what: str) -> None:
    """Wait (inside the caller's deadline) until condition() is true; libp2p has no event for it."""
    while not condition():
        await trio.sleep(0.01)


async def reserved(host: P2PHost, relay: P2PHost) -> str:
    """Make `host` hold a reservation on `relay`; return its circuit address."""
    await host.dial(relay.addrs()[0])
    host.set_relays(lambda: {relay.peer_id})
    await until(lambda: any("/p2p-circuit/" in a for a in host.addrs()), "a reservation")
    return next(a for a in host.addrs() if "/p2p-circuit/" in a)


# -- circuit relay v2 ----------------------------------------------------------------------

async def test_a_reserved_peer_is_reached_through_the_relay_streams_and_gossip() -> None:
    async with hosts(HostConfig(seed=seed(0), hop=CircuitLimits()), HostConfig(seed=seed(1)),
                     HostConfig(seed=seed(2))) as (relay, a, b):
        a.serve(ECHO, echo)
        with trio.fail_after(15):
            circuit = await reserved(a, relay)
            assert circuit == f"{relay.addrs()[0]}/p2p-circuit/p2p/{a.peer_id}"
            assert relay.statistics()["reservations_granted"] == 1
            # b dials a's circuit address: it is not connected to the relay before.
            assert await b.dial(circuit) == a.peer_id
            assert a.peer_id in b.connected_peers() and b.peer_id in a.connected_peers()
            assert b.is_relayed(a.peer_id) is True and a.is_relayed(b.peer_id) is True
            assert b.is_relayed(relay.peer_id) is False
            assert b.statistics()["relayed_dials"] == 1
            big = bytes(range(256)) * 1000
            assert await round_trip(b, a.peer_id, big) == big
            # GossipSub runs over the circuit too (the relay is not subscribed).
            sub = await b.subscribe("t")
            await a.subscribe("t")
            await a.wait_for_mesh(b.peer_id, "t")
            await a.publish("t", b"over the circuit")
            assert await sub.receive() == Message(a.peer_id, "t", b"over the circuit")


async def test_no_reservation_no_circuit_and_the_relay_policy_decides_who_reserves() -> None:
    async with hosts(HostConfig(seed=seed(0), hop=CircuitLimits()), HostConfig(seed=seed(1)),
                     HostConfig(seed=seed(2)), HostConfig(seed=seed(3))) as (relay, a, b, plain):
        relay.set_reservation_policy(lambda peer: peer == a.peer_id)
        with trio.fail_after(15):
            await b.dial(relay.addrs()[0])
            # a holds no reservation yet: the relay refuses to connect b to it.
            with pytest.raises(P2PRemoteError, match="NO_RESERVATION"):
                await b.dial(f"{relay.addrs()[0]}/p2p-circuit/p2p/{a.peer_id}")
            assert a.peer_id not in b.connected_peers()
            # The policy refuses b's reservation and grants a's.
            with pytest.raises(P2PRemoteError, match="PERMISSION_DENIED"):
                await b._reserve(relay.peer_id)
            # A host without hop does not relay.
            await a.dial(plain.addrs()[0])
            with pytest.raises(P2PRemoteError, match="does not relay"):
                await b.dial(f"{plain.addrs()[0]}/p2p-circuit/p2p/{a.peer_id}")
            circuit = await reserved(a, relay)
            assert await b.dial(circuit) == a.peer_id
            with pytest.raises(P2PLocalError):
                await b.dial(f"{relay.addrs()[0]}/p2p-circuit/p2p/{b.peer_id}")


async def test_the_circuit_address_goes_when_the_relay_connection_does_and_comes_back() -> None:
    async with hosts(HostConfig(seed=seed(0), hop=CircuitLimits()), HostConfig(seed=seed(1))) as (relay, a):
        with trio.fail_after(15):
            circuit = await reserved(a, relay)
            await a.disconnect(relay.peer_id)
            await until(lambda: circuit not in a.addrs(), "the address to go")
            await a.dial(relay.addrs()[0])
            await until(lambda: circuit in a.addrs(), "a new reservation")
            assert relay.statistics()["reservations_granted"] == 2


# -- the gate ------------------------------------------------------------------------------

async def test_a_gated_peer_cannot_connect_either_way_and_the_gate_can_reopen() -> None:
    async with hosts(HostConfig(seed=seed(1)), HostConfig(seed=seed(2))) as (a, b):
        shut = {b.peer_id}
        a.set_gate("test", lambda peer: peer not in shut)
        with trio.fail_after(10):
            with pytest.raises(P2PLocalError, match="gated"):
                await a.dial(b.addrs()[0])
            # b's dial: the handshake completes, then a closes the connection before any stream.
            try:
                await b.dial(a.addrs()[0])
            except P2PRemoteError:
                pass
            await until(lambda: a.statistics()["gated_connections"] >= 1, "a to refuse b")
            await until(lambda: a.peer_id not in b.connected_peers(), "b to see the connection closed")
            assert b.peer_id not in a.connected_peers()
            shut.clear()
            assert await a.dial(b.addrs()[0]) == b.peer_id


async def test_a_peer_gated_while_connected_gets_no_gossip_and_no_streams() -> None:
    """The replicator's case: a peer banned mid-connection hears nothing more, even before
    the owner hangs up; other peers still do."""
    async with hosts(HostConfig(seed=seed(1)), HostConfig(seed=seed(2)), HostConfig(seed=seed(3))) as (a, b, c):
        a.serve(ECHO, echo)
        shut: set[str] = set()
        a.set_gate("ban", lambda peer: peer not in shut)
        with trio.fail_after(15):
            await b.dial(a.addrs()[0])
            await c.dial(a.addrs()[0])
            subs = {h.peer_id: await h.subscribe("t") for h in (b, c)}
            await a.subscribe("t")
            await a.wait_for_mesh(b.peer_id, "t")
            await a.wait_for_mesh(c.peer_id, "t")
            await a.publish("t", b"one")
            for h in (b, c):
                assert (await subs[h.peer_id].receive()).data == b"one"
            shut.add(b.peer_id)
            await a.publish("t", b"two")
            await a.publish("t", b"three")
            assert [(await subs[c.peer_id].receive()).data for _ in range(2)] == [b"two", b"three"]
            await until(lambda: a.statistics()["publish_queued"] == 0 and a.statistics()["gated_rpcs"] >= 2,
                        "a to drop b's copies")
            with pytest.raises(P2PRemoteError):
                await round_trip(b, a.peer_id, b"x")
            with pytest.raises(P2PRemoteError):
                await a.open_stream(b.peer_id, ECHO)
            assert a.statistics()["gated_streams"] >= 1
        # Nothing for b arrived after the gate closed (c got both, in order, after it).
        assert subs[b.peer_id].dropped == 0
        with trio.move_on_after(0):
            got = await subs[b.peer_id].receive()
            pytest.fail(f"b got {got} after it was gated")


async def test_explain_protocols_stay_open_to_a_gated_peer_and_nothing_else() -> None:
    """The relay's case: a blocked user keeps a connection only to hear why."""
    async with hosts(HostConfig(seed=seed(1)), HostConfig(seed=seed(2))) as (relay, user):
        relay.serve(ECHO, echo)

        async def why(stream: Stream) -> None:
            await stream.write(b"you are blocked")

        relay.serve(EXPLAIN, why)
        relay.set_gate("blocked", lambda peer: peer != user.peer_id, explain=(EXPLAIN,))
        await relay.subscribe("t")
        sub = await user.subscribe("t")
        with trio.fail_after(10):
            await user.dial(relay.addrs()[0])
            stream = await user.open_stream(relay.peer_id, EXPLAIN)
            assert await stream.read() == b"you are blocked"
            with pytest.raises(P2PRemoteError):
                await round_trip(user, relay.peer_id, b"x")
            # No hello from the relay: the user never learns the relay's topics, and the
            # relay's publishes do not reach it.
            await relay.publish("t", b"not for you")
            await until(lambda: relay.statistics()["publish_queued"] == 0, "the publish to leave")
            assert relay.peer_id not in user.topic_peers("t")
            assert user.peer_id not in relay.topic_peers("t") or relay.statistics()["gated_rpcs"] >= 0
        with trio.move_on_after(0):
            got = await sub.receive()
            pytest.fail(f"the gated user got {got}")
