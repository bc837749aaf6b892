"""In-process nodes for network tests: a real store, writer, libp2p host (127.0.0.1) and
replicator in one trio task tree, without the daemon around them. Tests drive fetches by
hand unless they pass auto_sync=True."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import trio

from murmurate.crypto import SigningIdentity
from murmurate.node.p2p import HostConfig, P2PHost, open_host
from murmurate.node.replicator import Replicator
from murmurate.node.writer import StoreWriter
from murmurate.store import Store

NOW = 1_800_000_000_000


@dataclass
class Node:
    identity: SigningIdentity
    store: Store
    writer: StoreWriter
    host: P2PHost
    replicator: Replicator


@asynccontextmanager
async def node(tmp_path: Path, name: str, seed: int, *, wanted: Callable[[], list[bytes]] | None = None,
               gossip_topics: int = 0, auto_sync: bool = False, resync_s: float = 30.0,
               serve_refusal: Callable[[str], str | None] | None = None,
               writer: Callable[[Store], StoreWriter] = StoreWriter) -> AsyncIterator[Node]:
    identity = SigningIdentity(bytes([seed]) * 32)
    store = Store(tmp_path / name)
    store.set_self(identity.public_key)
    async with trio.open_nursery() as nursery:
        writer_ = writer(store)
        await nursery.start(writer_.run)
        async with open_host(HostConfig(seed=identity.seed)) as host:
            replicator = Replicator(host, writer_.view, writer_, identity.public_key, now_ms=lambda: NOW,
                                    auto_sync=auto_sync, resync_s=resync_s, wanted=wanted,
                                    gossip_topics=gossip_topics, serve_refusal=serve_refusal)
            await nursery.start(replicator.run)
            yield Node(identity, store, writer_, host, replicator)
            nursery.cancel_scope.cancel()
    store.close()
