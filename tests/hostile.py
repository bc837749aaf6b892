"""A memory attack on a node's sync server, for tests/test_hostile_memory.py and bench/hostile.py.

Many fresh peer ids (real libp2p hosts in this process, one Ed25519 key each) connect to the
target and open sync streams. Half the streams send a length prefix promising a frame of
PROMISE bytes and then part of it, and never finish it; the other half never send a byte.
Nothing is ever closed from our side: the target must close them. /proc/PID/status of the
target is sampled meanwhile.
"""

from __future__ import annotations

import os
import struct
import threading
from contextlib import AsyncExitStack
from dataclasses import dataclass, field

import trio

from murmurate.node.core import sync
from murmurate.node.p2p import HostConfig, P2PError, open_host

PROMISE = 590_000   # about sync.MAX_MESSAGE_BYTES: the largest frame a sync server accepts


def rss_anon_kb(pid: int) -> int:
    """Private memory (heap, buffers) of a process, in kB."""
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    raise AssertionError(f"no RssAnon in /proc/{pid}/status")


class Sampler:
    """Peak RssAnon of a process, sampled every `interval` s on a thread (no waiting on it)."""

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_kb = rss_anon_kb(pid)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.peak_kb = max(self.peak_kb, rss_anon_kb(self.pid))
            except (OSError, AssertionError):
                return

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak_kb


@dataclass
class AttackReport:
    peers: int = 0                 # peer ids that tried
    connected: int = 0             # of those, connections the target accepted
    streams: int = 0               # streams tried
    opened: int = 0                # streams the target accepted (protocol negotiated)
    partial_bytes: int = 0         # bytes of unfinished frames the target took
    ended: int = 0                 # accepted streams the target closed or reset
    slowest_end_s: float = 0.0     # from opening to the target ending it, the slowest stream
    still_open: int = 0            # accepted streams the target had not ended by the deadline
    errors: list[str] = field(default_factory=list)


async def attack(target_peer: str, target_addr: str, *, peers: int = 40, streams_per_peer: int = 8,
                 partial: int = 500_000, end_deadline_s: float = 40.0,
                 attacking: trio.Event | None = None) -> AttackReport:
    """Run the attack; return once every accepted stream has ended or `end_deadline_s` passed
    (then the attacking hosts close). `attacking` is set once every stream is open and has
    sent what it will send: the caller checks memory and honest service then."""
    report = AttackReport(peers=peers)
    async with AsyncExitStack() as stack:
        hosts = []
        for _ in range(peers):
            config = HostConfig(seed=os.urandom(32), listen=("/ip4/127.0.0.1/tcp/0",), pubsub=False,
                                hole_punch=False)
            hosts.append(await stack.enter_async_context(open_host(config)))

        # A few dials at a time, each with time to spare: forty Noise handshakes at once on a
        # loaded machine outlast the default 5 s, and a dial cut short leaves a connection
        # that the target counts and the attacker has dropped.
        limiter = trio.CapacityLimiter(4)

        async def dial(host) -> None:
            async with limiter:
                try:
                    await host.dial(target_addr, timeout=30)
                except P2PError as e:
                    report.errors.append(f"dial: {e}")

        async with trio.open_nursery() as nursery:
            for host in hosts:
                nursery.start_soon(dial, host)
        report.connected = sum(target_peer in h.connected_peers() for h in hosts)

        streams = []

        async def open_one(host, half_sent: bool) -> None:
            report.streams += 1
            try:
                stream = await host.open_stream(target_peer, sync.PROTOCOL, timeout=20)
            except P2PError as e:
                report.errors.append(f"open: {e}")
                return
            report.opened += 1
            streams.append((stream, trio.current_time()))
            if half_sent:
                try:
                    await stream.write(struct.pack(">I", PROMISE))
                    for offset in range(0, partial, 50_000):
                        await stream.write(b"\x00" * min(50_000, partial - offset))
                        report.partial_bytes += min(50_000, partial - offset)
                except P2PError:
                    pass  # the target reset it: refused, or over budget

        connected = [h for h in hosts if target_peer in h.connected_peers()]
        with trio.move_on_after(60):
            async with trio.open_nursery() as nursery:
                for host in connected:
                    for i in range(streams_per_peer):
                        nursery.start_soon(open_one, host, i % 2 == 0)
        if attacking is not None:
            attacking.set()

        async def wait_end(stream, opened: float) -> None:
            # Never closed by us: the read ends only when the target closes or resets it.
            try:
                while await stream.read():
                    pass
            except P2PError:
                pass
            report.ended += 1
            report.slowest_end_s = max(report.slowest_end_s, trio.current_time() - opened)

        with trio.move_on_after(end_deadline_s):
            async with trio.open_nursery() as nursery:
                for stream, opened in streams:
                    nursery.start_soon(wait_end, stream, opened)
        report.still_open = len(streams) - report.ended
    return report
