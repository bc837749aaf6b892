"""The one task that writes to the store.

It is the only holder of the writable Store: everything else in the node reads through
`view` (a StoreView, which has no write methods). Every write (entries from peers, the
user's own posts, imports, dropped payloads, local settings, the peer book) goes through a
bounded channel to this task as a job `fn(store)`, run in a worker thread
(`trio.to_thread.run_sync`). The store keeps what each committed transaction appended
(Store.record_commits), so after every job the writer tells its listeners, whatever write
made the commit. Callers wait for their own result; a full channel makes them wait
(back-pressure).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import trio

from murmurate.crypto import SigningIdentity
from murmurate.store import Entry, IngestReport, Store, StoreView

log = logging.getLogger("murmurate.writer")


@dataclass(frozen=True)
class Committed:
    """Entries appended by one write job (one transaction, or several: an import), in order:
    (author, seq), and their payload types. `own`: the job appended this node's own entries."""

    appended: tuple[tuple[bytes, int], ...]
    own: bool = False
    types: tuple[int, ...] = ()


@dataclass
class _Job:
    run: Callable[[Store], Any]
    done: trio.Event = field(default_factory=trio.Event)
    result: Any = None
    error: BaseException | None = None


class StoreWriter:
    def __init__(self, store: Store, *, queue: int = 64) -> None:
        self._store = store
        store.record_commits()
        self.view: StoreView = store.view()
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
                if commits:
                    self._notify(Committed(tuple(ref for c in commits for ref in c.appended),
                                           any(c.own for c in commits),
                                           tuple(t for c in commits for t in c.types)))
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

    async def ingest(self, entries: Sequence[Entry], now_ms: int) -> IngestReport:
        return await self._submit(lambda store: store.ingest(entries, now_ms))

    async def append_own(self, identity: SigningIdentity, payload_type: int, payload: dict[str, Any],
                         now_ms: int) -> Entry:
        return await self._submit(lambda store: store.append_own(identity, payload_type, payload, now_ms))

    async def call(self, fn: Callable[[Store], Any]) -> Any:
        """Run any other write (drop_payload, set_self, put_peer, an import, local settings)
        in turn: `fn` gets the writable Store, in the writer's worker thread."""
        return await self._submit(fn)

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
