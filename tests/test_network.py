"""Real daemons in separate processes on 127.0.0.1, driven through the local API and the CLI."""

from __future__ import annotations

import os
import signal
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemons import DaemonProcess, feed_seqs, wait_until
from murmurate.node.home import Home, socket_path

pytestmark = pytest.mark.network  # real libp2p hosts or daemons


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[dict[str, DaemonProcess]]:
    made: dict[str, DaemonProcess] = {}

    def make(name: str, **kw) -> DaemonProcess:
        made[name] = DaemonProcess(tmp_path, name, **kw).init()
        return made[name]

    made["_make"] = make  # type: ignore[assignment]
    yield made
    for name, node in made.items():
        if name != "_make":
            node.close()


def own_feed(node: DaemonProcess, author: str) -> dict:
    return next(f for f in node.call("status")["feeds"] if f["id"] == author)


@pytest.mark.slow
def test_follower_sees_a_post_live(nodes) -> None:
    a = nodes["_make"]("a").start()
    b = nodes["_make"]("b").start()
    b.call("follow", id=a.contact())
    events = b.subscribe()
    # Live delivery needs b in a's mesh for a's feed: wait for that, as a user's client would show.
    wait_until(lambda: own_feed(a, a.id)["live_peers"] >= 1, what="b subscribed to a's feed")
    a.call("post", text="hello, live")
    while True:
        event = events.next_notification()
        item = event["params"].get("item", {})
        if item.get("author") == a.id:
            break
    assert item["text"] == "hello, live"
    assert [i["text"] for i in b.call("timeline")["items"]] == ["hello, live"]
    events.close()


@pytest.mark.slow
def test_c_reads_a_through_b_while_a_is_offline(nodes) -> None:
    a = nodes["_make"]("a").start()
    b = nodes["_make"]("b").start()
    for i in range(3):
        a.call("post", text=f"before {i}")
    b.call("follow", id=a.contact())
    wait_until(lambda: len(feed_seqs(b, a.id)) == 3, what="b to fetch a's posts")
    a_id = a.id
    a.stop()
    c = nodes["_make"]("c").start()
    c.call("follow", id=a_id)  # a plain id: c has no address for a
    c.call("connect", addr=b.addr)
    wait_until(lambda: feed_seqs(c, a_id) == [1, 2, 3], what="c to fetch a's feed from b")
    assert [i["text"] for i in c.call("timeline")["items"]] == ["before 2", "before 1", "before 0"]


@pytest.mark.slow
def test_restarted_follower_catches_up_with_none_missing(nodes) -> None:
    a = nodes["_make"]("a").start()
    b = nodes["_make"]("b").start()
    b.call("follow", id=a.contact())
    a.call("post", text="first")
    wait_until(lambda: feed_seqs(b, a.id) == [1], what="b to have a's first post")
    b.stop()
    for i in range(100):
        a.call("post", text=f"while b was away {i}")
    b.start()  # b dials a from its peer book and catches up
    wait_until(lambda: own_feed(b, a.id)["have"] == 101, what="b to catch up")
    assert feed_seqs(b, a.id) == list(range(1, 102))  # none missing, none twice
    assert b.call("verify")["problems"] == []


@pytest.mark.slow
def test_a_second_daemon_on_the_same_home_refuses(nodes) -> None:
    a = nodes["_make"]("a").start()
    proc = a.cli("daemon", "--listen", "/ip4/127.0.0.1/tcp/0", check=False)
    assert proc.returncode == 1
    assert "a daemon already runs" in proc.stderr and "Traceback" not in proc.stderr
    assert a.call("ping") == "pong"  # the first one is unharmed


@pytest.mark.slow
def test_stale_socket_is_cleaned_up_and_sigkill_leaves_a_usable_home(nodes) -> None:
    a = nodes["_make"]("a").start()
    a.call("post", text="kept")
    path = socket_path(Home.resolve(str(a.home), {}), a.env)
    a.stop(sig=signal.SIGKILL)
    assert path.exists()  # SIGKILL left the socket file behind
    probe = socket.socket(socket.AF_UNIX)
    with pytest.raises(ConnectionRefusedError):
        probe.connect(str(path))
    probe.close()
    # With no daemon, the CLI works on the store directly.
    assert "kept" in a.cli("log").stdout
    a.start()
    assert [i["text"] for i in a.call("log")] == ["kept"]
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o600)


@pytest.mark.slow
def test_cli_verbs_use_the_running_daemon(nodes) -> None:
    a = nodes["_make"]("a").start()
    b = nodes["_make"]("b").start()
    code = a.cli("contact").stdout.strip()
    assert code.startswith("murc_")
    b.cli("follow", code)
    a.cli("post", "through the CLI, published live")
    wait_until(lambda: feed_seqs(b, a.id) == [1], what="b to get the post")
    status = b.cli("status").stdout
    assert "1 peers connected" in status and "up to date" in status
    assert "connected" in b.cli("peers").stdout


@pytest.mark.slow
def test_sigterm_stops_cleanly(nodes) -> None:
    a = nodes["_make"]("a").start()
    assert a.stop(sig=signal.SIGTERM) == 0
    assert any("stopping" in line for line in a.log)
    assert not any("Traceback" in line for line in a.log)


@pytest.mark.slow
def test_peers_on_the_lan_find_each_other_with_mdns(nodes) -> None:
    a = nodes["_make"]("a", extra_args=("--mdns",)).start()
    b = nodes["_make"]("b", extra_args=("--mdns",)).start()

    def found(node: DaemonProcess, other: DaemonProcess) -> bool:
        return any(p["peer_id"] == other.info["peer_id"] and p["connected"] and p["source"] == "lan"
                   for p in node.call("peers"))

    wait_until(lambda: found(a, b) or found(b, a), what="an mDNS discovery")


@pytest.mark.slow
def test_unreachable_and_malformed_bootstrap_peers_never_block_start(nodes, tmp_path: Path) -> None:
    bootstrap = tmp_path / "bootstrap_peers.toml"
    bootstrap.write_text('''
[[peer]]
name = "gone"
addrs = ["/ip4/127.0.0.1/tcp/9/p2p/12D3KooWRBhwfeP2Y7TCx1SM6s8rQXkE4WuCnFmpA3WpkS3pSzxa"]
[[peer]]
addrs = ["not a multiaddr"]
''')
    a = nodes["_make"]("a", extra_args=("--bootstrap", str(bootstrap))).start()
    assert a.call("ping") == "pong"
    assert any("addrs must be a list of multiaddrs" in line for line in a.log)
    wait_until(lambda: any(p["source"] == "bootstrap" and p["last_error"] for p in a.call("peers")),
               what="the unreachable bootstrap peer to be tried and fail")
    a.call("post", text="still working")
    assert [i["text"] for i in a.call("log")] == ["still working"]
