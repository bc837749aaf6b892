"""A fault-injecting TCP proxy for network tests: delay without reordering, and cuts.

Every chunk read from one side is released to the other side `delay_s` later, in the
order it was read: one FIFO per direction with release times, so a later chunk never
overtakes an earlier one. Each accepted connection may get a byte budget drawn from the
seeded RNG; when the bytes read (both directions together) reach it, both sockets are
closed with SO_LINGER 0 (a TCP reset to each side) and whatever was in flight is lost,
like a link that dies in the middle of a transfer.

One thread runs a selector loop over every socket. `stop()` wakes it through a socket
pair, joins it, and every socket is closed. As a script (to run inside another network
namespace) it prints "listening HOST:PORT" on stdout, one line per connection and per
cut on stderr, a "stopped:" line with the counters, and stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import errno
import random
import selectors
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

CHUNK = 65536
MAX_QUEUED = 4 * 1024 * 1024  # per direction: stop reading past this (back-pressure, bounded memory)
_RESET = struct.pack("ii", 1, 0)  # SO_LINGER on, 0 s: close() sends RST instead of FIN


@dataclass(frozen=True)
class Faults:
    delay_s: float = 0.1          # one way, added to every chunk in each direction
    cut_probability: float = 0.0  # chance that a connection gets a byte budget at all
    cut_min: int = 1              # the budget is drawn uniformly in [cut_min, cut_max]
    cut_max: int = 100_000


class _Direction:
    """Bytes from `src` to `dst`, held until their release time."""

    def __init__(self, src: socket.socket, dst: socket.socket) -> None:
        self.src = src
        self.dst = dst
        self.queue: deque[tuple[float, bytes | None]] = deque()  # None: src ended its side
        self.queued = 0
        self.reading = True    # src has not ended its side
        self.blocked = False   # dst's send buffer is full: wait until it is writable
        self.finished = False  # the end of src's side was passed on to dst


class _Link:
    def __init__(self, number: int, client: socket.socket, upstream: socket.socket, budget: int | None) -> None:
        self.number = number
        self.client = client
        self.upstream = upstream
        self.budget = budget
        self.read = 0
        self.connecting = True
        self.up = _Direction(client, upstream)
        self.down = _Direction(upstream, client)

    @property
    def directions(self) -> tuple[_Direction, _Direction]:
        return (self.up, self.down)


class FaultProxy:
    """Listens on `listen`, forwards each connection to `target` with `faults` applied.

    `rng` draws the cut budgets (and nothing else), so a seed gives the same budgets in
    the same order of connections. `source`, if given, is the local address the proxy
    dials from. `log` receives one line per connection and per cut.
    """

    def __init__(self, listen: tuple[str, int], target: tuple[str, int], faults: Faults, rng: random.Random, *,
                 source: str | None = None, log: Callable[[str], None] | None = None) -> None:
        self.target = target
        self.faults = faults
        self.rng = rng
        self.source = source
        self.log = log or (lambda line: None)
        self.stats = {"connections": 0, "cuts": 0, "resets": 0, "bytes": 0}
        self._listener = socket.create_server(listen, backlog=64)
        self._listener.setblocking(False)
        self.address: tuple[str, int] = self._listener.getsockname()[:2]  # the real port, if 0 was asked
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self._selector = selectors.DefaultSelector()
        self._registered: dict[socket.socket, int] = {}
        self._links: list[_Link] = []
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="faultproxy", daemon=True)

    def start(self) -> "FaultProxy":
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the loop and close every socket (idempotent)."""
        self._stopping = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass  # already stopped: the pair is closed
        if self._thread.is_alive():
            self._thread.join(timeout)
            if self._thread.is_alive():
                raise RuntimeError(f"fault proxy did not stop within {timeout} s")
        elif not self._thread.ident:  # never started: close here
            self._close_all()

    def __enter__(self) -> "FaultProxy":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the loop --------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping:
                timeout = self._pass_on(time.monotonic())
                self._update_interest()
                for key, mask in self._selector.select(timeout):
                    self._on_ready(key.fileobj, key.data, mask)  # type: ignore[arg-type]
        finally:
            self._close_all()

    def _pass_on(self, now: float) -> float | None:
        """Send every chunk whose time has come; return how long until the next one."""
        timeout: float | None = None
        for link in list(self._links):
            if link.connecting:
                continue  # the client's first bytes wait in the queue until the dial is done
            for d in link.directions:
                if not self._flush(link, d, now):
                    break
            else:
                if link.up.finished and link.down.finished:
                    self.log(f"connection {link.number} closed after {link.read} bytes")
                    self._close(link, reset=False)  # both sides ended cleanly: so does the proxy
                    continue
                for d in link.directions:
                    if d.queue and not d.blocked:
                        wait = max(0.0, d.queue[0][0] - now)
                        timeout = wait if timeout is None else min(timeout, wait)
        return timeout

    def _flush(self, link: _Link, d: _Direction, now: float) -> bool:
        """Pass on released chunks in order. False if the link was closed."""
        while d.queue and not d.blocked and d.queue[0][0] <= now:
            release, data = d.queue[0]
            if data is None:
                d.queue.popleft()
                d.finished = True
                try:
                    d.dst.shutdown(socket.SHUT_WR)  # pass the half-close on, in order
                except OSError:
                    pass
                continue
            try:
                sent = d.dst.send(data)
            except BlockingIOError:
                d.blocked = True
                break
            except OSError as e:
                self._reset(link, f"send failed: {e}")
                return False
            d.queued -= sent
            if sent < len(data):
                d.queue[0] = (release, data[sent:])
                d.blocked = True
            else:
                d.queue.popleft()
        return True

    def _update_interest(self) -> None:
        wanted: dict[socket.socket, tuple[int, object]] = {
            self._listener: (selectors.EVENT_READ, "accept"), self._wake_r: (selectors.EVENT_READ, "wake")}
        for link in self._links:
            for sock in (link.client, link.upstream):
                wanted[sock] = (0, link)
            if link.connecting:
                wanted[link.upstream] = (selectors.EVENT_WRITE, link)
            for d in link.directions:
                if d.reading and d.queued < MAX_QUEUED:
                    wanted[d.src] = (wanted[d.src][0] | selectors.EVENT_READ, link)
                if d.blocked:
                    wanted[d.dst] = (wanted[d.dst][0] | selectors.EVENT_WRITE, link)
        for sock in list(self._registered):
            if sock not in wanted or wanted[sock][0] == 0:
                self._selector.unregister(sock)
                del self._registered[sock]
        for sock, (events, data) in wanted.items():
            if events == 0:
                continue
            if sock not in self._registered:
                self._selector.register(sock, events, data)
            elif self._registered[sock] != events:
                self._selector.modify(sock, events, data)
            self._registered[sock] = events

    def _on_ready(self, sock: socket.socket, data: object, mask: int) -> None:
        if data == "wake":
            try:
                sock.recv(64)
            except BlockingIOError:
                pass
            return
        if data == "accept":
            self._accept()
            return
        link = data
        assert isinstance(link, _Link)
        if link not in self._links:
            return  # closed earlier in this round
        if mask & selectors.EVENT_WRITE:
            if link.connecting and sock is link.upstream:
                err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    self._reset(link, f"dial {self.target} failed: {errno.errorcode.get(err, err)}")
                    return
                link.connecting = False
            for d in link.directions:
                if d.dst is sock:
                    d.blocked = False
        if mask & selectors.EVENT_READ:
            d = link.up if sock is link.client else link.down
            self._receive(link, d)

    def _accept(self) -> None:
        try:
            client, _ = self._listener.accept()
        except BlockingIOError:
            return
        upstream = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        for s in (client, upstream):
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)  # no Nagle wait on top of ours
        self.stats["connections"] += 1
        f = self.faults
        budget = self.rng.randint(f.cut_min, f.cut_max) if self.rng.random() < f.cut_probability else None
        link = _Link(self.stats["connections"], client, upstream, budget)
        self._links.append(link)
        self.log(f"connection {link.number} opened, budget {budget if budget is not None else 'unlimited'}")
        try:
            if self.source is not None:
                upstream.bind((self.source, 0))
            err = upstream.connect_ex(self.target)
        except OSError as e:
            err = e.errno or errno.EIO
        if err not in (0, errno.EINPROGRESS):
            self._reset(link, f"dial {self.target} failed: {errno.errorcode.get(err, err)}")
        elif err == 0:
            link.connecting = False

    def _receive(self, link: _Link, d: _Direction) -> None:
        try:
            data = d.src.recv(CHUNK)
        except BlockingIOError:
            return
        except OSError as e:
            self._reset(link, f"read failed: {e}")  # a reset on one side resets the other
            return
        when = time.monotonic() + self.faults.delay_s
        if not data:
            d.reading = False
            d.queue.append((when, None))
            return
        link.read += len(data)
        self.stats["bytes"] += len(data)
        if link.budget is not None and link.read >= link.budget:
            self.stats["cuts"] += 1
            self.log(f"connection {link.number}: cut after {link.read} bytes")
            self._close(link, reset=True)
            return
        d.queue.append((when, data))
        d.queued += len(data)

    # -- closing ---------------------------------------------------------------------------

    def _reset(self, link: _Link, why: str) -> None:
        self.stats["resets"] += 1
        self.log(f"connection {link.number}: reset ({why})")
        self._close(link, reset=True)

    def _close(self, link: _Link, *, reset: bool) -> None:
        self._links.remove(link)
        for sock in (link.client, link.upstream):
            if sock in self._registered:
                self._selector.unregister(sock)
                del self._registered[sock]
            if reset:
                try:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, _RESET)
                except OSError:
                    pass
            sock.close()

    def _close_all(self) -> None:
        for link in list(self._links):
            self._close(link, reset=True)
        self._selector.close()
        self._registered.clear()
        for sock in (self._listener, self._wake_r, self._wake_w):
            sock.close()


def _host_port(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--listen", type=_host_port, required=True, help="HOST:PORT (port 0: any)")
    p.add_argument("--target", type=_host_port, required=True, help="HOST:PORT to forward to")
    p.add_argument("--source", help="local address to dial the target from")
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--delay", type=float, default=0.1, help="one-way delay in seconds (default 0.1)")
    p.add_argument("--cut-probability", type=float, default=0.0)
    p.add_argument("--cut-min", type=int, default=1)
    p.add_argument("--cut-max", type=int, default=100_000)
    args = p.parse_args(argv)
    # Block the stop signals before the loop thread starts (it inherits the mask), then
    # wait for them here: no handler races with the loop.
    signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGTERM, signal.SIGINT})
    faults = Faults(args.delay, args.cut_probability, args.cut_min, args.cut_max)
    proxy = FaultProxy(args.listen, args.target, faults, random.Random(args.seed), source=args.source,
                       log=lambda line: print(line, file=sys.stderr, flush=True))
    proxy.start()
    host, port = proxy.address
    print(f"listening {host}:{port}", flush=True)
    signal.sigwait({signal.SIGTERM, signal.SIGINT})
    proxy.stop()
    print("stopped: " + " ".join(f"{k}={v}" for k, v in proxy.stats.items()), file=sys.stderr, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
