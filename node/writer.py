"""The one task that writes to the store.

It is the only holder of the writable Store: everything else in the node reads through
`view` (a StoreView, which has no write methods). Every write (entries from peers, the
user's own posts, imports, dropped payloads, local settings, the peer book) goes through a
bounded channel to this task as a job `fn(store)`, run in a worker thread
(`trio.to_thread.run_sync`). The store keeps what each committed transaction appended
(Store.record_commits), so after every job the writer tells its listeners, whatever write
made the commit. Callers wait for their own result; a full channel makes them wait
(back-pressure).

The audit (node/auditor.py) checks later the signatures ingest took on a later entry's
word; it waits for commits to pause, so a feed that floods without pause would outrun it.
Once `max_unaudited` entries wait, ingest checks every signature of live entries itself
until the audit catches up: the backlog stays under max_unaudited plus one live batch,
and a live flood's intake slows to what the cores can verify (bench/flood.py). A
catch-up is not throttled so: it ends (it brings what the peer holds, at most the
per-feed caps), and then commits pause and the audit runs; checking all of a 100,000-entry
catch-up's signatures would halve its rate (docs/performance.md, "Catch-up").

With `caps` (node/core/caps.py), ingest also stops other authors' feeds at the per-feed
caps and the node at its size cap, before storing: such entries come back in the report's
`rejected` as FEED_CAP / NODE_CAP (the replicator bans no one for them), and `capped` /
`node_full` say what is refused now (the API's status, the relay's metrics).
"""

from __future__ import annotations

import dataclasses
import logging
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from murmurate.crypto import SigningIdentity
from murmurate.crypto import encode_id
from murmurate.store import Entry, IngestReport, Reason, Rejected, Store, StoreView

from .core import caps as storage
from .feed_usage import account

log = logging.getLogger("murmurate.writer")


@dataclass(frozen=True)
class Committed:
    """Entries appended by one write job (one transaction, or several: an import), in order:
    (author, seq), and their payload types. `own`: the job appended this node's own entries.
    `caps`: what the storage caps began refusing in this job, (author, why) per feed newly
    capped and (b"", why) when the whole store fills (such a job may append nothing)."""

    appended: tuple[tuple[bytes, int], ...]
    own: bool = False
    types: tuple[int, ...] = ()
    caps: tuple[tuple[bytes, str], ...] = ()
    cut: tuple[tuple[bytes, int], ...] = ()  # feeds the audit cut at a bad signature: (author, seq)


@dataclass
class _Job:
    run: Callable[[Store], Any]
    done: trio.Event = field(default_factory=trio.Event)
    result: Any = None
    error: BaseException | None = None


MAX_UNAUDITED = 10_000


class StoreWriter:
    def __init__(self, store: Store, *, queue: int = 64, max_unaudited: int = MAX_UNAUDITED,
                 caps: storage.StorageCaps | None = None) -> None:
        self._store = store
        store.record_commits()
        self.view: StoreView = store.view()
        self.max_unaudited = max_unaudited
        self.caps = caps
        self.capped: dict[bytes, str] = {}  # feeds refused by the per-feed caps -> why
        self.node_full = ""                 # why the node cap refuses entries now ("" while it does not)
        self.cap_refused = 0                # entries refused by the caps since start
        # Feed sizes as the caps last saw them, moved on by what ingest appends: a catch-up's
        # batch names hundreds of feeds, and recounting each from the store cost ~20% of its
        # rate. Any other write job (an import, an audit) may change them: it clears this.
        self._sizes: dict[bytes, storage.Usage] = {}
        self._cap_news: list[tuple[bytes, str]] = []  # for the next Committed (filled in the job's thread)
        self.fully_verified = 0  # entries ingested with every signature checked: the audit lagged
        self._send, self._recv = trio.open_memory_channel[_Job](queue)
        self._listeners: list[trio.MemorySendChannel[Committed]] = []
        self._committed = trio.Event()
        self.transactions = 0

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        async with self._recv:
            async for job in self._recv:
                # Announced: what the writer's own jobs commit. (Only a test can write around
                # the writer, through the Store it handed over; that is not announced.)
                self._store.take_commits()
                try:
                    job.result = await trio.to_thread.run_sync(job.run, self._store)
                except Exception as e:  # handed to the caller, who decides
                    job.error = e
                self.transactions += 1
                job.done.set()
                # What the job committed, even if it failed part way (an import stopped by
                # a damaged frame keeps, and announces, what it stored).
                commits = self._store.take_commits()
                news, self._cap_news = tuple(self._cap_news), []
                if commits or news:
                    self._notify(Committed(tuple(ref for c in commits for ref in c.appended),
                                           any(c.own for c in commits),
                                           tuple(t for c in commits for t in c.types), news,
                                           tuple(ref for c in commits for ref in c.cut)))
                if commits:
                    self._committed.set()
                    self._committed = trio.Event()

    def next_commit(self) -> trio.Event:
        """An event set by the next transaction that appends something. For tasks that only
        need waking (the audit): unlike a listener, nothing piles up while they are busy.
        Take it before doing the work it should wake you for again."""
        return self._committed

    def listen(self, buffer: int = 1024) -> trio.MemoryReceiveChannel[Committed]:
        """A channel of commits. A listener that falls `buffer` commits behind is closed
        (it sees the end of the channel) rather than slowing the writer."""
        send, recv = trio.open_memory_channel[Committed](buffer)
        self._listeners.append(send)
        return recv

    async def ingest(self, entries: Sequence[Entry], now_ms: int, *, live: bool = False) -> IngestReport:
        """Store entries from peers. `live`: pushed as they were stored (a live stream), not
        a catch-up: these are checked in full while the audit lags."""
        return await self._submit(lambda store: self.ingest_now(store, entries, now_ms, live))

    def ingest_now(self, store: Store, entries: Sequence[Entry], now_ms: int, live: bool = False) -> IngestReport:
        """Ingest inside a write job: one signature per run, except live entries while
        max_unaudited entries wait for the audit (then every signature)."""
        refused: list[storage.Refusal] = []
        if self.caps is not None and entries:
            entries, refused = self._within_caps(store, entries)
        defer = not live or store.unaudited_count() < self.max_unaudited
        if not defer:
            self.fully_verified += len(entries)
        report = store.ingest(entries, now_ms, defer_audit=defer) if entries else IngestReport()
        if self.caps is not None and report.appended:
            self._moved_on(entries, report)
        if refused:
            report = dataclasses.replace(report, rejected=report.rejected + tuple(
                Rejected(r.author, r.seq, r.reason, f"{r.reason.value}: {r.message}") for r in refused))
        return report

    def _within_caps(self, store: Store, entries: Sequence[Entry]) -> tuple[Sequence[Entry], list[storage.Refusal]]:
        assert self.caps is not None
        own = store.self_id
        feeds = {}
        for author in {e.envelope.author for e in entries}:
            if author != own:
                known = self._sizes.get(author)
                feeds[author] = known if known is not None else account(store, author, save_after=1_000)
        self._sizes.update(feeds)
        used, map_size = store.space()
        room = storage.node_room(used, map_size, shutil.disk_usage(store.path).free, self.caps)
        kept, refused = storage.fit(entries, feeds, self.caps, room, own)
        node_full = ""
        for r in refused:
            if r.reason is Reason.NODE_CAP:
                node_full = r.message
            elif r.author not in self.capped:
                self.capped[r.author] = r.message
                self._cap_news.append((r.author, r.message))
                log.warning("storage cap: %s: %s", encode_id(r.author), r.message)
        if node_full and not self.node_full:
            self._cap_news.append((b"", node_full))
            log.warning("storage cap: %s", node_full)
        if refused or kept:
            self.node_full = node_full  # a batch that stored something (or was refused) says how it stands
        self.cap_refused += len(refused)
        return kept, refused

    def _moved_on(self, entries: Sequence[Entry], report: IngestReport) -> None:
        """Add what the batch appended to the known feed sizes; a feed that took anything
        else (a held entry the batch let in) is forgotten, to be recounted."""
        sizes = {(e.envelope.author, e.envelope.seq): e for e in entries}
        for author, seq in report.appended:
            known = self._sizes.get(author)
            item = sizes.get((author, seq))
            if known is None:
                continue
            if item is None or seq != known.entries + 1:
                del self._sizes[author]
                continue
            self._sizes[author] = storage.Usage(seq, known.bytes + storage.entry_frame_size(item))

    async def append_own(self, identity: SigningIdentity, payload_type: int, payload: dict[str, Any],
                         now_ms: int) -> Entry:
        return await self._submit(lambda store: store.append_own(identity, payload_type, payload, now_ms))

    async def call(self, fn: Callable[[Store], Any]) -> Any:
        """Run any other write (drop_payload, set_self, put_peer, an import, local settings)
        in turn: `fn` gets the writable Store, in the writer's worker thread."""
        def job(store: Store) -> Any:
            self._sizes.clear()  # an import or a dropped payload changes feed sizes
            return fn(store)
        return await self._submit(job)

    def close(self) -> None:
        """Close the store (after `run` has ended: the node is stopping)."""
        self._store.close()

    async def _submit(self, fn: Callable[[Store], Any]) -> Any:
        job = _Job(fn)
        await self._send.send(job)
        await job.done.wait()
        if job.error is not None:
            raise job.error
        return job.result

    def _notify(self, event: Committed) -> None:
        for send in list(self._listeners):
            try:
                send.send_nowait(event)
            except trio.WouldBlock:
                log.warning("a commit listener fell behind; closing it")
                send.close()
                self._listeners.remove(send)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                self._listeners.remove(send)
