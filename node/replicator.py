"""Replication: the trio shell around the sync protocol, live gossip and the peer book.

- Catch-up (node/core/sync.py) over streams: with every connected peer, on connect, for
  every wanted feed; gaps seen in gossip are fetched from the peer that showed them.
- Live, by default over the sync streams: the catch-up's want is a live one, the stream
  stays open and each side pushes the other the wanted feeds' entries as it stores them,
  whatever their source; this scales to any number of feeds (a relay's 10,000). If a live
  stream ends or a sync fails, the peer is synced again after 1 s, then 2, 4, ... up to
  `resync_s` (PeerState.retry_s); a peer is also resynced every `resync_s`. Optionally
  (`gossip_topics` > 0) also one GossipSub topic per author feed, for the first
  `gossip_topics` wanted feeds (our own first): our own new entries are published on
  ours; receivers check an entry before GossipSub forwards it. Off by default: with py-libp2p's GossipSub beside the
  streams, bench/propagation.py's p99 went from 0.12 s to 10.8 s (docs/performance.md).
- Peers: the peer book (contacts, bootstrap peers, peers met) is dialled with back-off;
  unreachable peers never block anything.
- Every decision (whom to dial when, when to sync again, whom to ban, where to fill a gap)
  is the pure engine's (node/core/engine.py): this module feeds it events with the time and
  carries out the actions it returns (`_apply`).
- A peer that sends a bad signature, an oversized frame or garbage is cut off and banned
  for `ban_s`; what the store holds is never touched by it (the store refuses). A fork
  proven by the author's own signatures is the author's doing: the store keeps the proof
  and freezes the feed, the engine flags the author, the peer is kept
  (node/core/engine_events.py, "Whose fault").
- Policy hooks (a relay, node/relay/relay.py, passes them; a personal node passes none):
  `wanted` replaces "myself and whom I follow"; `serve_refusal` names a peer that is served
  nothing (it gets a sync `error` saying why). (A relay's quotas live in its writer.)
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import trio

from murmurate.crypto import encode_id
from murmurate.store import (Entry, InvalidEntryError, Reason, Store, check_signature, check_timestamp,
                             decode_frame, encode_frame)

from .core import engine_events as ev
from .core import framing, sync
from .core.engine import Engine
from .core.peer_book import PeerState
from .core.sync import ClientSession, Done, FeedWant, LiveSession, SyncProtocolError, SyncRefused, Want
from .p2p import P2PError, P2PHost, P2PRemoteError, Stream, public_key_from_peer_id
from .writer import StoreWriter

log = logging.getLogger("murmurate.replicator")

TOPIC_PREFIX = "murmurate/feed/1/"
READ_TIMEOUT_S = 30.0
# A sync stream must bring its first want this soon, and each later want within READ_TIMEOUT_S
# (a live stream may then stay quiet): an idle stream holds a stream slot and its buffer.
FIRST_WANT_TIMEOUT_S = 10.0
# While the writer is busy, a catch-up merges what arrives into batches of up to this many
# entries (or frame bytes) per store transaction: each commit waits on the disk (fsync), and
# on this machine 500-entry commits cost 85 us per entry, 2,000-entry ones 53 and 5,000-entry
# ones 47 (docs/performance.md, "Catch-up"). Memory stays bounded: one batch being stored,
# one waiting in the channel, one being merged, per fetch; decoded, an entry takes about
# 1 kB, and a relay runs several fetches at once, so 5,000 cost it 100+ MB (bench/relay.py).
STORE_BATCH_ENTRIES = 2_000
STORE_BATCH_BYTES = 1 << 20
# How long a bad signature at the end of a batch may wait for the author's next entry signed
# onto it (store_batches): a server sends that entry in the very next message.
SUSPECT_WAIT_S = 10.0
# GossipSub topics per node at most: py-libp2p copes with about 1,000 and not 5,000
# (LIBP2P-NOTES pitfall 5). Feeds beyond these travel live over sync streams only.
MAX_GOSSIP_TOPICS = 500
# Reasons that prove the sender is broken or hostile (not merely behind or early), whatever
# the author did: the peer's own fault (node/core/engine_events.py, "Whose fault").
HOSTILE = ev.PEER_FAULTS


def topic_for(author: bytes) -> str:
    return TOPIC_PREFIX + encode_id(author)


class PeerMisbehaved(Exception):
    """A peer broke the protocol or sent invalid entries."""


class Replicator:
    def __init__(self, host: P2PHost, store: Store, writer: StoreWriter, self_id: bytes, *,
                 now_ms: Callable[[], int], resync_s: float = 30.0, ban_s: float = 600.0,
                 auto_sync: bool = True, wanted: Callable[[], list[bytes]] | None = None,
                 serve_refusal: Callable[[str], str | None] | None = None, live: bool = True,
                 gossip_topics: int = 0) -> None:
        self.host = host
        self.store = store
        self.writer = writer
        self.self_id = self_id
        self.now_ms = now_ms
        self.resync_s = resync_s
        self.ban_s = ban_s
        self.auto_sync = auto_sync  # tests drive fetches by hand with False
        self.live = live
        self.gossip_topics = max(0, min(gossip_topics, MAX_GOSSIP_TOPICS))
        self._live_scopes: dict[str, trio.CancelScope] = {}
        self.live_served = 0  # live streams this node is serving now
        self._wanted = wanted
        self._serve_refusal = serve_refusal
        self.engine = Engine(resync_s=resync_s, ban_s=ban_s)
        self.ban_reasons: dict[str, str] = {}  # why each peer in `banned` was cut off (`peers` shows it)
        self._subscribed: set[bytes] = set()
        self._nursery: trio.Nursery | None = None
        self._wake = trio.Event()
        self.stats = {"gossip_in": 0, "gossip_bad": 0, "synced_entries": 0, "peers_cut_off": 0,
                      "served_entries": 0, "live_in": 0, "live_out": 0, "authors_flagged": 0}

    # The engine's state, as the daemon, the API and tests read it.
    @property
    def peers(self) -> dict[str, PeerState]:
        return self.engine.peers

    @property
    def banned(self) -> dict[str, float]:
        return self.engine.banned

    @property
    def remote_heads(self) -> dict[bytes, int]:
        return self.engine.remote_heads

    @staticmethod
    def _now() -> float:
        return time.monotonic()

    def _handle(self, event: ev.Event) -> None:
        self._apply(self.engine.handle(event, self._now()))

    def _apply(self, actions: list[ev.Action]) -> None:
        """Carry out the engine's actions (the shell's only job besides moving bytes)."""
        for action in actions:
            if isinstance(action, ev.StartSync):
                self._start(self._sync_action, action.peer_id)
            elif isinstance(action, ev.Dial):
                self._start(self._dial, action.peer_id, action.addrs)
            elif isinstance(action, ev.Ban):
                log.warning("cutting off peer %s: %s", action.peer_id, action.why)
                self.ban_reasons[action.peer_id] = action.why
                # The host's gate: from now until the ban ends, no connection, stream or gossip with it.
                self.host.set_gate("banned", lambda peer: not self._is_banned(peer))
                self.stats["peers_cut_off"] += 1
            elif isinstance(action, ev.Disconnect):
                self._start(self._hang_up, action.peer_id)
            elif isinstance(action, ev.FetchGap):
                self._start(self._fill_gap_from, action)
            elif isinstance(action, ev.RestartLive):
                for scope in self._live_scopes.values():  # live streams carry the old feed set
                    scope.cancel()
            elif isinstance(action, ev.AuthorFlagged):
                self.stats["authors_flagged"] += 1
                log.warning("author %s: %s (relayed by %s, who is kept)", encode_id(action.author), action.why,
                            action.peer_id or "no peer: found by the audit")
        if actions:
            self._wake.set()

    def _start(self, fn, *args) -> None:
        if self._nursery is not None:
            self._nursery.start_soon(fn, *args)

    # -- life cycle ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        self.host.serve(sync.PROTOCOL, self._serve_sync)
        async with trio.open_nursery() as nursery:
            self._nursery = nursery
            if self.gossip_topics:  # else the host may run without GossipSub: nothing to publish on
                nursery.start_soon(self._publish_own, self.writer.listen())
            for author in self.wanted_feeds()[:self.gossip_topics]:
                await self._subscribe(author)
            await trio.to_thread.run_sync(self._note_frozen_feeds)
            task_status.started()
            if self.auto_sync:
                nursery.start_soon(self._peer_loop)
            await trio.sleep_forever()  # the nursery runs gap fills and hang-ups until we are cancelled

    def wanted_feeds(self) -> list[bytes]:
        """Policy of a personal node: itself and the feeds it follows (or the `wanted` hook's)."""
        if self._wanted is not None:
            return self._wanted()
        return [self.self_id, *self.store.follows(self.self_id)]

    async def feeds_changed(self) -> None:
        """Call after a follow or unfollow: subscribe and fetch from everyone now."""
        wanted = set(self.wanted_feeds()[:self.gossip_topics])
        for author in wanted - self._subscribed:
            await self._subscribe(author)
        for author in self._subscribed - wanted:
            await self.host.unsubscribe(topic_for(author))
            self.host.set_validator(topic_for(author), None)
            self._subscribed.discard(author)
        self._handle(ev.FeedsChanged())  # every live stream starts again, with the new feed set
        self._wake.set()

    def add_peer(self, peer_id: str, addrs: list[str], source: str) -> None:
        self._handle(ev.PeerAdded(peer_id, tuple(addrs), source))
        self._wake.set()

    def feed_frozen(self, author: bytes, seq: int) -> None:
        """The audit found entry `seq` of `author` badly signed (node/auditor.py's hook)."""
        self._handle(ev.FeedFrozen(author, f"the author signed a chain holding a bad signature (entry {seq})"))

    def _note_frozen_feeds(self) -> None:
        """Feeds frozen before this run (a fork, an author's bad signature) show in status too."""
        for info in self.store.feeds():
            if info.forked or info.bad_signature:
                why = "fork: the author signed two histories" if info.forked else \
                    "the author signed a chain holding a bad signature"
                self.engine.flagged.setdefault(info.author, why)

    # -- serving ---------------------------------------------------------------------------

    async def _serve_sync(self, stream: Stream) -> None:
        if self._is_banned(stream.remote_peer):
            await stream.reset()
            return
        channel = _MessageStream(stream)
        refusal = self._serve_refusal(stream.remote_peer) if self._serve_refusal is not None else None
        if refusal:
            log.info("refusing sync to %s: %s", stream.remote_peer, refusal)
            try:
                await channel.send(sync.Error(refusal))
                await stream.close()
            except P2PError:
                pass
            return
        live: dict[bytes, int] = {}  # feeds wanted on this stream -> the last seq the client has
        commits = None
        first = True  # budget: a timeout on every want
        try:
            while True:
                with trio.fail_after(FIRST_WANT_TIMEOUT_S if first else READ_TIMEOUT_S):  # budget
                    message = await channel.receive()
                first = False  # budget
                if message is None:
                    return
                if not isinstance(message, Want):
                    raise SyncProtocolError("expected want")
                # Listen before reading the heads, so no commit falls between catch-up and live.
                commits = self.writer.listen() if message.live else None
                authors = [f.author for f in message.feeds]
                heads = await trio.to_thread.run_sync(self.store.heads, authors)
                answer, ranges = sync.plan_serve(message, heads)
                await channel.send(answer)
                for author, low, high in ranges:
                    await self._send_range(channel, author, low, high)
                await channel.send(Done())
                live.update(sync.live_start(message, heads))
                if commits is not None:
                    # An author's own feed is never pushed back to them: they wrote it.
                    live.pop(public_key_from_peer_id(stream.remote_peer) or b"", None)
                    await self._serve_live(channel, live, commits)
                    return
        except (SyncProtocolError, framing.FrameError) as e:
            self._cut_off(stream.remote_peer, f"sync request: {e}")
            await stream.reset()
        except P2PError as e:  # the connection was cut: the client asks again from what it has
            log.info("serving sync to %s ended: %s", stream.remote_peer, e)
        except trio.TooSlowError:  # budget: an idle stream is closed (no ban: maybe a slow network)
            log.info("sync stream from %s sent no want in time", stream.remote_peer)
            await stream.reset()
        finally:
            if commits is not None:
                # A listener left open would hold up to 1,024 commits before the writer drops it.
                commits.close()

    async def _send_range(self, channel: "_MessageStream", author: bytes, low: int, high: int) -> int:
        """Send entries low..high of a feed in batches; returns the last seq sent."""
        seq, last = low, low - 1
        while seq <= high:
            top = min(high, seq + sync.MAX_BATCH_ENTRIES - 1)
            frames = await trio.to_thread.run_sync(self.store.frames, author, seq, top)
            if not frames:
                break
            for batch in sync.batches(author, frames):
                await channel.send(batch)
            self.stats["served_entries"] += len(frames)
            last = seq + len(frames) - 1
            seq = top + 1
        return last

    async def _serve_live(self, channel: "_MessageStream", sent: dict[bytes, int], commits) -> None:
        """Push the stream's feeds as they grow, until the client closes the stream (it sends
        nothing more) or this node falls too far behind it (the listener is closed: the
        stream ends and the client catches up again later)."""
        self.live_served += 1
        try:
            with _first_error():
                async with trio.open_nursery() as nursery:
                    async def until_client_leaves() -> None:
                        if await channel.receive() is not None:
                            raise SyncProtocolError("a message after a live want")
                        nursery.cancel_scope.cancel()

                    nursery.start_soon(until_client_leaves)
                    async with commits:
                        async for commit in commits:
                            # The commit names what it appended, in order: the last seq of a
                            # feed in it is that feed's head now (no store read per stream).
                            heads = {a: seq for a, seq in commit.appended if a in sent}
                            for author, low, high in sync.live_ranges(sent, heads):
                                last = await self._send_range(channel, author, low, high)
                                if last >= low:
                                    sent[author] = last
                                    self.stats["live_out"] += last - low + 1
                    nursery.cancel_scope.cancel()  # fell behind: end the stream
        finally:
            self.live_served -= 1

    # -- fetching --------------------------------------------------------------------------

    async def fetch(self, peer_id: str, wants: list[FeedWant], *, live: bool = False,
                    caught_up: Callable[[int], None] | None = None) -> int:
        """Fetch what `peer_id` has beyond our heads. Returns entries stored.

        More than MAX_FEEDS_PER_WANT feeds go as several wants on one stream. With `live`,
        the last want is a live one: once caught up (`caught_up(stored)` is called), the
        stream stays open and takes the entries the peer pushes, until the peer ends it or
        the caller cancels.

        Raises PeerMisbehaved (and bans the peer) on protocol violations or invalid
        entries; P2PError when the peer cannot be reached.
        """
        if self._is_banned(peer_id) or not wants:
            return 0
        stream = await self.host.open_stream(peer_id, sync.PROTOCOL)
        channel = _MessageStream(stream)
        chunks = [wants[i:i + sync.MAX_FEEDS_PER_WANT] for i in range(0, len(wants), sync.MAX_FEEDS_PER_WANT)]
        stored = 0
        # bounded: one batch waiting while one is stored (see STORE_BATCH_ENTRIES); None marks
        # the end of the catch-up
        send, recv = trio.open_memory_channel[list[Entry] | None](1)

        async def read_batches() -> None:
            # Small messages (one per feed: 100 entries each when catching up on many feeds)
            # are merged while the store is busy, so the writer commits fewer, larger
            # transactions; an idle store gets what there is at once. Live entries go at once.
            pending: list[Entry] = []
            pending_bytes = 0
            async with send:
                next_seqs: dict[bytes, int] = {}
                for i, chunk in enumerate(chunks):
                    session = ClientSession(Want(tuple(chunk), live and i == len(chunks) - 1))
                    await channel.send(session.want)
                    heads_noted = False
                    while not session.done:
                        message = await self._receive(channel)
                        if message is None:
                            raise SyncProtocolError("stream ended before done")
                        entries = session.on_message(message)
                        if session.remote_heads is not None and not heads_noted:
                            heads_noted = True  # once: heads come once, and may name 10,000 feeds
                            self._note_heads(session.remote_heads)
                        if entries:
                            pending.extend(entries)
                            pending_bytes += sum(len(f) for f in message.frames)  # type: ignore[union-attr]
                        if pending and (session.done or len(pending) >= STORE_BATCH_ENTRIES
                                        or pending_bytes >= STORE_BATCH_BYTES
                                        or send.statistics().tasks_waiting_receive):
                            await send.send(pending)
                            pending, pending_bytes = [], 0
                    next_seqs.update(session.next_seqs())
                await send.send(None)
                if not live:
                    return
                session = LiveSession(next_seqs)
                while True:
                    message = await channel.receive()  # no time limit: a quiet feed is quiet
                    if message is None:
                        return  # the peer ended the live stream
                    entries = session.on_message(message)
                    if entries:
                        self._note_heads({entries[-1].envelope.author: entries[-1].envelope.seq})
                        await send.send(entries)

        async def store_batches() -> None:
            nonlocal stored
            live_phase = False
            # A feed's last entry in a batch whose signature failed: the next batch may bring
            # the author's next entry signed onto it, which proves the author made it (an
            # honest peer holds such an entry on that next entry's word and sends both). It
            # goes again with that batch; if the sync ends without one, the peer made it.
            # A server sends a feed's range in order, message after message, so that next
            # entry comes in the very next batch or not at all (SUSPECT_WAIT_S bounds the wait
            # on a quiet live stream).
            suspects: list[Entry] = []
            async with recv:
                while True:
                    with trio.move_on_after(SUSPECT_WAIT_S if suspects else math.inf) as quiet:
                        try:
                            entries = await recv.receive()
                        except trio.EndOfChannel:
                            break
                    if quiet.cancelled_caught:
                        _judge(suspects)  # raises: nothing came to vouch for them
                    if entries is None:
                        live_phase = True
                        _judge(suspects)
                        if caught_up is not None:
                            caught_up(stored)
                        continue
                    batch, waiting = _with_suspects(entries, suspects)
                    _judge(waiting)
                    report = await self.writer.ingest(batch, self.now_ms())
                    stored += len(report.appended)
                    # Counted as stored, not when the stream ends: `peers` shows a live stream's.
                    if peer_id in self.peers:
                        self.engine.note_received(peer_id, len(report.appended))
                    self.stats["live_in" if live_phase else "synced_entries"] += len(report.appended)
                    suspects = self._judge_rejections(peer_id, batch, report.rejected)
                _judge(suspects)

        try:
            with _first_error():
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(read_batches)
                    nursery.start_soon(store_batches)
            await stream.close()
        except (SyncProtocolError, framing.FrameError, PeerMisbehaved) as e:
            self._cut_off(peer_id, str(e))
            await stream.reset()
            raise PeerMisbehaved(str(e)) from None
        except trio.TooSlowError:
            await stream.reset()
            raise P2PRemoteError(f"{peer_id} sent nothing for {READ_TIMEOUT_S} s during a sync") from None
        except SyncRefused as e:
            await stream.reset()
            raise P2PRemoteError(f"{peer_id}: {e}") from None
        except BaseException:
            # Bounded: a stuck reset must not hold this sync (and so the peer) forever.
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await stream.reset()
            raise
        return stored

    def _judge_rejections(self, peer_id: str, batch: list[Entry], rejected) -> list[Entry]:
        """Sort a batch's refusals by whose fault they are (engine_events.py): the peer's
        raise PeerMisbehaved; the author's flag the author and keep the peer. Returns the
        suspects to send again with the next batch (see store_batches)."""
        last_of_feed = {e.envelope.author: e.envelope.seq for e in batch}
        suspects = []
        for r in rejected:
            fault = ev.fault_of(r.reason)
            if fault is ev.Fault.AUTHOR:
                self._handle(ev.PeerMisbehaviour(peer_id, r.message, fault, r.author))
            elif fault is ev.Fault.PEER:
                if r.reason is Reason.BAD_SIGNATURE and last_of_feed.get(r.author) == r.seq:
                    suspects.extend(e for e in batch if (e.envelope.author, e.envelope.seq) == (r.author, r.seq))
                    continue
                raise PeerMisbehaved(f"sent an invalid entry: {r.message}")
        return suspects

    @staticmethod
    async def _receive(channel: "_MessageStream") -> sync.Message | None:
        # A peer that goes silent without closing must not hold a catch-up (and the peer's
        # later resyncs) forever.
        with trio.fail_after(READ_TIMEOUT_S):
            return await channel.receive()

    def _note_heads(self, heads: dict[bytes, int]) -> None:
        self._handle(ev.HeadsSeen(tuple(heads.items())))

    def wants(self, authors: list[bytes] | None = None) -> list[FeedWant]:
        authors = authors if authors is not None else self.wanted_feeds()
        heads = self.store.heads(authors)
        return [FeedWant(a, heads.get(a, 0)) for a in authors]

    async def sync_with(self, peer_id: str) -> int:
        """Sync with `peer_id` now, unless a sync with it runs already (see _sync_action)."""
        if not self.engine.begin_sync(peer_id, self._now()):
            return 0
        return await self._sync_action(peer_id)

    async def _sync_action(self, peer_id: str) -> int:
        """The engine's StartSync: catch up from `peer_id`; then, if this node syncs live, stay
        on the stream and take what the peer pushes until the stream ends (the peer goes,
        falls behind, or our feed set changes). Returns the entries the catch-up stored.
        Tells the engine how it went (SyncCaughtUp, SyncEnded): it decides when to sync again."""
        started = self._now()
        caught = 0

        def caught_up(stored: int) -> None:
            nonlocal caught
            caught = stored
            self._handle(ev.SyncCaughtUp(peer_id, stored, self.live))
            if stored:  # an idle resync stays quiet; a catch-up is worth a line (and bench/sync.py reads it)
                log.info("synced with %s: %d entries stored in %.3f s", peer_id, stored, self._now() - started)

        scope = trio.CancelScope()  # RestartLive cancels it: the feed set is the stream's
        self._live_scopes[peer_id] = scope
        outcome = ev.SyncOutcome.COMPLETED
        try:
            wants = await trio.to_thread.run_sync(self.wants)
            with scope:
                await self.fetch(peer_id, wants, live=self.live, caught_up=caught_up)
            if self.live and not scope.cancelled_caught:
                log.info("live sync with %s ended", peer_id)
                outcome = ev.SyncOutcome.LIVE_ENDED  # it fell behind, or is going: catch up again soon
            return caught
        except PeerMisbehaved as e:
            log.info("sync with %s failed: %s", peer_id, e)
            outcome = ev.SyncOutcome.MISBEHAVED  # banned, not retried
            return caught
        except P2PError as e:
            log.info("sync with %s failed: %s", peer_id, e)
            outcome = ev.SyncOutcome.FAILED
            return caught
        finally:
            if self._live_scopes.get(peer_id) is scope:
                del self._live_scopes[peer_id]
            if scope.cancel_called:
                outcome = ev.SyncOutcome.CANCELLED  # start again at once, with the new feed set
            self._handle(ev.SyncEnded(peer_id, outcome))

    # -- live ------------------------------------------------------------------------------

    async def _subscribe(self, author: bytes) -> None:
        if author in self._subscribed:
            return
        self._subscribed.add(author)
        topic = topic_for(author)
        self.host.set_validator(topic, lambda peer, data: self._validate_gossip(peer, topic, data))
        subscription = await self.host.subscribe(topic)
        assert self._nursery is not None
        self._nursery.start_soon(self._read_topic, author, subscription)

    async def _read_topic(self, author: bytes, subscription) -> None:
        async for message in subscription:
            if author not in self._subscribed:
                return
            self.stats["gossip_in"] += 1
            try:
                item = decode_frame(message.data)
            except InvalidEntryError:
                self.stats["gossip_bad"] += 1
                continue
            if item.envelope.author != author:
                self.stats["gossip_bad"] += 1
                continue
            report = await self.writer.ingest([item], self.now_ms())
            if report.held:
                self._fill_gap(message.from_peer, author)

    def _validate_gossip(self, from_peer: str, topic: str, data: bytes) -> bool:
        """Checked before GossipSub forwards a message: only valid, signed entries of the
        topic's author travel on."""
        try:
            item = decode_frame(data)
            if topic != topic_for(item.envelope.author):
                return False
            check_signature(item.envelope)
            check_timestamp(item.envelope, self.now_ms())
            return True
        except InvalidEntryError:
            return False

    def _fill_gap(self, peer_id: str, author: bytes) -> None:
        self._note_connections()  # the candidates are the peers connected now
        self._handle(ev.GapSeen(peer_id, author))

    async def _fill_gap_from(self, action: ev.FetchGap) -> None:
        """The engine's FetchGap: fetch the entries missing before a gossiped one from each
        candidate in turn, until the held entries are reached."""
        try:
            for candidate in action.candidates:
                try:
                    await self.fetch(candidate, self.wants([action.author]))
                except (P2PError, PeerMisbehaved) as e:
                    log.info("gap fill from %s failed: %s", candidate, e)
                    continue
                info = self.store.feed_info(action.author)
                if info is None or info.held == 0:
                    return
        finally:
            self._handle(ev.GapFillEnded(action.peer_id, action.author))

    async def _publish_own(self, commits) -> None:
        async for commit in commits:
            for author, seq in commit.appended:
                if author != self.self_id:
                    continue
                stored = await trio.to_thread.run_sync(self.store.get, author, seq)
                if stored is not None:
                    await self.host.publish(topic_for(author), encode_frame(stored.entry))

    # -- peers -----------------------------------------------------------------------------

    async def _peer_loop(self) -> None:
        """Tell the engine who is connected (the host has no connection events: it is asked
        at least every second) and run what its timer makes due."""
        while True:
            now = self._now()
            self._note_connections()
            self._apply(self.engine.handle_timer(now))
            self._wake = trio.Event()
            due = self.engine.next_timer(now)
            with trio.move_on_after(1.0 if due is None else min(1.0, max(0.0, due - now))):
                await self._wake.wait()

    def _note_connections(self) -> None:
        connected = set(self.host.connected_peers())
        for peer_id in sorted(connected - self.engine.connected):
            self._handle(ev.PeerConnected(peer_id))
        for peer_id in sorted(self.engine.connected - connected):
            self._handle(ev.PeerDisconnected(peer_id))

    async def _dial(self, peer_id: str, addrs: tuple[str, ...]) -> None:
        for addr in addrs:
            full = addr if "/p2p/" in addr else f"{addr}/p2p/{peer_id}"
            try:
                with trio.fail_after(10):
                    await self.host.dial(full)
                log.info("connected to %s", peer_id)
                self._handle(ev.DialSucceeded(peer_id))
                self._handle(ev.PeerConnected(peer_id))
                return
            except (P2PError, trio.TooSlowError, OSError) as e:
                self._handle(ev.DialFailed(peer_id, str(e) or type(e).__name__))

    def _is_banned(self, peer_id: str) -> bool:
        return self.engine.is_banned(peer_id, self._now())

    def _cut_off(self, peer_id: str, why: str) -> None:
        """Ban a peer for what it did itself (a protocol break, an invalid entry it sent)."""
        self._handle(ev.PeerMisbehaviour(peer_id, why, ev.Fault.PEER))

    async def _hang_up(self, peer_id: str) -> None:
        try:
            await self.host.disconnect(peer_id)
        except P2PError:
            pass

    # -- status ----------------------------------------------------------------------------

    def status(self) -> dict:
        wanted = self.wanted_feeds()
        heads = self.store.heads(wanted)
        # Peers that push us new entries of a feed: those on its topic, and every peer with a
        # live sync stream open to us (it pushes whatever it stores of the feeds we want).
        live_streams = self.engine.live_streams()
        feeds = []
        for author in wanted:
            have = heads.get(author, 0)
            known = max(self.remote_heads.get(author, 0), have)
            on_topic = len(self.host.topic_peers(topic_for(author))) if author in self._subscribed else 0
            feeds.append({"id": encode_id(author), "have": have, "known": known, "behind": known - have,
                          "live_peers": on_topic + live_streams, "frozen": self.engine.flagged.get(author)})
        return {"feeds": feeds, "stats": dict(self.stats), "live_streams": live_streams,
                "live_served": self.live_served, "peers": len(self.host.connected_peers()),
                "banned": len(self.banned),
                "flagged_authors": [{"id": encode_id(a), "why": why} for a, why in self.engine.flagged.items()]}


def _with_suspects(entries: list[Entry], suspects: list[Entry]) -> tuple[list[Entry], list[Entry]]:
    """Put each suspect just before its feed's next entry, so one signature check covers
    both (store/verify.py verify_chained). Returns the batch and the suspects whose feed
    has nothing new in it (they wait on)."""
    if not suspects:
        return entries, []
    out = list(entries)
    waiting = []
    for suspect in suspects:
        env = suspect.envelope
        at = next((i for i, e in enumerate(out) if e.envelope.author == env.author and e.envelope.seq == env.seq + 1), None)
        if at is None:
            waiting.append(suspect)
        else:
            out.insert(at, suspect)
    return out, waiting


def _judge(suspects: list[Entry]) -> None:
    """The sync (or its catch-up part) ended: a bad signature nothing vouched for is the peer's."""
    if suspects:
        env = suspects[0].envelope
        raise PeerMisbehaved(f"sent an invalid entry: bad_signature: entry {env.seq} of {encode_id(env.author)} "
                             "does not verify, and nothing the peer sent vouches for it")


@contextmanager
def _first_error() -> Iterator[None]:
    """Re-raise the first error of a nursery's group as itself, so callers can catch it."""
    try:
        yield
    except BaseExceptionGroup as group:
        first = group.exceptions[0]
        while isinstance(first, BaseExceptionGroup):
            first = first.exceptions[0]
        raise first from None


class _MessageStream:
    """Sync messages over a Stream, framed, with the size limit enforced while reading."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.decoder = framing.FrameDecoder(sync.MAX_MESSAGE_BYTES)

    async def send(self, message: sync.Message) -> None:
        await self.stream.write(framing.encode(sync.encode(message)))

    async def receive(self) -> sync.Message | None:
        """The next message, or None at a clean end of stream."""
        while True:
            frame = self.decoder.next_frame()
            if frame is not None:
                await self.stream.hold(self.decoder.buffered)  # budget
                return sync.decode(frame)
            data = await self.stream.read(256 * 1024)
            if not data:
                if self.decoder.at_boundary():
                    return None
                # A connection that drops mid-frame is the network's doing, not the peer's:
                # no ban (bench/relay.py saw honest sources banned for it under load).
                raise P2PRemoteError("the stream ended inside a frame")
            self.decoder.feed(data)
            await self.stream.hold(self.decoder.buffered)  # budget: a partial frame is charged

