"""The peer book as the replication engine keeps it: one record per peer it knows of, with
its dial back-off and its sync timers. Pure: the engine passes the time in."""

from __future__ import annotations

from dataclasses import dataclass, field

RETRY_FIRST_S = 1.0
MAX_BACKOFF_S = 300.0
MAX_ADDRS = 8


@dataclass
class PeerState:
    """Mutable, owned by the engine (node/core/engine.py); the shell and status() read it."""

    peer_id: str
    addrs: list[str] = field(default_factory=list)
    source: str = "met"
    next_dial: float = 0.0
    backoff: float = 1.0
    last_error: str = ""
    synced_at: float | None = None
    entries_received: int = 0
    live: bool = False  # a live sync stream from this peer is open
    # After a sync that failed or a live stream that ended, try again this soon (doubling up
    # to resync_s), not a whole resync_s later: a cut early in the first sync must not leave
    # a new follower without the feed for half a minute.
    retry_s: float = RETRY_FIRST_S
    sync_started: float | None = None  # set while a sync with this peer runs

    def add_addrs(self, addrs: list[str] | tuple[str, ...], source: str) -> None:
        self.addrs = list(dict.fromkeys([*addrs, *self.addrs]))[:MAX_ADDRS]
        self.source = source if self.source == "met" else self.source
        self.next_dial = 0.0

    def dial_due(self, now: float) -> bool:
        return bool(self.addrs) and now >= self.next_dial

    def note_dial(self, now: float) -> None:
        """A dial starts now: the next one waits the back-off, which doubles up to 300 s."""
        self.next_dial = now + self.backoff
        self.backoff = min(self.backoff * 2, MAX_BACKOFF_S)

    def note_dial_success(self) -> None:
        self.backoff = 1.0
        self.last_error = ""

    def resync_due(self, now: float, resync_s: float) -> bool:
        # The same sum next_timer() names, not `now - synced_at >= resync_s`: in floating
        # point that can stay false at the very time named, and the timer would fire forever.
        return self.synced_at is None or now >= self.resync_at(resync_s)

    def resync_at(self, resync_s: float) -> float:
        return (self.synced_at or 0.0) + resync_s

    def retry_soon(self, now: float, resync_s: float) -> None:
        """Sync again after retry_s, doubling the wait each time up to resync_s; a sync that
        held for a whole resync_s starts over at 1 s."""
        started = self.sync_started if self.sync_started is not None else now
        if now - started >= resync_s:
            self.retry_s = RETRY_FIRST_S
        self.synced_at = now - resync_s + self.retry_s
        self.retry_s = min(self.retry_s * 2, resync_s)
