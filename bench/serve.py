"""What the sync server's read costs per entry, with and without entries waiting for the audit.

    .venv/bin/python bench/serve.py [--entries 100000] [--authors 1000]

A store ingests `entries` posts of `authors` feeds in runs (as a catch-up stores them:
one signature checked per run, the rest waiting for the audit). Then Store.frames reads
every feed whole, in batches of the sync protocol's size, twice: while the entries wait
for the audit (each one's signature is checked as it is served, docs/protocol.md 5.1
step 5), and after the audit (nothing waits: one table stat per batch). CPU time of the
process per entry served (thread CPU included: the checks run on the verify pool), so a
loaded machine moves it less than wall time. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from _common import DAY_MS, NOW_MS, build_feeds, emit, machine
from murmurate.node.core.sync import MAX_BATCH_ENTRIES
from murmurate.store import Store, decode_frame


def serve_all(store: Store, authors: list[bytes], per_feed: int) -> tuple[float, int]:
    start = time.process_time()
    served = 0
    for author in authors:
        for seq in range(1, per_feed + 1, MAX_BATCH_ENTRIES):
            served += len(store.frames(author, seq, min(per_feed, seq + MAX_BATCH_ENTRIES - 1)))
    return time.process_time() - start, served


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--authors", type=int, default=1_000)
    args = parser.parse_args(argv)
    per_feed = args.entries // args.authors
    jobs = [(i, "serve", [NOW_MS - DAY_MS + j * 1_000 for j in range(per_feed)], 300, i)
            for i in range(args.authors)]
    feeds = build_feeds(jobs, os.cpu_count() or 1)
    with tempfile.TemporaryDirectory() as tmp, Store(f"{tmp}/store") as store:
        for frames in feeds:
            store.ingest([decode_frame(f) for f in frames], NOW_MS)
        authors = [decode_frame(frames[0]).envelope.author for frames in feeds]
        waiting = store.unaudited_count()
        cpu_waiting, served = serve_all(store, authors, per_feed)
        assert store.audit_all() == []
        cpu_audited, served_after = serve_all(store, authors, per_feed)
    assert served == served_after == args.entries
    emit({"bench": "serve", "entries": served, "waiting_for_audit": waiting,
          "cpu_us_per_entry_waiting": round(cpu_waiting / served * 1e6, 1),
          "cpu_us_per_entry_audited": round(cpu_audited / served * 1e6, 1), "machine": machine()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
