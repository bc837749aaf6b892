"""A cancelled stream user must never cost the connection its other streams ride on.

Found as a flaky catch-up resume test (one run in fifty under load): a fetch cancelled while
its read sent a Yamux window update spent a Noise nonce without sending the frame, so the
peer failed to decrypt the next frame and closed the whole connection (node/p2p.py
_Yamux._write_frame). Real hosts on 127.0.0.1; waits have deadlines, never sleeps.
"""

from __future__ import annotations

import hashlib

import pytest
import trio
import trio.testing
from libp2p.network.connection.exceptions import RawConnError
from libp2p.peer.id import ID

from murmurate.node.p2p import FRAME_WRITE_TIMEOUT_S, HostConfig, P2PError, Stream, _Yamux, open_host

pytestmark = pytest.mark.network  # real libp2p hosts

FLOOD = "/murmurate-test/flood/1"
ECHO = "/murmurate-test/echo/1"
CUTS = 100  # cancel points tried (each twice); before the fix the connection died within ten


def seed(n: int) -> bytes:
    return hashlib.blake2b(b"p2p-cancel-test-%d" % n, digest_size=32).digest()


async def flood(stream: Stream) -> None:
    """Write until the client goes: its reads keep sending window updates back."""
    try:
        while True:
            await stream.write(b"x" * 10_000)
    except P2PError:
        pass


async def echo(stream: Stream) -> None:
    while data := await stream.read():
        await stream.write(data)


async def test_cancelling_stream_users_at_every_point_keeps_the_connection() -> None:
    async with open_host(HostConfig(seed=seed(1), pubsub=False)) as a, \
            open_host(HostConfig(seed=seed(2), pubsub=False)) as b:
        a.serve(FLOOD, flood)
        a.serve(ECHO, echo)
        await b.dial(a.addrs()[0])
        for cut in range(CUTS):
            stream = await b.open_stream(a.peer_id, FLOOD)

            async def reader() -> None:
                try:
                    while True:
                        await stream.read(4096)  # sends window updates: writes on the connection
                        if cut % 2:
                            await stream.write(b"y" * 100)
                finally:  # what the replicator does when a fetch is cancelled
                    with trio.CancelScope(shield=True), trio.move_on_after(1):
                        await stream.reset()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(reader)
                # Let the reader run `cut % 50` scheduling steps, so the cancel lands at
                # every point of its read and write paths in turn.
                for _ in range(cut % 50):
                    await trio.lowlevel.checkpoint()
                nursery.cancel_scope.cancel()
            assert b.peer_id in a.connected_peers(), f"a dropped the connection after cut {cut}"
            with trio.fail_after(10):
                check = await b.open_stream(a.peer_id, ECHO)
                await check.write(b"still here")
                assert await check.read() == b"still here"
                await check.close()


class _SlowConnection:
    """A secured connection double whose writes take `write_s` each (a congested link)."""

    is_initiator = True

    def __init__(self, write_s: float) -> None:
        self.write_s = write_s
        self.written: list[bytes] = []

    async def write(self, data: bytes) -> None:
        await trio.sleep(self.write_s)
        self.written.append(data)

    async def close(self) -> None:
        pass


def _yamux(conn: _SlowConnection) -> _Yamux:
    return _Yamux(conn, ID(seed(3)))


async def test_a_cancelled_frame_write_still_sends_the_whole_frame(autojump_clock: trio.abc.Clock) -> None:
    conn = _SlowConnection(write_s=1.0)
    yamux = _yamux(conn)
    with trio.move_on_after(0.5) as scope:
        await yamux._write_frame(b"frame")
    assert scope.cancelled_caught  # the caller is cancelled...
    assert conn.written == [b"frame"]  # ...but only after the frame went out whole


async def test_a_frame_that_cannot_be_written_in_time_closes_the_connection(
        autojump_clock: trio.abc.Clock) -> None:
    conn = _SlowConnection(write_s=FRAME_WRITE_TIMEOUT_S + 1)
    yamux = _yamux(conn)
    start = trio.current_time()
    with pytest.raises(RawConnError, match="to write"):
        await yamux._write_frame(b"frame")
    assert trio.current_time() - start == pytest.approx(FRAME_WRITE_TIMEOUT_S)
    assert yamux.event_shutting_down.is_set() and conn.written == []


async def test_an_open_cancelled_behind_a_busy_connection_gives_its_slot_back(
        autojump_clock: trio.abc.Clock) -> None:
    yamux = _yamux(_SlowConnection(write_s=1.0))
    slots = yamux.stream_backlog_semaphore.value
    async with trio.open_nursery() as nursery:
        nursery.start_soon(yamux._write_frame, b"a long frame")  # holds the write lock 1 s
        await trio.testing.wait_all_tasks_blocked()
        for _ in range(300):  # more than the 256 slots a connection has
            with trio.move_on_after(0.001) as scope:
                await yamux.open_stream()  # waits behind that frame to send its SYN
            assert scope.cancelled_caught
    assert yamux.stream_backlog_semaphore.value == slots and yamux.streams == {}
    stream = await yamux.open_stream()  # the connection still opens streams
    assert yamux.streams == {stream.stream_id: stream}
