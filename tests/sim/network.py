"""N nodes, each the real replication engine over a model store, on a simulated network.

The simulator carries out the engine's actions as node/replicator.py does over libp2p, in
virtual time: a Dial connects two nodes after a delay (unless a partition or a dead node
stands between them); a StartSync sends the client's heads to the server and its answer
back, then keeps the stream open and pushes what the server stores later (live); a Ban
and a Disconnect cut the connection. Deliveries can be delayed, lost (a lost delivery cuts
the stream, as a dropped connection does) or blocked by partitions; nodes can stop and
start again with their store and peer book but a fresh engine. Everything random comes
from one seeded random.Random, so a run is repeatable.

Hostile nodes serve what their kind says: "forger" (entries of an honest author with bad
signatures), "garbler" (a protocol break), "liar" (heads it does not have). A forked
author serves one history to some peers and another to the rest.
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from murmurate.node.core import engine_events as ev
from murmurate.node.core.engine import Engine

from .model import SimEntry, SimStore

HONEST = "honest"
FORGER = "forger"
GARBLER = "garbler"
LIAR = "liar"
FORKED_AUTHOR = "forked_author"
MAX_EVENTS_AT_ONE_TIME = 200_000


@dataclass
class SimNode:
    nid: int
    kind: str = HONEST
    store: SimStore = field(default_factory=SimStore)
    engine: Engine = field(default_factory=Engine)
    alive: bool = True
    known: list[int] = field(default_factory=list)  # its peer book
    flagged: set[int] = field(default_factory=set)  # authors it flagged (AuthorFlagged)
    bans: set[int] = field(default_factory=set)     # peers it banned, ever
    branches: dict[str, list[SimEntry]] = field(default_factory=dict)  # a forked author's two histories

    @property
    def name(self) -> str:
        return f"n{self.nid}"


@dataclass
class _Stream:
    """A sync from `client` to `server`: `sent` per author once live."""

    client: int
    server: int
    conn: int  # the connection generation it runs on
    sent: dict[int, int] = field(default_factory=dict)
    pushing: bool = False    # the server answered: it pushes what it stores from `sent` on
    caught_up: bool = False  # the client stored the catch-up: the stream is live
    arrives: float = 0.0     # a stream delivers in order: nothing arrives before this


class Simulator:
    def __init__(self, count: int, *, seed: int, authors: list[int] | None = None, degree: int = 3,
                 delay: tuple[float, float] = (0.005, 0.05), loss: float = 0.0, resync_s: float = 30.0,
                 kinds: dict[int, str] | None = None) -> None:
        self.rng = random.Random(seed)
        self.now = 0.0
        self.delay = delay
        self.loss = loss
        self.resync_s = resync_s
        self._queue: list[tuple[float, int, Callable[[], None]]] = []
        self._order = 0
        self.nodes = [SimNode(i, (kinds or {}).get(i, HONEST), engine=Engine(resync_s=resync_s))
                      for i in range(count)]
        self.authors = authors if authors is not None else list(range(count))
        self.connections: dict[frozenset[int], int] = {}  # pair -> generation
        self._generation = 0
        self.streams: dict[tuple[int, int], _Stream] = {}  # (client, server)
        self._served: dict[int, dict[int, _Stream]] = {}    # server -> client -> stream
        self.blocked: set[frozenset[int]] = set()  # pairs a partition separates
        self._timers: dict[int, float] = {}
        for node in self.nodes:  # a random peer book of `degree` peers each
            others = [i for i in range(count) if i != node.nid]
            node.known = self.rng.sample(others, min(degree, len(others)))
            self._introduce(node)

    # -- scenario ---------------------------------------------------------------------------

    def post(self, author: int, count: int = 1) -> None:
        """The author writes `count` entries (a forked author: on both of its histories)."""
        node = self.nodes[author]
        for _ in range(count):
            if node.kind == FORKED_AUTHOR:
                for branch in ("a", "b"):
                    history = node.branches.setdefault(branch, [])
                    prev = history[-1].hash if history else None
                    # Entry 1 is the same on both: the histories part at 2.
                    history.append(SimEntry(author, len(history) + 1, prev, branch if history else ""))
                node.store.feeds[author] = list(node.branches["a"])
            else:
                feed = node.store.feeds.setdefault(author, [])
                feed.append(SimEntry(author, len(feed) + 1, feed[-1].hash if feed else None))
            self._stored(node, [node.store.feeds[author][-1]])

    def partition(self, *groups: set[int]) -> None:
        """Cut every link between different groups (and the connections over them)."""
        side = {n: i for i, g in enumerate(groups) for n in g}
        self.blocked = {frozenset((a, b)) for a in side for b in side if side[a] != side[b]}
        for pair in [p for p in self.connections if p in self.blocked]:
            self._cut(*sorted(pair))

    def heal(self) -> None:
        self.blocked = set()

    def stop(self, nid: int) -> None:
        node = self.nodes[nid]
        node.alive = False
        for pair in [p for p in self.connections if nid in p]:
            self._cut(*sorted(pair))

    def start(self, nid: int) -> None:
        """Start a stopped node again: its store and peer book, a fresh engine."""
        node = self.nodes[nid]
        node.alive = True
        node.engine = Engine(resync_s=self.resync_s)
        self._introduce(node)

    def run(self, until: float, *, stop_when: Callable[[], bool] | None = None, check_every: float = 1.0) -> float:
        """Run events up to virtual time `until`, or until `stop_when()` holds (checked every
        `check_every` virtual seconds). Returns the virtual time reached."""
        next_check = self.now + check_every
        same_time = 0
        while self._queue and self._queue[0][0] <= until:
            at, _, fn = heapq.heappop(self._queue)
            same_time = same_time + 1 if at == self.now else 0
            if same_time > MAX_EVENTS_AT_ONE_TIME:  # an engine that re-arms its timer for now, forever
                raise AssertionError(f"time stands still at {at}: {same_time} events without it moving")
            if stop_when is not None and at >= next_check:
                self.now = next_check
                if stop_when():
                    return self.now
                next_check += check_every
            self.now = at
            fn()
        if stop_when is not None and stop_when():
            return self.now
        self.now = until
        return self.now

    # -- checks -----------------------------------------------------------------------------

    def honest(self) -> list[SimNode]:
        return [n for n in self.nodes if n.kind == HONEST]

    def converged(self, authors: list[int] | None = None) -> bool:
        """Every honest node alive holds every honest author's whole feed."""
        authors = authors if authors is not None else [a for a in self.authors if self.nodes[a].kind == HONEST]
        heads = {a: self.nodes[a].store.head(a) for a in authors}
        return all(n.store.head(a) == heads[a] for n in self.honest() if n.alive for a in authors)

    def honest_banned_by_honest(self) -> list[tuple[int, int]]:
        honest = {n.nid for n in self.honest()} | {n.nid for n in self.nodes if n.kind == FORKED_AUTHOR}
        return [(n.nid, p) for n in self.honest() for p in n.bans if p in honest]

    # -- engine plumbing --------------------------------------------------------------------

    def _at(self, delay: float, fn: Callable[[], None]) -> None:
        self._order += 1
        heapq.heappush(self._queue, (self.now + delay, self._order, fn))

    def _latency(self) -> float:
        return self.rng.uniform(*self.delay)

    def _introduce(self, node: SimNode) -> None:
        for peer in node.known:
            self._handle(node, ev.PeerAdded(str(peer), (f"/sim/{peer}",), "book"))
        self._arm(node)

    def _handle(self, node: SimNode, event: ev.Event) -> None:
        if node.alive:
            self._apply(node, node.engine.handle(event, self.now))
            self._arm(node)

    def _arm(self, node: SimNode) -> None:
        """Schedule the node's handle_timer at its engine's next_timer (one pending at a time)."""
        due = node.engine.next_timer(self.now)
        if due is None or not node.alive:
            return
        due = max(due, self.now)
        if self._timers.get(node.nid, float("inf")) <= due:
            return
        self._timers[node.nid] = due
        engine = node.engine

        def fire() -> None:
            if self._timers.get(node.nid) != due or node.engine is not engine or not node.alive:
                return
            del self._timers[node.nid]
            self._apply(node, engine.handle_timer(self.now))
            self._arm(node)

        self._at(due - self.now, fire)

    def _apply(self, node: SimNode, actions: list[ev.Action]) -> None:
        for action in actions:
            if isinstance(action, ev.Dial):
                self._dial(node, int(action.peer_id))
            elif isinstance(action, ev.StartSync):
                self._sync(node, int(action.peer_id))
            elif isinstance(action, ev.Ban):
                node.bans.add(int(action.peer_id))
            elif isinstance(action, ev.Disconnect):
                self._cut(node.nid, int(action.peer_id))
            elif isinstance(action, ev.RestartLive):
                for key, stream in list(self.streams.items()):
                    if stream.client == node.nid:
                        self._end_stream(key, ev.SyncOutcome.CANCELLED)
            elif isinstance(action, ev.AuthorFlagged):
                node.flagged.add(int.from_bytes(action.author, "big"))
            elif isinstance(action, ev.FetchGap):  # the model never holds entries across syncs
                self._handle(node, ev.GapFillEnded(action.peer_id, action.author))

    # -- the network ------------------------------------------------------------------------

    def _reachable(self, a: int, b: int) -> bool:
        return self.nodes[a].alive and self.nodes[b].alive and frozenset((a, b)) not in self.blocked

    def _dial(self, node: SimNode, peer: int) -> None:
        def arrive() -> None:
            if not node.alive:
                return
            pair = frozenset((node.nid, peer))
            if not self._reachable(node.nid, peer) or str(node.nid) in _banned(self.nodes[peer], self.now):
                self._handle(node, ev.DialFailed(str(peer), "unreachable"))
                return
            if pair not in self.connections:
                self._generation += 1
                self.connections[pair] = self._generation
                self._handle(self.nodes[peer], ev.PeerConnected(str(node.nid)))
            self._handle(node, ev.DialSucceeded(str(peer)))
            self._handle(node, ev.PeerConnected(str(peer)))
        self._at(2 * self._latency(), arrive)

    def _cut(self, a: int, b: int) -> None:
        if self.connections.pop(frozenset((a, b)), None) is None:
            return
        for key in [(a, b), (b, a)]:
            if key in self.streams:
                self._end_stream(key, ev.SyncOutcome.FAILED)
        for x, y in ((a, b), (b, a)):
            self._handle(self.nodes[x], ev.PeerDisconnected(str(y)))

    def _drop_stream(self, key: tuple[int, int]) -> _Stream | None:
        stream = self.streams.pop(key, None)
        if stream is not None:
            self._served.get(stream.server, {}).pop(stream.client, None)
        return stream

    def _end_stream(self, key: tuple[int, int], outcome: ev.SyncOutcome) -> None:
        stream = self._drop_stream(key)
        if stream is not None:
            if outcome is ev.SyncOutcome.FAILED and stream.caught_up:
                outcome = ev.SyncOutcome.LIVE_ENDED
            self._handle(self.nodes[stream.client], ev.SyncEnded(str(stream.server), outcome))

    def _sync(self, client: SimNode, server: int) -> None:
        key = (client.nid, server)
        conn = self.connections.get(frozenset(key))
        if conn is None or key in self.streams:
            self._at(0, lambda: self._handle(client, ev.SyncEnded(str(server), ev.SyncOutcome.FAILED)))
            return
        stream = self.streams[key] = _Stream(client.nid, server, conn)
        self._served.setdefault(server, {})[client.nid] = stream
        have = {a: client.store.head(a) for a in self.authors}

        def answer() -> None:
            if self.streams.get(key) is not stream:
                return
            node = self.nodes[server]
            entries, heads, broken = self._serve(node, client.nid, have)
            # From here on the server pushes what it stores (it listens before it reads heads).
            stream.sent = {a: len(self._feed_for(node, a, client.nid)) for a in self.authors}
            stream.pushing = True
            self._deliver(stream, lambda: self._receive(stream, entries, heads, broken, catch_up=True))
        self._at(self._latency(), answer)

    def _deliver(self, stream: _Stream, fn: Callable[[], None]) -> None:
        stream.arrives = max(stream.arrives, self.now + self._latency())
        self._at(stream.arrives - self.now, fn)

    def _serve(self, server: SimNode, client: int, have: dict[int, int]
               ) -> tuple[list[SimEntry], dict[int, int], str | None]:
        """What `server` sends for a want of these heads: entries, the heads it announces,
        and a protocol break if it commits one."""
        if server.kind == GARBLER:
            return [], {}, "entries before heads"
        entries: list[SimEntry] = []
        heads: dict[int, int] = {}
        for author in self.authors:
            feed = self._feed_for(server, author, client)
            if server.kind == FORGER and author != server.nid and feed:
                forged = SimEntry(author, len(feed) + 1, feed[-1].hash, "forged", signed=False)
                feed = feed + [forged]
            if not feed:
                continue
            heads[author] = len(feed) + (100 if server.kind == LIAR else 0)
            entries.extend(feed[have.get(author, 0):])
        return entries, heads, None

    def _feed_for(self, server: SimNode, author: int, client: int) -> list[SimEntry]:
        if server.kind == FORKED_AUTHOR and author == server.nid:
            return list(server.branches.get("a" if client % 2 == 0 else "b", []))
        return server.store.feeds.get(author, [])

    def _receive(self, stream: _Stream, entries: list[SimEntry], heads: dict[int, int], broken: str | None,
                 *, catch_up: bool) -> None:
        key = (stream.client, stream.server)
        if self.streams.get(key) is not stream or self.connections.get(frozenset(key)) != stream.conn:
            return
        client = self.nodes[stream.client]
        peer = str(stream.server)
        if self.loss and self.rng.random() < self.loss:  # the connection dropped on the way
            self._cut(stream.client, stream.server)
            return
        if broken is not None:
            self._drop_stream(key)
            self._handle(client, ev.PeerMisbehaviour(peer, broken, ev.Fault.PEER))
            self._handle(client, ev.SyncEnded(peer, ev.SyncOutcome.MISBEHAVED))
            return
        if heads:
            self._handle(client, ev.HeadsSeen(tuple((_key(a), s) for a, s in heads.items())))
        appended, rejected = client.store.ingest(entries)
        client.engine.note_received(peer, len(appended))
        for author, seq, reason in rejected:
            fault = ev.fault_of(reason)
            if fault is ev.Fault.PEER:
                self._drop_stream(key)
                self._handle(client, ev.PeerMisbehaviour(peer, f"{reason.value} at {author}:{seq}", fault))
                self._handle(client, ev.SyncEnded(peer, ev.SyncOutcome.MISBEHAVED))
                return
            if fault is ev.Fault.AUTHOR:
                self._handle(client, ev.PeerMisbehaviour(peer, f"{reason.value} at {author}:{seq}", fault,
                                                         _key(author)))
        if appended:
            self._stored(client, appended)
        if catch_up:
            stream.caught_up = True
            self._handle(client, ev.SyncCaughtUp(peer, len(appended), True))

    def _stored(self, node: SimNode, appended: list[SimEntry]) -> None:
        """`node` stored these: push them down every live stream it serves (as _serve_live)."""
        authors = {e.author for e in appended}
        for stream in [s for s in self._served.get(node.nid, {}).values() if s.pushing]:
            out = []
            for author in sorted(authors):
                feed = self._feed_for(node, author, stream.client)
                out.extend(feed[stream.sent.get(author, 0):])
                stream.sent[author] = len(feed)
            if out:
                self._deliver(stream, lambda s=stream, o=out: self._receive(s, o, {}, None, catch_up=False))


def _key(author: int) -> bytes:
    """The engine names authors by their 32-byte keys; the simulator's are small numbers."""
    return author.to_bytes(32, "big")


def _banned(node: SimNode, now: float) -> set[str]:
    return {p for p in node.engine.banned if node.engine.is_banned(p, now)}
