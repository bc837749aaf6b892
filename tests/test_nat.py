"""Two homes behind NAT, reachable through a relay (circuit relay v2), with real daemons.

As root: network namespaces (tests/netns.py NatLab) with a relay on a "public" network and
nodes A and B each behind its own masquerading router; the relay sees only the routers'
addresses and cannot open a connection to A or B. Everything waits on conditions with
deadlines, never on sleeps.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemons import DaemonProcess, feed_seqs, wait_until
from murmurate.node.core.contact import parse_contact
from netns import NatLab, missing_prerequisites, run

pytestmark = pytest.mark.network  # real libp2p hosts or daemons

DEADLINE = 60.0
RELAY_PORT = 4001


class NatRelay(DaemonProcess):
    """`murmurate relay` in the lab's relay namespace, on every address, announcing the public one."""

    def __init__(self, root: Path, lab: NatLab) -> None:
        super().__init__(root, "relay", netns=lab.relay.ns)
        self.home.mkdir(parents=True)
        self.config = root / "relay.toml"
        self.config.write_text(f'data_dir = "{self.home}"\nlisten = ["/ip4/0.0.0.0/tcp/{RELAY_PORT}"]\n'
                               f'announce = ["/ip4/{lab.relay.addr}/tcp/{RELAY_PORT}"]\nunencrypted_key = true\n'
                               'resync_s = 2\n[metrics]\nlisten = ""\n')

    def command(self, *more: str) -> list[str]:
        cmd = [sys.executable, "-m", "murmurate.ui.cli", "relay", "--config", str(self.config), *more]
        return ["ip", "netns", "exec", self.netns, *cmd]  # type: ignore[list-item]

    def invite(self) -> str:
        return self.cli("relay", "invite", "--config", str(self.config)).stdout.splitlines()[0]


@pytest.fixture
def nat(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[tuple[NatLab, dict]]:
    problems = missing_prerequisites()
    if problems:
        pytest.fail("the NAT test cannot run: " + "; ".join(problems)
                    + ". It needs root, iproute2 and iptables (CI runs it as root).")
    bootstrap = tmp_path / "no_bootstrap.toml"
    bootstrap.write_text("peer = []\n")
    made: list[DaemonProcess] = []
    name = request.node.name
    tag, net = ("n1", 214) if name.startswith("test_posts") else ("n3", 216) if "punch" in name else ("n2", 215)
    with NatLab(tag, net=net, internet="punch" in name) as lab:
        def node(name: str) -> DaemonProcess:
            side = getattr(lab, name)
            made.append(DaemonProcess(tmp_path, name, listen=f"/ip4/{side.addr}/tcp/0", netns=side.ns,
                                      extra_args=("--resync", "2", "--bootstrap", str(bootstrap))).init())
            return made[-1]

        def relay() -> NatRelay:
            made.append(NatRelay(tmp_path, lab))
            return made[-1]  # type: ignore[return-value]

        try:
            yield lab, {"node": node, "relay": relay}
        finally:
            for proc in made:
                try:
                    proc.close()
                finally:
                    print(f"--- {proc.name} log ---", *proc.log[-40:], sep="\n")


def own_feed(node: DaemonProcess, author: str) -> dict:
    return next(f for f in node.call("status")["feeds"] if f["id"] == author)


def tcp_peers(lab: NatLab, ns: str) -> set[str]:
    """Remote IPs of the established TCP connections in namespace `ns`."""
    out = run("ip", "netns", "exec", ns, "ss", "-Htn", "state", "established")
    return {line.split()[-1].rsplit(":", 1)[0] for line in out.splitlines() if line.strip()}


def circuit_addr(node: DaemonProcess) -> str:
    addrs = node.call("whoami")["addrs"]
    return next((a for a in addrs if "/p2p-circuit/" in a), "")


def test_posts_reach_b_through_the_relay_offline_and_live(nat) -> None:
    lab, make = nat
    relay = make["relay"]().start()
    a = make["node"]("a").start()
    b = make["node"]("b").start()
    a.cli("relay", "add", relay.invite())
    b.cli("relay", "add", relay.invite())
    b.call("follow", id=a.id)
    wait_until(lambda: own_feed(b, a.id)["have"] >= 1, DEADLINE, "b to fetch a's profile through the relay")
    # The relay sees the routers, never the homes.
    assert tcp_peers(lab, lab.relay.ns) == {lab.router_a.addr, lab.router_b.addr}
    # A relay cannot open a connection to a node behind NAT: no route, and the router drops it.
    a_port = int(a.addr.split("/tcp/")[1].split("/")[0])
    probe = ("import socket\ns = socket.socket()\ns.settimeout(2)\n"
             f"try:\n    s.connect(('{lab.router_a.addr}', {a_port}))\nexcept OSError as e:\n    print('failed', e)\n"
             "else:\n    print('connected')")
    assert run("ip", "netns", "exec", lab.relay.ns, sys.executable, "-c", probe).startswith("failed")
    # B goes offline; A posts; B comes back and gets them from the relay (A never meets B directly).
    b.stop()
    for i in range(5):
        a.call("post", text=f"while b is away {i}")
    head = own_feed(a, a.id)["have"]
    wait_until(lambda: own_feed(relay, a.id)["have"] == head, DEADLINE, "the relay to hold a's posts")
    b.start()
    wait_until(lambda: own_feed(b, a.id)["have"] == head, DEADLINE, "b to catch up from the relay")
    assert feed_seqs(b, a.id) == list(range(1, head + 1))
    # Live: with both online, a post from A reaches B through the relay's GossipSub mesh.
    events = b.subscribe()
    wait_until(lambda: own_feed(b, a.id)["live_peers"] >= 1, DEADLINE, "b to hear a's topic at the relay")
    wait_until(lambda: own_feed(relay, a.id)["live_peers"] >= 2, DEADLINE, "a and b on a's topic at the relay")
    a.call("post", text="live through the relay")
    wait_until(lambda: _next_post(events, a.id), DEADLINE, "the live post at b")
    events.close()
    # B's only TCP connection is to the relay (at the address it dialled, the public one).
    assert tcp_peers(lab, lab.b.ns) == {lab.relay.addr}


def _next_post(events, author: str) -> bool:
    item = events.next_notification()["params"].get("item", {})
    return item.get("author") == author and item.get("type") == "post" and item.get("text") == "live through the relay"


def test_a_and_b_behind_nat_connect_to_each_other_through_the_relay_circuit(nat) -> None:
    lab, make = nat
    relay = make["relay"]().start()
    a = make["node"]("a").start()
    b = make["node"]("b").start()
    a.cli("relay", "add", relay.invite())
    for i in range(3):
        a.call("post", text=f"a's post {i}")
    # A holds a reservation: its addresses now include its circuit address through the relay.
    circuit = wait_until(lambda: circuit_addr(a), DEADLINE, "a's reservation on the relay")
    assert circuit.startswith(f"/ip4/{lab.relay.addr}/tcp/{RELAY_PORT}/p2p/{relay.info['peer_id']}/p2p-circuit/")
    # B follows A with A's own contact code (`murmurate contact`): A's direct (private,
    # unreachable) address first and the circuit second, so the direct dial fails and B
    # falls back to the relay.
    code = a.call("contact")["code"]
    addrs = parse_contact(code).addrs
    assert circuit in addrs and addrs.index(circuit) == len(addrs) - 1
    assert any("/p2p-circuit" not in x for x in addrs)
    b.call("follow", id=code)
    wait_until(lambda: any(p["peer_id"] == a.info["peer_id"] and p["connected"] for p in b.call("peers")),
               DEADLINE, "b to connect to a")
    wait_until(lambda: own_feed(b, a.id)["have"] == 4, DEADLINE, "b to fetch a's feed")
    # The connection is relayed: neither home has a TCP connection to anything but the relay.
    assert tcp_peers(lab, lab.a.ns) == {lab.relay.addr}
    assert tcp_peers(lab, lab.b.ns) <= {lab.relay.addr, lab.relay_b_addr}
    peer_a = next(p for p in b.call("peers") if p["peer_id"] == a.info["peer_id"])
    assert circuit in peer_a["addrs"]
    # Live over the circuit and the relay alike.
    events = b.subscribe()
    wait_until(lambda: own_feed(b, a.id)["live_peers"] >= 1, DEADLINE, "b on a's topic")
    a.call("post", text="live through the relay")
    wait_until(lambda: _next_post(events, a.id), DEADLINE, "the live post at b")
    events.close()


def test_a_and_b_behind_nat_punch_a_direct_connection_when_the_routers_drop_unsolicited_syns(nat) -> None:
    """DCUtR: B reaches A through the relay circuit, then the two punch a direct TCP
    connection through both NATs (a simultaneous open from their listen ports), and the
    feed keeps flowing over it. The routers can reach each other and drop (not refuse)
    unsolicited connections: NatLab(internet=True)."""
    lab, make = nat
    relay = make["relay"]().start()
    a = make["node"]("a").start()
    b = make["node"]("b").start()
    a.cli("relay", "add", relay.invite())
    b.cli("relay", "add", relay.invite())
    a.call("post", text="before the punch")
    wait_until(lambda: circuit_addr(a), DEADLINE, "a's reservation on the relay")
    b.call("follow", id=a.call("contact")["code"])
    wait_until(lambda: own_feed(b, a.id)["have"] == 2, DEADLINE, "b to fetch a's feed")
    # The direct connection: each home's TCP peer is the other's router (its public
    # address, as the NAT rewrites it), from and to the nodes' own listen ports.
    wait_until(lambda: lab.router_a.addr in tcp_peers(lab, lab.b.ns), DEADLINE, "b's direct connection to a")
    assert lab.router_b.addr in tcp_peers(lab, lab.a.ns)
    a_port, b_port = (int(n.addr.split("/tcp/")[1].split("/")[0]) for n in (a, b))
    direct = run("ip", "netns", "exec", lab.b.ns, "ss", "-Htn", "state", "established",
                 f"( dst {lab.router_a.addr} )").split()
    assert f"{lab.b.addr}:{b_port}" in direct and f"{lab.router_a.addr}:{a_port}" in direct
    # The relay still carries nothing else but its own connections to the two routers.
    assert tcp_peers(lab, lab.relay.ns) == {lab.router_a.addr, lab.router_b.addr}
    # New posts arrive (over the direct connection or, until it is closed, the circuit).
    a.call("post", text="after the punch")
    wait_until(lambda: own_feed(b, a.id)["have"] == 3, DEADLINE, "b to fetch a's post after the punch")
