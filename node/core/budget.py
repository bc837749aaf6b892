"""What remote parties may make this node hold: a resource budget. Pure.

In the manner of go-libp2p's resource manager (p2p/host/resource-manager): every resource
a remote party can make us hold has a limit per peer, per source address and in total,
and is charged before it is granted. The shell (node/p2p.py) asks before it accepts a
connection or a stream and before its buffers grow, and gives back on close; this object
only counts and decides. Time is passed in (`now`, seconds, any monotonic origin).

Resources:
- connections: open, per source IP and in total;
- new peer ids per source IP (and in total) per window: fresh Ed25519 keys cost nothing,
  so without this one address could take every connection and stream slot in turn;
- streams: open (in and out, negotiating or handled), per peer, per IP and in total;
- memory: bytes streams buffer (what Yamux may hold for a stream, what our frame decoders
  hold), per peer, per IP and in total.

Every refusal returns a `Refusal` naming the scope and resource, and is counted in
`refusals` (status and metrics show them). Releasing more than was acquired is our own
bug and raises BudgetError; no sequence of calls leaves a count below zero or above its
limit (tests/test_budget.py checks both with Hypothesis).
"""

from __future__ import annotations

from collections import Counter, deque
from dataclasses import dataclass

__all__ = ["Budget", "BudgetError", "Limits", "Refusal"]


class BudgetError(Exception):
    """Our own misuse of the budget: releasing what was not acquired, a bad limit."""


@dataclass(frozen=True)
class Limits:
    """Defaults fit a personal node (a few dozen peers); a relay raises them (its TOML)."""
    connections: int = 128
    connections_per_ip: int = 32
    new_peers_per_ip: int = 32          # peer ids not seen from that IP within the window
    new_peers: int = 256                # in total per window: bounds the book-keeping too
    new_peer_window_s: float = 60.0
    streams: int = 256
    streams_per_peer: int = 16
    streams_per_ip: int = 128
    memory: int = 32 << 20              # bytes streams may buffer, in total
    memory_per_peer: int = 8 << 20      # an honest sync holds ~1.6 MiB (window + one frame)
    memory_per_ip: int = 16 << 20

    def __post_init__(self) -> None:
        for name, value in vars(self).items():
            if not value > 0:
                raise BudgetError(f"budget limit {name} must be positive, not {value!r}")


@dataclass(frozen=True)
class Refusal:
    scope: str      # "total", "ip" or "peer"
    resource: str   # "connections", "new_peers", "streams" or "memory"
    limit: int

    def __str__(self) -> str:
        where = "in total" if self.scope == "total" else f"per {self.scope}"
        return f"{self.resource} budget exhausted {where} (limit {self.limit})"


class Budget:
    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.connections: Counter[str] = Counter()          # ip -> open connections
        self.streams: dict[str, Counter[str]] = {"peer": Counter(), "ip": Counter()}
        self.memory: dict[str, Counter[str]] = {"peer": Counter(), "ip": Counter()}
        self.totals = {"connections": 0, "streams": 0, "memory": 0}
        # ip -> (when, peer) of the peer ids first seen from it within the window, oldest first
        self._seen: dict[str, deque[tuple[float, str]]] = {}
        self._seen_count = 0
        self.refusals: Counter[str] = Counter()              # "<resource>/<scope>" -> times refused

    # -- connections ---------------------------------------------------------------------

    def open_connection(self, peer: str, ip: str | None, now: float) -> Refusal | None:
        """Admit a connection from `peer` at `ip`, or say why not (nothing is charged then).

        `ip` None is a connection we dialled ourselves: it counts in the total only (the
        limits per address and on new peer ids are for what others start).
        """
        self._forget_before(now - self.limits.new_peer_window_s)
        if self.totals["connections"] >= self.limits.connections:
            return self._refuse("total", "connections", self.limits.connections)
        if ip is not None:
            if self.connections[ip] >= self.limits.connections_per_ip:
                return self._refuse("ip", "connections", self.limits.connections_per_ip)
            seen = self._seen.get(ip)
            if seen is None or all(p != peer for _, p in seen):
                if seen is not None and len(seen) >= self.limits.new_peers_per_ip:
                    return self._refuse("ip", "new_peers", self.limits.new_peers_per_ip)
                if self._seen_count >= self.limits.new_peers:
                    return self._refuse("total", "new_peers", self.limits.new_peers)
                self._seen.setdefault(ip, deque()).append((now, peer))
                self._seen_count += 1
            self.connections[ip] += 1
        self.totals["connections"] += 1
        return None

    def close_connection(self, ip: str | None) -> None:
        if ip is not None:
            if self.connections[ip] <= 0:
                raise BudgetError(f"no open connection from {ip} to close")
            self._drop(self.connections, ip, 1)
        elif self.totals["connections"] - sum(self.connections.values()) <= 0:
            raise BudgetError("no open outgoing connection to close")
        self.totals["connections"] -= 1

    def _forget_before(self, horizon: float) -> None:
        for ip in list(self._seen):
            seen = self._seen[ip]
            while seen and seen[0][0] <= horizon:
                seen.popleft()
                self._seen_count -= 1
            if not seen:
                del self._seen[ip]

    # -- streams and memory --------------------------------------------------------------

    def open_stream(self, peer: str, ip: str, memory: int) -> Refusal | None:
        """Admit one stream that may buffer `memory` bytes at first, or say why not."""
        if memory < 0:
            raise BudgetError(f"a stream cannot buffer {memory} bytes")
        refusal = self._check(self.streams, "streams", peer, ip, 1) or self._check(
            self.memory, "memory", peer, ip, memory)
        if refusal is not None:
            return refusal
        self._add(self.streams, "streams", peer, ip, 1)
        self._add(self.memory, "memory", peer, ip, memory)
        return None

    def close_stream(self, peer: str, ip: str, memory: int) -> None:
        """Give back a stream and the `memory` it holds charged now."""
        if self.streams["peer"][peer] <= 0 or self.streams["ip"][ip] <= 0:
            raise BudgetError(f"no open stream of {peer} at {ip} to close")
        self.release_memory(peer, ip, memory)
        self._add(self.streams, "streams", peer, ip, -1)

    def grow(self, peer: str, ip: str, memory: int) -> Refusal | None:
        """Charge `memory` more bytes to an open stream's peer, or say why not."""
        if memory < 0:
            raise BudgetError(f"cannot grow by {memory} bytes")
        refusal = self._check(self.memory, "memory", peer, ip, memory)
        if refusal is None:
            self._add(self.memory, "memory", peer, ip, memory)
        return refusal

    def release_memory(self, peer: str, ip: str, memory: int) -> None:
        if memory < 0 or memory > self.memory["peer"][peer] or memory > self.memory["ip"][ip]:
            raise BudgetError(f"cannot release {memory} bytes of {peer} at {ip}: not charged")
        self._add(self.memory, "memory", peer, ip, -memory)

    # -- reading -------------------------------------------------------------------------

    def usage(self) -> dict[str, int]:
        """Current totals and refusals so far (for status and metrics)."""
        return {**{f"budget_{k}": v for k, v in self.totals.items()},
                "budget_refusals": sum(self.refusals.values()),
                **{f"budget_refused_{k.replace('/', '_per_')}": v for k, v in sorted(self.refusals.items())}}

    # -- helpers -------------------------------------------------------------------------

    def _check(self, counts: dict[str, Counter[str]], resource: str, peer: str, ip: str,
               amount: int) -> Refusal | None:
        total = getattr(self.limits, resource)
        per_peer = getattr(self.limits, f"{resource}_per_peer")
        per_ip = getattr(self.limits, f"{resource}_per_ip")
        if self.totals[resource] + amount > total:
            return self._refuse("total", resource, total)
        if counts["ip"][ip] + amount > per_ip:
            return self._refuse("ip", resource, per_ip)
        if counts["peer"][peer] + amount > per_peer:
            return self._refuse("peer", resource, per_peer)
        return None

    def _add(self, counts: dict[str, Counter[str]], resource: str, peer: str, ip: str, amount: int) -> None:
        if not amount:
            return
        for scope, key in (("peer", peer), ("ip", ip)):
            if amount > 0:
                counts[scope][key] += amount
            else:
                self._drop(counts[scope], key, -amount)
        self.totals[resource] += amount

    @staticmethod
    def _drop(counter: Counter[str], key: str, amount: int) -> None:
        # Keys at zero are deleted: a counter of every peer ever seen would itself grow.
        left = counter[key] - amount
        if left:
            counter[key] = left
        else:
            del counter[key]

    def _refuse(self, scope: str, resource: str, limit: int) -> Refusal:
        self.refusals[f"{resource}/{scope}"] += 1
        return Refusal(scope, resource, limit)


# -- configuration ---------------------------------------------------------------------------

# The [budget] table of config.toml (daemon) and relay.toml: Limits' fields, memory in MiB.
_MIB = 1 << 20
_CONFIG_KEYS = {"connections": "connections", "connections_per_ip": "connections_per_ip",
                "new_peers_per_ip": "new_peers_per_ip", "new_peers": "new_peers",
                "new_peer_window_s": "new_peer_window_s", "streams": "streams",
                "streams_per_peer": "streams_per_peer", "streams_per_ip": "streams_per_ip",
                "memory_mb": "memory", "memory_per_peer_mb": "memory_per_peer", "memory_per_ip_mb": "memory_per_ip"}

# A relay serves every user's live sync stream at once (1,000 users by default), each charged
# its Yamux window (256 KiB) both ways: it needs more than a personal node.
RELAY_LIMITS = Limits(connections=4_096, connections_per_ip=256, new_peers_per_ip=256, new_peers=4_096,
                      streams=16_384, streams_per_peer=32, streams_per_ip=2_048,
                      memory=1_024 * _MIB, memory_per_peer=16 * _MIB, memory_per_ip=256 * _MIB)


def parse_limits(table: object, defaults: Limits, where: str) -> Limits:
    """Limits from a [budget] table; keys left out keep `defaults`. Raises BudgetError."""
    if not isinstance(table, dict):
        raise BudgetError(f"{where}: [budget] must be a table")
    unknown = sorted(set(table) - set(_CONFIG_KEYS))
    if unknown:
        raise BudgetError(f"{where}: unknown key budget.{unknown[0]} (known: {', '.join(sorted(_CONFIG_KEYS))})")
    values = {}
    for key, field_name in _CONFIG_KEYS.items():
        if key not in table:
            continue
        value = table[key]
        whole = field_name != "new_peer_window_s"
        if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) or not value > 0:
            kind = "a positive integer" if whole else "a positive number"
            raise BudgetError(f"{where}: budget.{key} must be {kind}, not {value!r}")
        values[field_name] = value * _MIB if key.endswith("_mb") else value
    return Limits(**{**vars(defaults), **values})
