"""`murmurate relay`: the node with a relay policy, headless.

The same parts as the personal daemon (one writer, the libp2p host, the replicator, a
local API socket) with three policy hooks on the replicator: it wants the feeds of its
users and of whom they follow (node/relay/policy.py `hosted_feeds`), it trims incoming
batches to each user's quota, and it serves nothing to blocked peers. It has a key of
its own (unencrypted, as relay.toml must say) and never posts.

Also: the `/murmurate/relay/1.0.0` handler (join with an invite code, status), health and
Prometheus metrics on HTTP (node/relay/metrics.py), logs as JSON lines, and a graceful
stop: on SIGTERM the network stops first, and the writer's current transaction always
commits whole (it runs in a worker thread that cancellation waits for).
"""

from __future__ import annotations

import json
import logging
import os
import signal
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import trio

from murmurate.crypto import SigningIdentity, decode_key_file, encode_id, encode_key_file, read_key_file, write_key_file
from murmurate.store import Entry, IngestReport, Store

from .. import media
from ..api import ApiServer, Connection, Handler
from ..auditor import Auditor
from ..core import framing, rpc
from ..daemon import Daemon, HomeLock, stop_on_signal, tune_gc_for_a_long_run
from ..errors import NodeError
from ..home import Home, socket_path
from ..p2p import CircuitLimits, HostConfig, P2PError, open_host, peer_id_from_public_key, public_key_from_peer_id
from ..replicator import Replicator
from ..writer import StoreWriter
from . import policy
from . import protocol as p
from .config import RelayConfig
from .media_host import MediaHost
from .metrics import Metric, Rate, serve_http

log = logging.getLogger("murmurate.relay")

READ_TIMEOUT_S = 10.0
BLOCKED_SWEEP_S = 0.05  # how often to look for blocked peers to hang up on
BLOCKED_GRACE_S = 0.5   # time for a blocked peer's join or status to arrive and hear why it is refused


def relay_home(config: RelayConfig) -> Home:
    return Home(config.data_dir, config.data_dir / "config.toml")


def ensure_identity(config: RelayConfig, random_bytes: Callable[[int], bytes]) -> tuple[SigningIdentity, bool]:
    """The relay's own key, created (unencrypted, mode 0600) if there is none. Returns (key, created)."""
    path = relay_home(config).key_file
    if path.exists():
        return decode_key_file(read_key_file(path), None), False
    identity = SigningIdentity(random_bytes(32))
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    write_key_file(path, encode_key_file(identity, None))
    return identity, True


class Relay:
    def __init__(self, config: RelayConfig, identity: SigningIdentity, env: Mapping[str, str], *,
                 now_ms: Callable[[], int], random_bytes: Callable[[int], bytes]) -> None:
        self.config = config
        self.identity = identity
        self.env = env
        self.now_ms = now_ms
        self.random_bytes = random_bytes
        self.home = relay_home(config)
        self.socket = socket_path(self.home, env)
        # The writer holds the one writable store; the rest of the relay reads through a view.
        self.writer = QuotaWriter(Store(self.home.store_dir, map_size=config.store_map_size_mb << 20), self)
        self.store = self.writer.view
        self.host: Any = None
        self.replicator: Replicator = None  # type: ignore[assignment]
        self.users: dict[bytes, tuple[int, str]] = {}
        self.usage: dict[bytes, policy.Usage] = {}
        self.over_quota: set[bytes] = set()
        self.hosted: list[bytes] = []
        self.counters = {"joins": 0, "refusals": 0, "ingested_entries": 0, "api_errors": 0, "refused_entries": 0}
        self._rates = {"ingest": Rate(), "serve": Rate()}
        self._touched: set[bytes] = set()
        self._answering: set[str] = set()  # peers waiting for a relay-protocol answer
        self._dirty = trio.Event()
        self._stop = trio.Event()
        self.metrics_port: int | None = None
        self.media: MediaHost | None = None

    def request_stop(self) -> None:
        self._stop.set()

    # -- life cycle ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[dict[str, Any]] = trio.TASK_STATUS_IGNORED) -> None:
        lock = HomeLock(self.home)
        lock.acquire()
        try:
            self.socket.unlink(missing_ok=True)
            async with trio.open_nursery() as nursery:
                await nursery.start(self.writer.run)
                await self._load_state()
                # Circuit relay v2 for admitted users: one reservation each at most, so users
                # behind NAT can be dialled through us (see docs/operations.md).
                hop = CircuitLimits(max_reservations=self.config.max_users)
                # No GossipSub: the relay's replicator has no gossip topics (live entries go over
                # the sync streams), so there is no protocol to negotiate with every user.
                config = HostConfig(seed=self.identity.seed, listen=self.config.listen, hop=hop, pubsub=False,
                                    limits=self.config.limits)
                async with open_host(config) as host:
                    self.host = host
                    host.set_reservation_policy(lambda peer: public_key_from_peer_id(peer) in self.users)
                    blocked = {peer_id_from_public_key(k) for k in self.config.blocked}
                    # Blocked peers get no gossip, sync, blob or circuit from the first byte; they may
                    # still ask the relay protocol why (then _hang_up_on_blocked hangs up).
                    host.set_gate("blocked", lambda peer: peer not in blocked, explain=(p.PROTOCOL,))
                    self.replicator = Replicator(
                        host, self.store, self.writer, self.identity.public_key, now_ms=self.now_ms,
                        resync_s=self.config.resync_s, wanted=lambda: list(self.hosted),
                        serve_refusal=self._serve_refusal)
                    await nursery.start(self.replicator.run)
                    host.serve(p.PROTOCOL, self._serve_relay)
                    host.serve(media.PROTOCOL, lambda stream: media.serve_blob(self.writer, stream))
                    self._add_known_peers()
                    nursery.start_soon(self._watch_commits, self.writer.listen())
                    self.media = MediaHost(self)
                    nursery.start_soon(self.media.run)
                    await nursery.start(Auditor(self.store, self.writer, on_bad=self.replicator.feed_frozen).run)
                    nursery.start_soon(self._refresher)
                    if self.config.blocked:
                        nursery.start_soon(self._hang_up_on_blocked)
                    address = self.config.metrics_address
                    if address is not None:
                        self.metrics_port = await nursery.start(serve_http, address[0], address[1], self.health,
                                                                self.metrics)
                    await nursery.start(RelayApi(self).serve, self.socket)
                    info = {"id": encode_id(self.identity.public_key), "peer_id": host.peer_id,
                            "addrs": host.addrs(), "socket": str(self.socket), "metrics_port": self.metrics_port}
                    log.info("ready: relay %s, peer %s, listening on %s, %d users, %d hosted feeds, metrics %s",
                             info["id"], host.peer_id, " ".join(host.addrs()), len(self.users), len(self.hosted),
                             f"{address[0]}:{self.metrics_port}" if address else "off", extra={"event": "ready", **info})
                    task_status.started(info)
                    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                        nursery.start_soon(stop_on_signal, signals, self._stop)
                        await self._stop.wait()
                    log.info("stopping: closing the network; the current write batch finishes first",
                             extra={"event": "stopping"})
                    nursery.cancel_scope.cancel()
            log.info("stopped after %d write transactions", self.writer.transactions, extra={"event": "stopped"})
        finally:
            self.socket.unlink(missing_ok=True)
            self.writer.close()
            lock.release()

    def _add_known_peers(self) -> None:
        for peer_id, info in self.store.peers().items():
            self.replicator.add_peer(peer_id.decode(), list(info.get("addrs", [])), info.get("source", "book"))
        for addr in self.config.peers:
            self.replicator.add_peer(addr.rsplit("/p2p/", 1)[1], [addr], "config")

    # -- state -----------------------------------------------------------------------------

    async def _load_state(self) -> None:
        def load(store: Store) -> tuple[dict, dict]:
            policy.sweep_expired(store, self.now_ms())
            for user in self.config.allow:  # allowlisted users are hosted from the start
                if user not in self.config.blocked:
                    policy.admit(store, self.config, user, b"", self.now_ms())
            found = policy.users(store)
            return found, {u: policy.account(store, u) for u in found}
        self.users, self.usage = await self.writer.call(load)
        self.over_quota = {u for u, use in self.usage.items() if policy.quota_refusal(use, self.config.quota)}
        self.hosted = await trio.to_thread.run_sync(self._compute_hosted)

    def _compute_hosted(self) -> list[bytes]:
        order = sorted(self.users, key=lambda u: (self.users[u][0], u))
        follows = {u: self.store.follows(u) for u in order}
        return policy.hosted_feeds(order, follows, self.config, self.over_quota)

    async def _refresh(self) -> None:
        """Recount the touched users' feeds, then re-decide what to host; resubscribe if it changed."""
        touched, self._touched = self._touched & set(self.users), set()
        if touched:
            counted = await self.writer.call(lambda store: {u: policy.account(store, u) for u in touched})
            self.usage.update(counted)
            for user, use in counted.items():
                refusal = policy.quota_refusal(use, self.config.quota)
                if refusal and user not in self.over_quota:
                    self._log_over_quota(user, refusal)
                if refusal:
                    self.over_quota.add(user)
                else:
                    self.over_quota.discard(user)
        hosted = await trio.to_thread.run_sync(self._compute_hosted)
        if hosted != self.hosted:
            added = len(set(hosted) - set(self.hosted))
            self.hosted = hosted
            log.info("now hosting %d feeds (%d new)", len(hosted), added, extra={"event": "hosted", "feeds": len(hosted)})
            await self.replicator.feeds_changed()

    async def _hang_up_on_blocked(self) -> None:
        """Blocked peers keep no connection: besides refusing their syncs, hang up on them,
        or GossipSub would forward them new entries. A peer waiting for the answer to a
        join or status keeps its connection until it has heard why it is refused (it has
        BLOCKED_GRACE_S to open that stream).
        P2PHost has no connect event, so look often (a set lookup per connected peer); until
        then the host's gate (set in run) lets them use nothing but the relay protocol."""
        blocked = {peer_id_from_public_key(k) for k in self.config.blocked}
        seen: dict[str, float] = {}  # when each blocked peer was first seen connected
        while True:
            now = time.monotonic()
            present = set(self.host.connected_peers()) & blocked
            for peer_id in present - self._answering:
                if now - seen.setdefault(peer_id, now) >= BLOCKED_GRACE_S:
                    log.info("hanging up on blocked peer %s", peer_id, extra={"event": "blocked", "peer": peer_id})
                    await self.host.disconnect(peer_id)
            for peer_id in set(seen) - present:
                del seen[peer_id]
            await trio.sleep(BLOCKED_SWEEP_S)

    async def _refresher(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty = trio.Event()
            await self._refresh()

    async def _watch_commits(self, commits: Any) -> None:
        """Count what is stored; a follow or unfollow by a user changes what we host."""
        async for commit in commits:
            self.counters["ingested_entries"] += len(commit.appended)
            if self.media is not None:
                self.media.note_commit(commit.appended, commit.types)
            mine = [a for a, _ in commit.appended if a in self.users]
            if not mine:
                continue
            self._touched.update(mine)
            self._dirty.set()  # the refresher recounts them and re-reads their follows

    def note_refused(self, cut: dict[bytes, str], refused: int) -> None:
        """Called by the writer after a batch: these users' entries did not fit their quota
        (each with the reason, in the words _refresh would use for the same usage)."""
        self.counters["refused_entries"] += refused
        for user, why in cut.items():
            if user not in self.over_quota:
                self.over_quota.add(user)
                self._log_over_quota(user, why)
        if cut:
            self._touched.update(cut)
            self._dirty.set()

    def _log_over_quota(self, user: bytes, why: str) -> None:
        self.counters["refusals"] += 1
        log.warning("user %s is %s", encode_id(user), why, extra={"event": "over_quota", "user": encode_id(user)})

    def _serve_refusal(self, peer_id: str) -> str | None:
        key = public_key_from_peer_id(peer_id)
        if key is not None and key in self.config.blocked:
            self.counters["refusals"] += 1
            return "refused: this relay's operator has blocked you"
        return None

    # -- the relay protocol ----------------------------------------------------------------

    async def _serve_relay(self, stream: Any) -> None:
        self._answering.add(stream.remote_peer)
        try:
            await self._serve_relay_request(stream)
        finally:
            self._answering.discard(stream.remote_peer)

    async def _serve_relay_request(self, stream: Any) -> None:
        decoder = framing.FrameDecoder(p.MAX_MESSAGE_BYTES)
        try:
            with trio.fail_after(READ_TIMEOUT_S):
                body = None
                while body is None:
                    body = decoder.next_frame()
                    if body is None:
                        data = await stream.read(p.MAX_MESSAGE_BYTES)
                        if not data:
                            return
                        decoder.feed(data)
                        await stream.hold(decoder.buffered)  # a partial frame is charged to the budget
            answer = await self._answer(stream.remote_peer, p.decode(body))
        except (framing.FrameError, p.RelayProtocolError) as e:
            answer = p.Refused(p.BAD_REQUEST, f"not a relay request: {e}")
        except (trio.TooSlowError, P2PError):
            return
        if isinstance(answer, p.Refused):
            self.counters["refusals"] += 1
            log.info("refused %s: %s (%s)", stream.remote_peer, answer.message, answer.code,
                     extra={"event": "refused", "peer": stream.remote_peer, "code": answer.code})
        await stream.write(framing.encode(p.encode(answer)))

    async def _answer(self, peer_id: str, request: p.Message) -> p.Message:
        user = public_key_from_peer_id(peer_id)
        if user is None:
            return p.Refused(p.BAD_REQUEST, "your peer id holds no Ed25519 key: only personal nodes join")
        if isinstance(request, p.StatusRequest):
            if user not in self.users:
                blocked = user in self.config.blocked
                return p.Refused(p.BLOCKED if blocked else p.NOT_ADMITTED,
                                 "this relay's operator has blocked you" if blocked else
                                 "you are not admitted to this relay: ask its operator for an invite code")
            return p.Ok(self._user_view(user))
        if not isinstance(request, p.Join):
            return p.Refused(p.BAD_REQUEST, "send join or status")
        bad = p.check_join(request, self.identity.public_key, user, self.now_ms())
        if bad is not None:
            return bad
        now = self.now_ms()
        decision = await self.writer.call(lambda store: policy.admit(store, self.config, user, request.token, now))
        if isinstance(decision, p.Refused):
            return decision
        if decision.new:
            self.counters["joins"] += 1
            self.users[user] = (now, decision.via)
            log.info("admitted user %s (%s)", encode_id(user), decision.via,
                     extra={"event": "admitted", "user": encode_id(user), "via": decision.via})
            self._touched.add(user)
            if self.media is not None:
                self.media.note_user(user)
            await self._refresh()
        return p.Ok(self._user_view(user))

    def _user_view(self, user: bytes) -> dict[str, Any]:
        hosted = set(self.hosted)
        follows = [a for a in self.store.follows(user)[:self.config.quota.max_follows] if a in hosted]
        return policy.user_view(user, self.usage.get(user, policy.Usage()), self.config, len(follows),
                                self.users.get(user, (0, ""))[1], policy.blob_usage(self.store, user))

    # -- invites (through the relay's local API) -------------------------------------------

    def announce_addrs(self) -> list[str]:
        if self.config.announce:
            return list(self.config.announce)
        addrs = [a.split("/p2p/")[0] for a in self.host.addrs()]
        return [a for a in addrs if not a.startswith(("/ip4/0.0.0.0/", "/ip6/::/"))]

    async def create_invite(self, ttl_s: int | None, with_token: bool = True) -> dict[str, Any]:
        addrs = self.announce_addrs()
        if not addrs:
            raise NodeError("no address to put in the code: the relay listens on 0.0.0.0; set `announce` "
                            "in relay.toml to the addresses users dial")
        token = b""
        expires = None
        if with_token:
            token = self.random_bytes(p.TOKEN_SIZE)
            now, ttl = self.now_ms(), ttl_s or self.config.invite_ttl_s
            invite = await self.writer.call(lambda store: policy.create_invite(store, token, now, ttl))
            expires = invite.expires_ms
            log.info("invite created, expires at %d", expires, extra={"event": "invite", "expires_ms": expires})
        code = p.encode_code(p.RelayCode(self.identity.public_key, tuple(addrs), token))
        return {"code": code, "relay": encode_id(self.identity.public_key), "expires_ms": expires, "addrs": addrs}

    def user_list(self) -> list[dict[str, Any]]:
        return [{**self._user_view(u), "since_ms": since} for u, (since, _via) in
                sorted(self.users.items(), key=lambda kv: kv[1][0])]

    # -- health and metrics ----------------------------------------------------------------

    def health(self) -> dict[str, Any]:
        running = self.host is not None and not self._stop.is_set()
        return {"status": "ok" if running else "stopping", "relay": encode_id(self.identity.public_key),
                "peers": len(self.host.connected_peers()) if self.host else 0, "users": len(self.users),
                "hosted_feeds": len(self.hosted)}

    def metrics(self) -> list[Metric]:
        stats = self.replicator.stats if self.replicator else {}
        host = self.host.statistics() if self.host else {}
        usage = self.store.disk_usage()
        now = time.monotonic()
        ingested = self.counters["ingested_entries"]
        served = stats.get("served_entries", 0)
        errors = (stats.get("peers_cut_off", 0) + stats.get("gossip_bad", 0) + host.get("handler_errors", 0)
                  + self.counters["api_errors"])
        m = "murmurate_relay_"
        return [
            Metric(m + "up", "gauge", "1 while the relay runs", 1),
            Metric(m + "peers", "gauge", "connected peers", host.get("peers", 0)),
            Metric(m + "users", "gauge", "admitted users", len(self.users)),
            Metric(m + "users_over_quota", "gauge", "users whose new entries are refused", len(self.over_quota)),
            Metric(m + "hosted_feeds", "gauge", "feeds fetched and kept live", len(self.hosted)),
            Metric(m + "entries", "gauge", "entries in the store", self.store.count_entries()),
            Metric(m + "store_bytes", "gauge", "bytes the store file uses", usage["total"]),
            Metric(m + "ingested_entries_total", "counter", "entries stored since start", ingested),
            Metric(m + "served_entries_total", "counter", "entries sent to peers by catch-up since start", served),
            Metric(m + "ingest_rate", "gauge", "entries stored per second, last minute",
                   self._rates["ingest"].update(now, ingested)),
            Metric(m + "serve_rate", "gauge", "entries served per second, last minute",
                   self._rates["serve"].update(now, served)),
            Metric(m + "gossip_in_total", "counter", "live messages received", stats.get("gossip_in", 0)),
            Metric(m + "refused_entries_total", "counter", "entries refused by quota", self.counters["refused_entries"]),
            Metric(m + "refusals_total", "counter", "joins, statuses and syncs refused", self.counters["refusals"]),
            Metric(m + "joins_total", "counter", "users admitted since start", self.counters["joins"]),
            Metric(m + "blobs_fetched_total", "counter", "users' media files fetched since start",
                   self.media.fetched if self.media else 0),
            Metric(m + "blobs_refused_total", "counter", "users' media files not fetched: over the media quota",
                   self.media.refused if self.media else 0),
            Metric(m + "errors_total", "counter", "peers cut off, bad gossip, handler and API errors", errors),
            Metric(m + "write_transactions_total", "counter", "store transactions", self.writer.transactions),
            # What remote peers hold of the budget now, and what it refused (node/core/budget.py).
            Metric(m + "budget_connections", "gauge", "connections charged to the budget", host.get("budget_connections", 0)),
            Metric(m + "budget_streams", "gauge", "streams charged to the budget", host.get("budget_streams", 0)),
            Metric(m + "budget_memory_bytes", "gauge", "stream buffer bytes charged to the budget",
                   host.get("budget_memory", 0)),
            Metric(m + "budget_refusals_total", "counter", "connections and streams refused: over budget",
                   host.get("budget_refusals", 0)),
        ]

    # Shared with the daemon: it only needs .host and .replicator.
    peer_list = Daemon.peer_list


class QuotaWriter(StoreWriter):
    """The one writer, with each user's quota applied inside the write job: the count and
    the ingest are one step of the one writer, so batches of a feed that arrive together
    (a sync and a gossip message) cannot both slip past it."""

    def __init__(self, store: Store, relay: Relay) -> None:
        super().__init__(store)
        self.relay = relay

    async def ingest(self, entries: Sequence[Entry], now_ms: int) -> IngestReport:
        users = set(self.relay.users)
        quota = self.relay.config.quota
        outcome: dict[str, Any] = {}

        def job(store: Store) -> IngestReport:
            authors = {e.envelope.author for e in entries} & users
            usage = {a: policy.account(store, a) for a in authors}
            kept, after, cut = policy.trim(entries, usage, quota, authors)
            why = {user: policy.cut_refusal(after.get(user, policy.Usage()), quota) for user in cut}
            outcome.update(cut=why, refused=len(entries) - len(kept))
            return store.ingest(kept, now_ms) if kept else IngestReport()

        report = await self._submit(job)
        if outcome.get("refused"):
            self.relay.note_refused(outcome["cut"], outcome["refused"])
        return report


class RelayApi(ApiServer):
    """The relay's local API: the node's read-only methods plus the operator's relay verbs."""

    NODE_METHODS = ("ping", "peers", "status", "connect", "subscribe", "unsubscribe", "shutdown")

    def method_table(self) -> dict[str, Handler]:
        node = super().method_table()
        return {**{name: node[name] for name in self.NODE_METHODS},
                "whoami": self.relay_whoami, "export": self.relay_export, "verify": self.relay_verify,
                "relay_invite": self.relay_invite, "relay_users": self.relay_users}

    async def relay_whoami(self, params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        relay: Relay = self.d  # type: ignore[assignment]
        return {"id": encode_id(relay.identity.public_key), "peer_id": relay.host.peer_id,
                "addrs": relay.host.addrs(), "relay": True, "home": str(relay.home.data_dir),
                "metrics_port": relay.metrics_port}

    async def relay_export(self, params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        """A hot backup of every feed the relay holds (one consistent read per feed)."""
        from murmurate.store.archive import export_archive

        path = rpc.absolute_path(params, "file")
        report = await trio.to_thread.run_sync(export_archive, self.d.store, path)
        return {"file": path, "feeds": report.feeds, "entries": report.entries, "bytes": report.bytes}

    async def relay_verify(self, params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        store = self.d.store
        problems = await trio.to_thread.run_sync(store.verify)
        return {"entries": store.count_entries(), "feeds": len(store.feeds()), "problems": problems}

    async def relay_invite(self, params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        ttl = rpc.integer(params, "ttl_s", 0, 0, 366 * 24 * 3600) or None
        token = rpc.boolean(params, "token", True)
        return await self.d.create_invite(ttl, token)  # type: ignore[attr-defined]

    async def relay_users(self, params: dict[str, Any], conn: Connection) -> dict[str, Any]:
        relay: Relay = self.d  # type: ignore[assignment]
        users = await trio.to_thread.run_sync(relay.user_list)
        return {"users": users, "open_invites": len(policy.open_invites(relay.store, relay.now_ms())),
                "hosted_feeds": len(relay.hosted)}


# -- logs ----------------------------------------------------------------------------------

class JsonFormatter(logging.Formatter):
    """One JSON object a line: ts, level, logger, msg, and the record's `extra` fields."""

    SKIP = set(vars(logging.makeLogRecord({}))) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, Any] = {"ts": round(record.created, 3), "level": record.levelname.lower(),
                               "logger": record.name, "msg": record.getMessage()}
        out.update({k: v for k, v in vars(record).items() if k not in self.SKIP})
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str, ensure_ascii=False)


def setup_logging(config: RelayConfig, stream: Any) -> None:
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if config.log_format == "json" else
                         logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(config.log_level.upper())


def run_relay(config: RelayConfig, env: Mapping[str, str]) -> None:
    """Run the relay until SIGINT, SIGTERM or `shutdown` (blocking; for the command line)."""
    identity, created = ensure_identity(config, os.urandom)
    if created:
        log.info("created the relay's key %s in %s (unencrypted, mode 0600: relay.toml says unencrypted_key)",
                 encode_id(identity.public_key), relay_home(config).key_file)
    relay = Relay(config, identity, env, now_ms=lambda: int(time.time() * 1000), random_bytes=os.urandom)
    tune_gc_for_a_long_run()
    trio.run(relay.run)


def relay_socket(config: RelayConfig, env: Mapping[str, str]) -> Path:
    return socket_path(relay_home(config), env)
