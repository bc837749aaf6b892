"""Replication over a bad network: loss, delay and cut connections, between real daemons.

The fault proxy (tests/faultproxy.py) is tested first on 127.0.0.1. Then, as root, two
network namespaces joined by a veth pair with 5% packet loss each way; daemon A in one,
daemon B and the proxy in the other; B reaches A only through the proxy (A refuses TCP
from B's own address; the proxy dials from a second address), which delays every chunk
by 100 ms each way and cuts connections after a random number of bytes. B must end up
with exactly A's entries, none missing and none twice.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import socket
import socketserver
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from daemons import DaemonProcess, feed_seqs, wait_until
from faultproxy import FaultProxy, Faults
from netns import VethLab, missing_prerequisites

pytestmark = pytest.mark.network  # real libp2p hosts or daemons

HERE = Path(__file__).resolve().parent
SEED = 28  # fixed: the cut budgets are the same on every run: 37, 113, 37, 120 kB for the
# first four connections (the run moves about 110 kB, so at least the first is cut mid-run)
LOSS = "0.05"
BEFORE, LIVE = 200, 100  # entries A posts before B comes, and while B is connected
DEADLINE = 120.0


# -- the proxy on its own ------------------------------------------------------------------

class _Echo(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True


class _EchoHandler(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        try:
            while data := self.request.recv(65536):
                self.request.sendall(data)
        except OSError:
            return  # the proxy reset us: that is what the cut tests want


@contextmanager
def echo_server() -> Iterator[tuple[str, int]]:
    server = _Echo(("127.0.0.1", 0), _EchoHandler)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.server_address[:2]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@contextmanager
def proxied(faults: Faults, seed: int = 1) -> Iterator[tuple[FaultProxy, socket.socket]]:
    with echo_server() as target, FaultProxy(("127.0.0.1", 0), target, faults, random.Random(seed)) as proxy:
        client = socket.create_connection(proxy.address, timeout=10)
        try:
            yield proxy, client
        finally:
            client.close()


def send_in_background(sock: socket.socket, chunks: list[bytes]) -> threading.Thread:
    def send() -> None:
        try:
            for chunk in chunks:
                sock.sendall(chunk)
            sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass  # cut: the reader sees it
    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def receive_all(sock: socket.socket) -> bytes:
    out = bytearray()
    while data := sock.recv(65536):
        out += data
    return bytes(out)


def test_proxy_passes_bytes_intact_and_in_order() -> None:
    rng = random.Random(5)
    # Many small writes of varied sizes: a reordering or a lost chunk would show.
    chunks = [rng.randbytes(rng.randint(1, 3000)) for _ in range(1500)]
    with proxied(Faults(delay_s=0.1)) as (proxy, client):
        sender = send_in_background(client, chunks)
        echoed = receive_all(client)  # ends when the proxy passes on the echo server's close
        sender.join(10)
    assert echoed == b"".join(chunks)
    assert proxy.stats["cuts"] == 0 and proxy.stats["connections"] == 1


def test_proxy_delays_each_way() -> None:
    with proxied(Faults(delay_s=0.1)) as (_, client):
        for _ in range(3):
            start = time.monotonic()
            client.sendall(b"ping")
            assert client.recv(16) == b"ping"
            elapsed = time.monotonic() - start
            assert 0.2 <= elapsed < 2.0, elapsed


def test_proxy_cuts_with_a_reset_and_stops_cleanly() -> None:
    payload = random.Random(6).randbytes(30_000)
    # The budget counts both directions: the 30 kB go out whole, the cut comes in the echo.
    faults = Faults(delay_s=0.0, cut_probability=1.0, cut_min=45_000, cut_max=45_000)
    lines: list[str] = []
    with echo_server() as target:
        proxy = FaultProxy(("127.0.0.1", 0), target, faults, random.Random(9), log=lines.append).start()
        try:
            client = socket.create_connection(proxy.address, timeout=10)
            # Sent before reading, not alongside: a reset is reported to one call only, and
            # it must be the reader's.
            client.sendall(payload)
            echoed = bytearray()
            with pytest.raises(ConnectionResetError):  # abrupt: a reset, not a clean end
                while data := client.recv(65536):
                    echoed += data
            client.close()
            assert len(echoed) < 15_000 and payload.startswith(echoed)
            assert proxy.stats["cuts"] == 1
            assert any("cut after" in line and "bytes" in line for line in lines)
            # A connection still open when the proxy stops is reset too, and the port closes.
            idle = socket.create_connection(proxy.address, timeout=10)
            wait_until(lambda: proxy.stats["connections"] == 2, 10, "the proxy to accept")
        finally:
            proxy.stop()
    assert not proxy._thread.is_alive()
    with pytest.raises(ConnectionResetError):
        idle.recv(1)
    idle.close()
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(proxy.address, timeout=10)


# -- two daemons across namespaces -----------------------------------------------------------

class ProxyProcess:
    """tests/faultproxy.py as a process inside a namespace."""

    def __init__(self, ns: str, *args: str) -> None:
        self.proc = subprocess.Popen(
            ["ip", "netns", "exec", ns, sys.executable, str(HERE / "faultproxy.py"), *args],
            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.log: list[str] = []
        self._stdout: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, daemon=True).start()
        threading.Thread(target=lambda: [self._stdout.put(line) for line in self.proc.stdout], daemon=True).start()
        try:
            line = self._stdout.get(timeout=10)
        except queue.Empty:
            raise AssertionError(f"the proxy did not start: {self.log}") from None
        assert line.startswith("listening "), line
        host, _, port = line.split()[1].rpartition(":")
        self.host, self.port = host, int(port)

    def _pump(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line.rstrip("\n"))

    def stop(self) -> dict[str, int]:
        """Stop it (SIGTERM) and return its counters."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("the proxy did not stop on SIGTERM") from None
        wait_until(lambda: self.log and self.log[-1].startswith("stopped:"), 5, "the proxy's last line")
        return {k: int(v) for k, v in (kv.split("=") for kv in self.log[-1].split()[1:])}


def own_feed(node: DaemonProcess, author: str) -> dict:
    return next(f for f in node.call("status")["feeds"] if f["id"] == author)


def test_replication_survives_loss_delay_and_cuts(tmp_path: Path) -> None:
    problems = missing_prerequisites()
    if problems:
        pytest.fail("the network-namespace test cannot run: " + "; ".join(problems)
                    + ". It needs root, iproute2 and iptables (CI runs it as root).")
    started = time.monotonic()
    bootstrap = tmp_path / "no_bootstrap.toml"
    bootstrap.write_text("peer = []\n")  # no one else to dial, ever
    daemons: list[DaemonProcess] = []
    proxy: ProxyProcess | None = None
    with ExitStack() as cleanup:
        lab = cleanup.enter_context(VethLab(str(os.getpid())))
        proxy_source = lab.subnet + ".3"
        lab.add_address(lab.b, proxy_source)
        for side in (lab.a, lab.b):  # loss both ways on the veth (this kernel has no netem)
            lab.iptables(side, "INPUT", "-i", side.veth, "-m", "statistic", "--mode", "random",
                         "--probability", LOSS, "-j", "DROP")
        # Nothing of B's reaches A but through the proxy (which dials from its own address):
        # A refuses TCP from B's address, whatever address libp2p picks to dial.
        lab.iptables(lab.a, "INPUT", "-i", lab.a.veth, "-p", "tcp", "-s", lab.b.addr, "-j", "REJECT",
                     "--reject-with", "tcp-reset")

        @cleanup.callback
        def stop_processes() -> None:
            for node in daemons:
                try:
                    node.stop(timeout=15)
                except AssertionError as e:
                    print(e)
                node.close()
            if proxy is not None and proxy.proc.poll() is None:
                proxy.proc.kill()
                proxy.proc.wait()
            for node in daemons:  # shown by pytest when the test fails
                print(f"--- {node.name} log ---", *node.log[-60:], sep="\n")
            if proxy is not None:
                print("--- proxy log ---", *proxy.log[-60:], sep="\n")

        common = ("--resync", "2", "--bootstrap", str(bootstrap))
        a = DaemonProcess(tmp_path, "a", listen=f"/ip4/{lab.a.addr}/tcp/0", netns=lab.a.ns, extra_args=common)
        daemons.append(a)
        a.init().start()
        a_port = int(a.addr.split("/tcp/")[1].split("/")[0])
        for i in range(BEFORE):
            a.call("post", text=f"before {i}")

        proxy = ProxyProcess(lab.b.ns, "--listen", f"{lab.b.addr}:0", "--target", f"{lab.a.addr}:{a_port}",
                             "--source", proxy_source, "--seed", str(SEED), "--delay", "0.1",
                             "--cut-probability", "0.7", "--cut-min", "20000", "--cut-max", "150000")
        # B learns A's real address from identify. P2PHost.dial only dials the address it is
        # given (the proxy), but to be sure no byte bypasses the faults, B's dials to A's real
        # address are sent to the proxy too.
        lab.iptables(lab.b, "OUTPUT", "-p", "tcp", "!", "-s", proxy_source, "-d", lab.a.addr, "--dport",
                     str(a_port), "-j", "DNAT", "--to-destination", f"{proxy.host}:{proxy.port}", table="nat")
        b = DaemonProcess(tmp_path, "b", listen=f"/ip4/{lab.b.addr}/tcp/0", netns=lab.b.ns, extra_args=common)
        daemons.append(b)
        # --peer, not `connect`: B redials the proxy by itself after every cut.
        b.init().start("--peer", f"/ip4/{proxy.host}/tcp/{proxy.port}/p2p/{a.info['peer_id']}")
        b.call("follow", id=a.id)  # the bare id: a contact code would give B A's direct address

        # Live: once B is subscribed to A's feed (as A sees it), A posts more.
        wait_until(lambda: own_feed(a, a.id)["live_peers"] >= 1, 60, "B to join A's feed topic")
        for i in range(LIVE):
            a.call("post", text=f"live {i}")
        total = BEFORE + LIVE

        wait_until(lambda: own_feed(b, a.id)["have"] >= total, max(1.0, DEADLINE - (time.monotonic() - started)),
                   f"B to hold A's {total} entries")
        assert feed_seqs(b, a.id) == list(range(1, total + 1))  # none missing, none twice
        mine = sorted((i["seq"], i["text"]) for i in a.call("log", author=a.id, limit=500))
        theirs = sorted((i["seq"], i["text"]) for i in b.call("log", author=a.id, limit=500))
        assert theirs == mine
        assert b.call("verify")["problems"] == []
        # (the counters move just after the commits the heads show: wait for them too)
        b_stats = wait_until(lambda: (st := b.call("status")["stats"])["synced_entries"] + st["live_in"] >= total
                             and st, what="b's counters")

        proxy_stats = proxy.stop()
        print("proxy:", proxy_stats, "b:", b_stats, f"{time.monotonic() - started:.1f} s")
        # The faults really happened, and replication went on after them: the first connection is
        # cut after 37 kB (SEED), about a third of what the run needs, so B must have connected
        # again. (The last cut may come after everything arrived, so connections may equal cuts.)
        assert proxy_stats["cuts"] >= 1 and proxy_stats["connections"] >= 2, proxy_stats
        # Every entry was stored once, by catch-up or by a live stream (which one depends on
        # where the cuts fall), and no cut made B ban A.
        assert b_stats["synced_entries"] + b_stats["live_in"] == total, b_stats
        assert b_stats["peers_cut_off"] == 0, b_stats
        # Teardown leaves nothing (ExitStack runs it); check the rules were ours to delete.
        assert "statistic" in lab.rules(lab.a) and "DNAT" in lab.rules(lab.b, "nat")
    assert lab.leftovers() == []
