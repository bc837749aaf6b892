"""The node task that audits signatures the chained check deferred (store/audit.py).

Once commits pause (or after max_defer_s) it checks what waits, a batch at a time, in a
worker thread: signature checks release the GIL, so the audit runs on cores the node
leaves idle. The writer applies each result (one small transaction). A failure freezes
that feed and is logged; it can only mean the feed's author signed a chain holding a bad
signature.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import trio

from murmurate.crypto import encode_id
from murmurate.store import StoreView

from .writer import StoreWriter

log = logging.getLogger("murmurate.audit")


class Auditor:
    """`quiet_s`: the audit waits until no commit has come for this long, so a catch-up in
    progress has the GIL to itself (the signature checks release it, their Python around
    them does not: bench/sync.py); `max_defer_s`: it waits no longer than this in all,
    so a node that never goes quiet (a busy relay) still audits."""

    def __init__(self, store: StoreView, writer: StoreWriter, *, batch: int = 2_000, quiet_s: float = 0.3,
                 max_defer_s: float = 30.0, on_bad: Callable[[bytes, int], None] | None = None) -> None:
        self.store = store
        self.writer = writer
        self.batch = batch
        self.quiet_s = quiet_s
        self.max_defer_s = max_defer_s
        self.audited = 0
        self.failed: list[tuple[bytes, int]] = []
        self._on_bad = on_bad  # the replicator's feed_frozen: status shows the feed frozen

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        task_status.started()
        while True:
            # A wake-up, not a commit listener: while a long audit runs, a listener would
            # hold every commit's (author, seq) list (bench/relay.py saw 270 MB after a
            # 1M-entry ingest). One pass after waking covers every commit so far.
            woken = self.writer.next_commit()
            await self.audit_waiting()
            await woken.wait()
            await self._until_quiet()

    async def _until_quiet(self) -> None:
        with trio.move_on_after(self.max_defer_s):
            while True:
                commit = self.writer.next_commit()
                with trio.move_on_after(self.quiet_s):
                    await commit.wait()
                    continue
                return

    async def audit_waiting(self) -> int:
        """Audit everything waiting now, or stop after a batch during which the node
        committed again (busy: `run` waits for the next pause, or max_defer_s, before the
        next batch; the signatures are chain-checked already, so the audit can lag).
        Returns how many signatures were checked."""
        checked = 0
        while True:
            busy = self.writer.next_commit()
            result = await trio.to_thread.run_sync(self.store.check_unaudited, self.batch)
            if not result.ranges:
                if checked:
                    log.info("audit: %d signatures checked, none waiting", checked)
                return checked
            bad = await self.writer.call(lambda store: store.settle_audit(result))
            checked += result.checked
            self.audited += result.checked
            for author, seq in bad:
                self.failed.append((author, seq))
                log.warning("audit: entry %d of %s has a bad signature its author chained on; feed frozen",
                            seq, encode_id(author))
                if self._on_bad is not None:
                    self._on_bad(author, seq)
            if busy.is_set():
                return checked
