"""Two network namespaces joined by a veth pair, for tests that run as root.

Everything made is recorded with the command that undoes it, and `close()` runs every
undo step (each on its own, newest first, even if an earlier one fails), then checks
that no namespace or veth of ours is left. Only our own namespaces are touched: the
addresses are 10.x on the veth, the rules go into the namespaces' own tables.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from dataclasses import dataclass


def missing_prerequisites() -> list[str]:
    """What stops these tests on this machine (empty if nothing)."""
    problems = []
    if os.geteuid() != 0:
        problems.append(f"they must run as root (euid is {os.geteuid()})")
    for tool in ("ip", "iptables"):
        if shutil.which(tool) is None:
            problems.append(f"`{tool}` is not on PATH (scripts/system-deps.sh installs iproute2 and iptables)")
    return problems


def run(*cmd: str) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}): {proc.stderr.strip()}")
    return proc.stdout


@dataclass(frozen=True)
class Side:
    ns: str      # namespace name
    veth: str    # its end of the veth pair
    addr: str    # its address on the veth (without the prefix length)


class VethLab:
    """Namespaces `a` and `b`, linked by a veth, 10.<x>.<y>.1 and .2 on a /24."""

    def __init__(self, tag: str, subnet: str = "10.213.0") -> None:
        self.a = Side(f"mur{tag}a", f"mv{tag}a", f"{subnet}.1")
        self.b = Side(f"mur{tag}b", f"mv{tag}b", f"{subnet}.2")
        for side in (self.a, self.b):
            assert len(side.veth) <= 15, f"interface name {side.veth!r} is too long for Linux"
        self.subnet = subnet
        self._undo: list[tuple[str, Callable[[], object]]] = []  # (what, how), undone newest first

    def __enter__(self) -> "VethLab":
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _build(self) -> None:
        for side in (self.a, self.b):
            run("ip", "netns", "add", side.ns)
            self._undo.append((f"namespace {side.ns}", lambda ns=side.ns: run("ip", "netns", "delete", ns)))
        run("ip", "link", "add", self.a.veth, "type", "veth", "peer", "name", self.b.veth)
        # Deleting one end deletes the pair, wherever that end is by then.
        self._undo.append((f"veth {self.a.veth}", self._delete_veth))
        for side in (self.a, self.b):
            run("ip", "link", "set", side.veth, "netns", side.ns)
            run("ip", "-n", side.ns, "addr", "add", f"{side.addr}/24", "dev", side.veth)
            run("ip", "-n", side.ns, "link", "set", side.veth, "up")
            run("ip", "-n", side.ns, "link", "set", "lo", "up")

    def add_address(self, side: Side, addr: str) -> None:
        run("ip", "-n", side.ns, "addr", "add", f"{addr}/24", "dev", side.veth)

    def iptables(self, side: Side, chain: str, *rule: str, table: str = "filter") -> None:
        """Append a rule to `chain` of the namespace's `table`; close() deletes it."""
        base = ("ip", "netns", "exec", side.ns, "iptables", "-t", table)
        run(*base, "-A", chain, *rule)
        self._undo.append((f"rule {table} {chain} {' '.join(rule)} in {side.ns}",
                           lambda: run(*base, "-D", chain, *rule)))

    def rules(self, side: Side, table: str = "filter") -> str:
        return run("ip", "netns", "exec", side.ns, "iptables", "-t", table, "-S")

    def _delete_veth(self) -> None:
        for prefix in (("ip", "-n", self.a.ns), ("ip", "-n", self.b.ns), ("ip",)):
            for veth in (self.a.veth, self.b.veth):
                if subprocess.run([*prefix, "link", "delete", veth], capture_output=True, timeout=30).returncode == 0:
                    return
        raise RuntimeError(f"veth {self.a.veth} not found to delete")

    def close(self) -> None:
        errors = []
        while self._undo:
            what, undo = self._undo.pop()
            try:
                undo()
            except Exception as e:  # keep undoing the rest; report every failure at the end
                errors.append(f"{what}: {e}")
        left = self.leftovers()
        if left:
            errors.append(f"left behind: {left}")
        if errors:
            raise RuntimeError("network teardown failed: " + "; ".join(errors))

    def leftovers(self) -> list[str]:
        """Our namespaces and veths that still exist in the root namespace."""
        names = {self.a.ns, self.b.ns, self.a.veth, self.b.veth}
        listed = run("ip", "netns", "list").split() + run("ip", "-o", "link", "show").replace("@", " ").replace(
            ":", " ").split()
        return sorted(names & set(listed))


class NatLab:
    """A relay on a "public" network and two homes, each behind its own masquerading router.

        A (10.<n>.11.2) -- rA (10.<n>.11.1 | 10.<n>.1.2) --\\
                                                         relay (10.<n>.1.1, 10.<n>.2.1)
        B (10.<n>.12.2) -- rB (10.<n>.12.1 | 10.<n>.2.2) --/

    The routers forward and MASQUERADE what leaves on the public side and drop new
    connections coming in from it; the relay has no route to the homes at all. So A and B
    reach the relay, the relay sees only the routers' addresses, and nothing on the public
    side can open a connection to A or B. Undone like VethLab (newest first, each step).

    With `internet=True` the public side is more like the internet, where hole punching
    is possible: the relay forwards between its two links (rA and rB can reach each other),
    and the routers silently drop new connections to their own public address, as home
    routers do. Without it a router's kernel answers such a SYN with a RST (nothing listens
    there), which kills the peer's half of a TCP simultaneous open unless both SYNs cross
    within a few milliseconds (docs/operations.md, Circuit relay).
    """

    def __init__(self, tag: str, net: int = 214, internet: bool = False) -> None:
        self.tag = tag
        self.internet = internet
        self.relay = Side(f"mur{tag}r", f"mv{tag}ra", f"10.{net}.1.1")
        self.router_a = Side(f"mur{tag}ra", f"mv{tag}ar", f"10.{net}.1.2")
        self.router_b = Side(f"mur{tag}rb", f"mv{tag}br", f"10.{net}.2.2")
        self.a = Side(f"mur{tag}a", f"mv{tag}a", f"10.{net}.11.2")
        self.b = Side(f"mur{tag}b", f"mv{tag}b", f"10.{net}.12.2")
        self.relay_b_addr = f"10.{net}.2.1"   # the relay's address on rB's link
        self.net = net
        self._names: set[str] = set()
        self._undo: list[tuple[str, Callable[[], object]]] = []

    def __enter__(self) -> "NatLab":
        try:
            self._build()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _ns(self, name: str) -> None:
        run("ip", "netns", "add", name)
        self._names.add(name)
        self._undo.append((f"namespace {name}", lambda: run("ip", "netns", "delete", name)))
        run("ip", "-n", name, "link", "set", "lo", "up")

    def _link(self, ns1: str, dev1: str, addr1: str, ns2: str, dev2: str, addr2: str) -> None:
        assert len(dev1) <= 15 and len(dev2) <= 15, "interface names are at most 15 characters"
        run("ip", "link", "add", dev1, "type", "veth", "peer", "name", dev2)
        self._names.update({dev1, dev2})
        # Deleting a namespace deletes its veth ends (and so the pairs): nothing more to undo.
        for ns, dev, addr in ((ns1, dev1, addr1), (ns2, dev2, addr2)):
            run("ip", "link", "set", dev, "netns", ns)
            run("ip", "-n", ns, "addr", "add", f"{addr}/24", "dev", dev)
            run("ip", "-n", ns, "link", "set", dev, "up")

    def _build(self) -> None:
        n, t = self.net, self.tag
        for side in (self.relay, self.router_a, self.router_b, self.a, self.b):
            self._ns(side.ns)
        self._link(self.relay.ns, f"mv{t}ra", self.relay.addr, self.router_a.ns, f"mv{t}ar", self.router_a.addr)
        self._link(self.relay.ns, f"mv{t}rb", self.relay_b_addr, self.router_b.ns, f"mv{t}br", self.router_b.addr)
        self._link(self.router_a.ns, f"mv{t}ai", f"10.{n}.11.1", self.a.ns, self.a.veth, self.a.addr)
        self._link(self.router_b.ns, f"mv{t}bi", f"10.{n}.12.1", self.b.ns, self.b.veth, self.b.addr)
        run("ip", "-n", self.a.ns, "route", "add", "default", "via", f"10.{n}.11.1")
        run("ip", "-n", self.b.ns, "route", "add", "default", "via", f"10.{n}.12.1")
        for router, public, relay_addr in ((self.router_a, f"mv{t}ar", self.relay.addr),
                                           (self.router_b, f"mv{t}br", self.relay_b_addr)):
            run("ip", "-n", router.ns, "route", "add", "default", "via", relay_addr)
            run("ip", "netns", "exec", router.ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
            rules = (("nat", "POSTROUTING", "-o", public, "-j", "MASQUERADE"),
                     ("filter", "FORWARD", "-i", public, "-m", "conntrack", "--ctstate", "ESTABLISHED,RELATED",
                      "-j", "ACCEPT"),
                     ("filter", "FORWARD", "-i", public, "-j", "DROP"))
            if self.internet:
                rules += (("filter", "INPUT", "-i", public, "-m", "conntrack", "--ctstate", "NEW", "-j", "DROP"),)
            for table, chain, *rule in rules:
                # The rules live in the router's namespace: deleting it deletes them.
                run("ip", "netns", "exec", router.ns, "iptables", "-t", table, "-A", chain, *rule)

        if self.internet:
            run("ip", "netns", "exec", self.relay.ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")

    def rules(self, side: Side, table: str = "filter") -> str:
        return run("ip", "netns", "exec", side.ns, "iptables", "-t", table, "-S")

    def conntrack_sources(self, side: Side, port: int) -> str:
        """The relay's view: who its TCP port `port` talks to (`ss` in its namespace)."""
        return run("ip", "netns", "exec", side.ns, "ss", "-tn", "state", "established", f"( sport = :{port} )")

    def close(self) -> None:
        errors = []
        while self._undo:
            what, undo = self._undo.pop()
            try:
                undo()
            except Exception as e:
                errors.append(f"{what}: {e}")
        left = self.leftovers()
        if left:
            errors.append(f"left behind: {left}")
        if errors:
            raise RuntimeError("network teardown failed: " + "; ".join(errors))

    def leftovers(self) -> list[str]:
        listed = run("ip", "netns", "list").split() + run("ip", "-o", "link", "show").replace("@", " ").replace(
            ":", " ").split()
        return sorted(self._names & set(listed))
