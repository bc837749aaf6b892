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
