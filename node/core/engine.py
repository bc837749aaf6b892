"""The replication engine: every decision of replication, without I/O (as aioquic's
QuicConnection and h11 do it).

Events go in with the time (`handle(event, now)`), actions come out; `handle_timer(now)`
returns what the clock makes due (dials, syncs), and `next_timer()` says when to call it
next. The trio shell (node/replicator.py) runs the actions over libp2p and the store; the
simulator (tests/sim/) runs them over an in-memory network with virtual time, so the same
decisions are tested on 1,000 nodes.

What it decides:
- the peer book: peers to dial, with back-off doubling from 1 s to 300 s per peer;
- syncs: with every connected peer at once, again every `resync_s`; after a sync that
  failed or a live stream that ended, again after 1 s, then 2, 4, ... up to `resync_s`;
  when the wanted feeds change, every live stream starts again at once;
- gaps: an entry held beyond a gap is fetched from the peer that showed it, then from the
  other connected peers, one fill per (peer, feed) at a time;
- faults: a peer that did wrong itself is banned for `ban_s` and hung up on; an author
  whose own signatures prove a fork is flagged (the store froze the feed), and the peer
  that relayed it is kept (engine_events.py says whose fault what is);
- what peers announce: the highest head seen per feed (`remote_heads`, for status).
Policy (which feeds a node wants, whom it serves) stays outside, in the shell's hooks.
"""

from __future__ import annotations

from . import engine_events as ev
from .peer_book import PeerState


class Engine:
    def __init__(self, *, resync_s: float = 30.0, ban_s: float = 600.0) -> None:
        self.resync_s = resync_s
        self.ban_s = ban_s
        self.peers: dict[str, PeerState] = {}
        self.connected: set[str] = set()
        self.banned: dict[str, float] = {}  # peer -> until
        self.remote_heads: dict[bytes, int] = {}
        self.flagged: dict[bytes, str] = {}  # author -> why its feed is frozen
        self._syncing: set[str] = set()
        self._gap_fills: set[tuple[str, bytes]] = set()

    # -- queries ----------------------------------------------------------------------------

    def is_banned(self, peer_id: str, now: float) -> bool:
        until = self.banned.get(peer_id)
        return until is not None and until > now

    def is_syncing(self, peer_id: str) -> bool:
        return peer_id in self._syncing

    def live_streams(self) -> int:
        return sum(1 for p in self.peers.values() if p.live)

    def peer(self, peer_id: str) -> PeerState:
        state = self.peers.get(peer_id)
        if state is None:
            state = self.peers[peer_id] = PeerState(peer_id)
        return state

    # -- timers -----------------------------------------------------------------------------

    def next_timer(self, now: float) -> float | None:
        """When handle_timer next has something to do (None: only an event can change that)."""
        times = []
        for peer_id in self.connected:
            state = self.peers.get(peer_id)
            if peer_id in self._syncing or self.is_banned(peer_id, now):
                continue
            times.append(now if state is None or state.synced_at is None else state.resync_at(self.resync_s))
        for state in self.peers.values():
            if state.peer_id in self.connected or not state.addrs:
                continue
            times.append(max(state.next_dial, self.banned.get(state.peer_id, 0.0)))
        return min(times) if times else None

    def handle_timer(self, now: float) -> list[ev.Action]:
        """Syncs and dials due now."""
        actions: list[ev.Action] = []
        for peer_id in sorted(self.connected):
            if self.is_banned(peer_id, now) or peer_id in self._syncing:
                continue
            state = self.peer(peer_id)
            if state.resync_due(now, self.resync_s):
                state.synced_at = now
                self.begin_sync(peer_id, now)
                actions.append(ev.StartSync(peer_id))
        for state in list(self.peers.values()):
            if state.peer_id in self.connected or self.is_banned(state.peer_id, now) or not state.dial_due(now):
                continue
            state.note_dial(now)
            actions.append(ev.Dial(state.peer_id, tuple(state.addrs)))
        return actions

    # -- events -----------------------------------------------------------------------------

    def handle(self, event: ev.Event, now: float) -> list[ev.Action]:
        """Take one event; return what to do now (timed work comes from handle_timer)."""
        if isinstance(event, ev.PeerAdded):
            self.peer(event.peer_id).add_addrs(event.addrs, event.source)
        elif isinstance(event, ev.PeerConnected):
            self.connected.add(event.peer_id)
            self.peer(event.peer_id)
        elif isinstance(event, ev.PeerDisconnected):
            self.connected.discard(event.peer_id)
        elif isinstance(event, ev.DialSucceeded):
            self.peer(event.peer_id).note_dial_success()
        elif isinstance(event, ev.DialFailed):
            self.peer(event.peer_id).last_error = event.error
        elif isinstance(event, ev.SyncCaughtUp):
            state = self.peer(event.peer_id)
            state.synced_at = now
            state.live = event.live
        elif isinstance(event, ev.SyncEnded):
            self._sync_ended(event, now)
        elif isinstance(event, ev.HeadsSeen):
            for author, seq in event.heads:
                if seq > self.remote_heads.get(author, 0):
                    self.remote_heads[author] = seq
        elif isinstance(event, ev.GapSeen):
            return self._gap_seen(event, now)
        elif isinstance(event, ev.GapFillEnded):
            self._gap_fills.discard((event.peer_id, event.author))
        elif isinstance(event, ev.FeedsChanged):
            for state in self.peers.values():
                state.synced_at = None
            return [ev.RestartLive()]
        elif isinstance(event, ev.PeerMisbehaviour):
            return self._misbehaved(event, now)
        elif isinstance(event, ev.FeedFrozen):
            if event.author not in self.flagged:
                self.flagged[event.author] = event.why
                return [ev.AuthorFlagged(event.author, event.why, "")]
        else:  # pragma: no cover - a new event type without a branch is our bug
            raise TypeError(f"unknown event {event!r}")
        return []

    def begin_sync(self, peer_id: str, now: float) -> bool:
        """Note a sync with the peer starting now (a StartSync, or one asked for by hand);
        False if one runs already. A SyncEnded must follow."""
        if peer_id in self._syncing:
            return False
        self._syncing.add(peer_id)
        self.peer(peer_id).sync_started = now
        return True

    def note_received(self, peer_id: str, count: int) -> None:
        """Entries a fetch from this peer stored (any fetch: sync, gap fill, by hand)."""
        if count:
            self.peer(peer_id).entries_received += count

    def _sync_ended(self, event: ev.SyncEnded, now: float) -> None:
        state = self.peer(event.peer_id)
        self._syncing.discard(event.peer_id)
        state.live = False
        if event.outcome is ev.SyncOutcome.CANCELLED:
            state.synced_at = None  # start again at once, with the new feed set
        elif event.outcome in (ev.SyncOutcome.LIVE_ENDED, ev.SyncOutcome.FAILED):
            state.retry_soon(now, self.resync_s)
        state.sync_started = None

    def _gap_seen(self, event: ev.GapSeen, now: float) -> list[ev.Action]:
        key = (event.peer_id, event.author)
        if key in self._gap_fills:
            return []
        self._gap_fills.add(key)
        others = sorted(p for p in self.connected if p != event.peer_id and not self.is_banned(p, now))
        first = [event.peer_id] if event.peer_id in self.connected else []
        return [ev.FetchGap(event.peer_id, event.author, tuple(first + others))]

    def _misbehaved(self, event: ev.PeerMisbehaviour, now: float) -> list[ev.Action]:
        if event.fault is ev.Fault.PEER:
            until = now + self.ban_s
            self.banned[event.peer_id] = until
            return [ev.Ban(event.peer_id, until, event.why), ev.Disconnect(event.peer_id)]
        if event.fault is ev.Fault.AUTHOR and event.author is not None and event.author not in self.flagged:
            self.flagged[event.author] = event.why
            return [ev.AuthorFlagged(event.author, event.why, event.peer_id)]
        return []
