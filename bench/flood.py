"""A live flood: how fast a node takes one author's entries pushed over a live sync
stream, and how many of them wait for the signature audit meanwhile.

    .venv/bin/python bench/flood.py [--entries 60000] [--batch 500] [--max-unaudited 10000]

Two in-process nodes (real store, writer, libp2p hosts on 127.0.0.1, replicator, and the
sink's Auditor as the daemon runs it). The sink live-syncs the flooder's feed from the
source; the source then stores the feed `batch` entries at a time as fast as its writer
goes, and pushes each commit down the stream. A sampler reads the sink's unaudited
backlog every 20 ms. `--max-unaudited 0` turns the bound off (the audit alone), to compare.
Signing the feed is not timed. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import trio

from _common import NOW_MS, build_feeds, emit, identity, machine
from murmurate.node.auditor import Auditor
from murmurate.node.p2p import HostConfig, open_host
from murmurate.node.replicator import Replicator
from murmurate.node.writer import StoreWriter
from murmurate.store import Store, decode_frame


async def flood(root: Path, frames: list[bytes], batch: int, max_unaudited: int) -> dict[str, object]:
    flooder = decode_frame(frames[0]).envelope.author
    entries = [decode_frame(f) for f in frames]
    result: dict[str, object] = {}
    async with trio.open_nursery() as nursery:
        nodes = []
        for name, seed in (("source", 1), ("sink", 2)):
            me = identity(seed, "flood")
            store = Store(root / name, map_size=8 << 30)
            store.set_self(me.public_key)
            writer = StoreWriter(store, max_unaudited=max_unaudited or 10**12)
            await nursery.start(writer.run)
            host = await nursery.start(_host, me.seed)
            replicator = Replicator(host, store, writer, me.public_key, now_ms=lambda: NOW_MS, auto_sync=False,
                                    wanted=(lambda: [flooder]) if name == "sink" else None)
            await nursery.start(replicator.run)
            nodes.append((store, writer, host, replicator))
        (_, source_writer, source_host, _), (sink, sink_writer, sink_host, sink_rep) = nodes
        auditor = Auditor(sink, sink_writer)
        await nursery.start(auditor.run)
        await sink_host.dial(source_host.addrs()[0])
        caught_up = trio.Event()
        nursery.start_soon(lambda: sink_rep.fetch(source_host.peer_id, sink_rep.wants(), live=True,
                                                  caught_up=lambda _: caught_up.set()))
        await caught_up.wait()

        peak = 0

        async def sample() -> None:
            nonlocal peak
            while True:
                peak = max(peak, sink.unaudited_count())
                await trio.sleep(0.02)

        nursery.start_soon(sample)
        started = time.perf_counter()
        for i in range(0, len(entries), batch):
            await source_writer.ingest(entries[i:i + batch], NOW_MS)
        while (sink.head(flooder) or None) is None or sink.head(flooder).seq < len(entries):
            await trio.sleep(0.005)
        taken = time.perf_counter() - started
        peak = max(peak, sink.unaudited_count())
        backlog = sink.unaudited_count()
        while sink.unaudited_count():
            await trio.sleep(0.05)
        audited = time.perf_counter() - started
        result.update(entries=len(entries), batch=batch, max_unaudited=max_unaudited, seconds=round(taken, 2),
                      entries_per_s=round(len(entries) / taken), peak_unaudited=peak, unaudited_at_end=backlog,
                      fully_verified=sink_writer.fully_verified, all_audited_after_s=round(audited, 2),
                      audit_failed=len(auditor.failed))
        nursery.cancel_scope.cancel()
    for store, *_ in nodes:
        store.close()
    return result


async def _host(seed: bytes, *, task_status=trio.TASK_STATUS_IGNORED) -> None:
    async with open_host(HostConfig(seed=seed)) as host:
        task_status.started(host)
        await trio.sleep_forever()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entries", type=int, default=60_000)
    parser.add_argument("--batch", type=int, default=500)
    parser.add_argument("--max-unaudited", type=int, default=10_000, help="0: no bound (the audit alone)")
    parser.add_argument("--processes", type=int, default=2, help="for signing the feed (not timed)")
    args = parser.parse_args()
    timestamps = [NOW_MS - 10 * 86_400_000 + i for i in range(args.entries)]
    print(f"signing {args.entries} entries ...", file=sys.stderr)
    # one author: build_feed signs in order, so split nothing (one job)
    frames = build_feeds([(0, "flood-author", timestamps, 200, 1)], 1)[0]
    with tempfile.TemporaryDirectory(prefix="murmurate-flood-") as tmp:
        result = trio.run(flood, Path(tmp), frames, args.batch, args.max_unaudited)
    print(f"{result['entries']} entries in {result['seconds']} s = {result['entries_per_s']} entries/s; "
          f"unaudited backlog peak {result['peak_unaudited']} (bound {args.max_unaudited or 'off'}), "
          f"{result['unaudited_at_end']} at the end, {result['fully_verified']} verified in full at ingest; "
          f"all audited {result['all_audited_after_s']} s after the flood began", file=sys.stderr)
    emit({"bench": "flood", **result, **machine()})


if __name__ == "__main__":
    main()
