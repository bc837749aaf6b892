"""bootstrap_peers.toml: the peers a fresh node dials first. Pure (text in, peers out).

    [[peer]]
    name  = "relay.example.org"                      # optional label
    addrs = ["/dns4/relay.example.org/tcp/4001/p2p/12D3KooW..."]   # required, tried in order
    relay = true                                     # optional: offers circuit relay

A malformed file or entry is reported in `problems` and skipped: bootstrap trouble never
stops a node from starting.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass


@dataclass(frozen=True)
class BootstrapPeer:
    name: str
    addrs: tuple[str, ...]
    relay: bool = False

    @property
    def peer_id(self) -> str:
        return self.addrs[0].rsplit("/p2p/", 1)[1]


@dataclass(frozen=True)
class BootstrapList:
    peers: tuple[BootstrapPeer, ...]
    problems: tuple[str, ...]


def parse_bootstrap(text: str, where: str = "bootstrap_peers.toml") -> BootstrapList:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        return BootstrapList((), (f"{where}: not valid TOML ({e}); no bootstrap peers used",))
    raw = data.get("peer", [])
    if not isinstance(raw, list):
        return BootstrapList((), (f"{where}: 'peer' must be an array of tables",))
    peers, problems = [], []
    for i, item in enumerate(raw):
        label = f"{where}: peer {i + 1}"
        if not isinstance(item, dict):
            problems.append(f"{label}: not a table")
            continue
        addrs = item.get("addrs")
        if (not isinstance(addrs, list) or not addrs
                or not all(isinstance(a, str) and a.startswith("/") and "/p2p/" in a for a in addrs)):
            problems.append(f"{label}: addrs must be a list of multiaddrs ending in /p2p/<peer id>")
            continue
        ids = {a.rsplit("/p2p/", 1)[1] for a in addrs}
        if len(ids) != 1:
            problems.append(f"{label}: all addrs of one peer must name the same /p2p/ id")
            continue
        name = item.get("name", "")
        peers.append(BootstrapPeer(name if isinstance(name, str) else "", tuple(addrs), item.get("relay") is True))
    return BootstrapList(tuple(peers), tuple(problems))
