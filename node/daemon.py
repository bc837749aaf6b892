"""`murmurate daemon`: the personal node, in the foreground.

It holds a lock on its home (a second daemon refuses to start), unlocks the identity,
opens the store, starts the one writer task, the libp2p host, the replicator and the
local API socket, and stops all of them cleanly on SIGINT or SIGTERM (or `shutdown`).
"""

from __future__ import annotations

import fcntl
import gc
import logging
import os
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import trio

from murmurate.crypto import SigningIdentity, encode_id
from murmurate.store import PayloadType

from . import media
from .api import ApiServer
from .auditor import Auditor
from .core.bootstrap import parse_bootstrap
from .core.contact import Contact
from .errors import NodeError
from .home import Home, socket_path
from .p2p import HostConfig, P2PError, open_host, peer_id_from_public_key, public_key_from_peer_id
from .replicator import Replicator
from .service import LocalNode
from .writer import StoreWriter

log = logging.getLogger("murmurate.daemon")

SHIPPED_BOOTSTRAP = Path(__file__).resolve().parent.parent / "bootstrap_peers.toml"


async def stop_on_signal(signals: Any, stop: trio.Event) -> None:
    """Set `stop` at the first SIGINT or SIGTERM (the daemon and the relay stop cleanly on it)."""
    async for signum in signals:
        log.info("signal %s received", signal.Signals(signum).name)
        stop.set()
        return


class DaemonRunningError(NodeError):
    """Another daemon already runs for this home."""


@dataclass(frozen=True)
class DaemonOptions:
    listen: tuple[str, ...] = ("/ip4/0.0.0.0/tcp/0",)
    peers: tuple[str, ...] = ()           # multiaddrs to dial at start (besides bootstrap and the peer book)
    bootstrap_file: Path | None = None
    mdns: bool = False
    resync_s: float = 30.0
    gossip_topics: int = 0  # GossipSub topics beside the live sync streams (node/replicator.py)


class HomeLock:
    """An exclusive flock on DATA/daemon.lock, released when the process ends, even by SIGKILL."""

    def __init__(self, home: Home) -> None:
        self.path = home.data_dir / "daemon.lock"
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid = os.read(fd, 32).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise DaemonRunningError(f"a daemon already runs for {self.path.parent} (pid {pid})") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class Daemon:
    def __init__(self, node: LocalNode, identity: SigningIdentity, options: DaemonOptions,
                 env: Mapping[str, str], now_ms: Callable[[], int]) -> None:
        self.node = node
        self.identity = identity
        self.options = options
        self.env = env
        self.now_ms = now_ms
        # The writer is the only holder of the writable store; the daemon, API, replicator
        # and auditor read through its view, which has no write methods.
        self.writer = StoreWriter(node.hand_over_store())
        self.store = self.writer.view
        self.socket = socket_path(node.home, env)
        self._stop = trio.Event()
        self.host: Any = None
        self.replicator: Replicator = None  # type: ignore[assignment]

    def request_stop(self) -> None:
        self._stop.set()

    async def run(self, *, task_status: trio.TaskStatus[dict[str, Any]] = trio.TASK_STATUS_IGNORED) -> None:
        lock = HomeLock(self.node.home)
        lock.acquire()
        try:
            self.socket.unlink(missing_ok=True)  # we hold the lock: any socket left is stale
            # Without gossip topics the host runs no GossipSub at all: no protocol to negotiate
            # with every peer (and no py-libp2p error when a peer has none either).
            config = HostConfig(seed=self.identity.seed, listen=self.options.listen, mdns=self.options.mdns,
                                pubsub=self.options.gossip_topics > 0, limits=self.node.config.limits)
            async with trio.open_nursery() as nursery:
                await nursery.start(self.writer.run)
                async with open_host(config) as host:
                    self.host = host
                    self.replicator = Replicator(host, self.store, self.writer, self.identity.public_key,
                                                 now_ms=self.now_ms, resync_s=self.options.resync_s,
                                                 gossip_topics=self.options.gossip_topics)
                    await nursery.start(self.replicator.run)
                    # Hold a circuit relay reservation on every relay we joined, so peers behind
                    # other NATs can reach us through it (P2PHost.addrs() then lists the circuit).
                    host.set_relays(lambda: {p for p, s in self.replicator.peers.items() if s.source == "relay"})
                    host.serve(media.PROTOCOL, lambda stream: media.serve_blob(self.writer, stream))
                    self._add_known_peers()
                    nursery.start_soon(self._open_private_posts, self.writer.listen())
                    await nursery.start(Auditor(self.store, self.writer, on_bad=self.replicator.feed_frozen).run)
                    if self.options.mdns:
                        def found(peer_id: str, addrs: list[str]) -> None:
                            # Kept in the peer book: the "local" timeline is the LAN's authors.
                            self.replicator.add_peer(peer_id, addrs, "lan")
                            entry = {"addrs": addrs, "source": "lan"}
                            nursery.start_soon(self.writer.call, lambda store: store.put_peer(peer_id.encode(), entry))
                        host.on_peer_found(found)
                    await nursery.start(ApiServer(self).serve, self.socket)
                    info = {"id": encode_id(self.identity.public_key), "peer_id": host.peer_id,
                            "addrs": host.addrs(), "socket": str(self.socket)}
                    log.info("ready: id %s, peer %s, listening on %s, api socket %s", info["id"],
                             host.peer_id, " ".join(host.addrs()), self.socket)
                    task_status.started(info)
                    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                        nursery.start_soon(stop_on_signal, signals, self._stop)
                        await self._stop.wait()
                    log.info("stopping")
                    nursery.cancel_scope.cancel()
        finally:
            self.socket.unlink(missing_ok=True)
            self.writer.close()
            lock.release()

    async def _open_private_posts(self, commits: Any) -> None:
        """Open the followers-only and direct posts this identity can read, as they arrive
        (and, at start, everything already stored). Runs on the writer: it caches keys and
        plaintexts in the local settings."""
        node = self.node
        opened = await self.writer.call(lambda store: node.writing_to(store).private.absorb_all(self.identity))
        if opened:
            log.info("opened %d private posts", opened)
        async for commit in commits:
            # Only type-11 entries can hold keys or private posts, and a delete may take one
            # back (its plaintext is then removed here); the commit says which is which.
            refs = [ref for ref, ptype in zip(commit.appended, commit.types)
                    if ptype in (PayloadType.ENCRYPTED, PayloadType.DELETE)]
            if not refs:
                continue

            def read(refs: list[tuple[bytes, int]] = refs) -> list[Any]:
                # In feed order: a post and its delete in one commit meet the delete last.
                found = self.store.of_type(PayloadType.ENCRYPTED, refs) + self.store.of_type(PayloadType.DELETE, refs)
                return sorted(found, key=lambda s: (s.envelope.author, s.envelope.seq))
            entries = await trio.to_thread.run_sync(read)
            if entries:
                await self.writer.call(
                    lambda store, e=entries: node.writing_to(store).private.absorb(self.identity, e))

    def _add_known_peers(self) -> None:
        for peer_id, info in self.store.peers().items():
            self.replicator.add_peer(peer_id.decode(), list(info.get("addrs", [])), info.get("source", "book"))
        for addr in self.options.peers:
            if "/p2p/" in addr:
                self.replicator.add_peer(addr.rsplit("/p2p/", 1)[1], [addr], "command line")
            else:
                log.warning("ignoring --peer %s: it needs a /p2p/<peer id> part", addr)
        path = self.options.bootstrap_file
        if path is None:
            user_file = self.node.home.config_file.parent / "bootstrap_peers.toml"
            path = user_file if user_file.exists() else SHIPPED_BOOTSTRAP
        try:
            text = Path(path).read_text()
        except OSError as e:
            log.warning("no bootstrap peers: cannot read %s (%s)", path, e.strerror)
            return
        parsed = parse_bootstrap(text, str(path))
        for problem in parsed.problems:
            log.warning("%s", problem)
        for peer in parsed.peers:
            self.replicator.add_peer(peer.peer_id, list(peer.addrs), "bootstrap")

    async def fetch_blob(self, blob: bytes) -> str:
        """Fetch a blob from the first connected peer that has it. Returns that peer's id."""
        for peer_id in self.host.connected_peers():
            if self.replicator._is_banned(peer_id):
                continue
            try:
                if await media.fetch_blob(self.host, self.writer, peer_id, blob) is not None:
                    return peer_id
            except media.BlobProtocolError as e:
                self.replicator._cut_off(peer_id, f"blob: {e}")
            except (P2PError, trio.TooSlowError) as e:
                log.info("blob from %s failed: %s", peer_id, e)
        raise NodeError("no connected peer has that blob")

    async def remember_contact(self, contact: Contact) -> None:
        """Keep a followed contact's addresses in the peer book (through the writer) and dial
        them now."""
        peer_id = peer_id_from_public_key(contact.public_key)
        entry = {"addrs": list(contact.addrs), "source": "contact"}
        await self.writer.call(lambda store: store.put_peer(peer_id.encode(), entry))
        self.replicator.add_peer(peer_id, list(contact.addrs), "contact")

    def peer_list(self) -> list[dict[str, Any]]:
        connected = set(self.host.connected_peers())
        out = []
        banned = {p for p in self.replicator.banned if self.replicator._is_banned(p)}
        for peer_id in sorted(connected | set(self.replicator.peers) | banned):
            state = self.replicator.peers.get(peer_id)
            author = public_key_from_peer_id(peer_id)
            out.append({
                "peer_id": peer_id,
                "author": encode_id(author) if author else None,
                "connected": peer_id in connected,
                "addrs": state.addrs if state else [],
                "source": state.source if state else "met",
                "last_error": state.last_error if state else "",
                "entries_received": state.entries_received if state else 0,
                "banned": self.replicator._is_banned(peer_id),
                "ban_reason": self.replicator.ban_reasons.get(peer_id, "") if self.replicator._is_banned(peer_id) else "",
            })
        return out


def run_daemon(node: LocalNode, identity: SigningIdentity, options: DaemonOptions, env: Mapping[str, str],
               now_ms: Callable[[], int]) -> None:
    """Run the daemon until SIGINT, SIGTERM or `shutdown` (blocking; for the command line)."""
    daemon = Daemon(node, identity, options, env, now_ms)
    tune_gc_for_a_long_run()
    trio.run(daemon.run)


# Collect the youngest generation every 50,000 allocations instead of 700: a catch-up
# builds several objects per entry, almost none of them in cycles, and the default made
# the collector a tenth of a catch-up's time (bench/sync.py: 12,600 -> 13,500-14,200
# entries/s). Older generations as often as before relative to it, so cyclic garbage
# (trio's cancelled tasks and their tracebacks) is still collected within seconds.
GC_THRESHOLDS = (50_000, 20, 20)


def tune_gc_for_a_long_run() -> None:
    """For a daemon or relay process, after its imports and set-up: what exists now lives as
    long as the process, so the collector stops scanning it (gc.freeze); and collections
    come less often (GC_THRESHOLDS)."""
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
