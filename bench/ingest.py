"""Ingest throughput: verify and store remote entries, against single-core signature checks.

    .venv/bin/python bench/ingest.py [--entries 100000] [--authors 1000] [--batch 2000]

Signs `entries` posts from `authors` feeds (not timed), orders them as a sync from several
peers would deliver them (each feed in order, feeds interleaved in chunks), then times
Store.ingest over batches in a fresh store in a temp dir. The yardstick is PyNaCl's
single-core VerifyKey.verify on the same messages, timed in the same run: the store checks
signatures on a thread pool across the cores (store/verify.py; PyNaCl releases the GIL),
so `ratio` = entries_per_s / verify_per_s can pass 1 on a machine with cores to spare.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time

import nacl.signing

from _common import NOW_MS, build_feeds, emit, machine
from murmurate.store import Store, decode_frame
from murmurate.store.entry import SIGNING_DOMAIN
from murmurate.store.verify import _WORKERS as VERIFY_THREADS

PEERS = 4


def delivery_order(feeds: list[list[bytes]], seed: int) -> list[bytes]:
    """Each peer serves some feeds in chunks of 10-50 entries, round robin over its feeds;
    the node takes the next chunk from a random peer. Each feed stays in order."""
    rng = random.Random(seed)
    peers: list[list[list[bytes]]] = [[] for _ in range(PEERS)]
    for n, frames in enumerate(feeds):
        chunks, i = [], 0
        while i < len(frames):
            size = rng.randint(10, 50)
            chunks.append(frames[i:i + size])
            i += size
        peers[n % PEERS].append(chunks)
    streams = []
    for feeds_of_peer in peers:
        stream = []
        depth = max((len(c) for c in feeds_of_peer), default=0)
        for round_ in range(depth):
            stream.extend(chunks[round_] for chunks in feeds_of_peer if round_ < len(chunks))
        streams.append(stream)
    out: list[bytes] = []
    positions = [0] * PEERS
    live = [p for p in range(PEERS) if streams[p]]
    while live:
        p = rng.choice(live)
        out.extend(streams[p][positions[p]])
        positions[p] += 1
        if positions[p] == len(streams[p]):
            live.remove(p)
    return out


def verify_rate(entries: list, sample: int) -> float:
    """Single-thread PyNaCl verifications per second over `sample` of the entries."""
    keys = {}
    work = []
    for item in entries[:sample]:
        env = item.envelope
        key = keys.get(env.author) or keys.setdefault(env.author, nacl.signing.VerifyKey(env.author))
        work.append((key, SIGNING_DOMAIN + env.body, env.signature))
    started = time.perf_counter()
    for key, message, signature in work:
        key.verify(message, signature)
    return len(work) / (time.perf_counter() - started)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--authors", type=int, default=1_000)
    parser.add_argument("--batch", type=int, default=2_000)
    parser.add_argument("--payload", type=int, default=300, help="mean payload bytes")
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="for signing")
    args = parser.parse_args(argv)

    per_author = args.entries // args.authors
    rng = random.Random(7)
    jobs = []
    for a in range(args.authors):
        start = NOW_MS - 30 * 86_400_000 + rng.randrange(86_400_000)
        timestamps = sorted(start + rng.randrange(29 * 86_400_000) for _ in range(per_author))
        jobs.append((a, "ingest", timestamps, args.payload, a))
    t0 = time.perf_counter()
    feeds = build_feeds(jobs, args.processes)
    frames = delivery_order(feeds, seed=11)
    print(f"signed {len(frames)} entries from {args.authors} authors in {time.perf_counter() - t0:.1f} s",
          file=sys.stderr)

    t0 = time.perf_counter()
    entries = [decode_frame(f) for f in frames]
    decode_s = time.perf_counter() - t0
    batches = [entries[i:i + args.batch] for i in range(0, len(entries), args.batch)]

    verify_per_s = verify_rate(entries, min(len(entries), 20_000))

    with tempfile.TemporaryDirectory(prefix="murmurate-bench-ingest-") as tmp:
        with Store(tmp) as store:
            appended = 0
            started = time.perf_counter()
            for batch in batches:
                report = store.ingest(batch, NOW_MS)
                appended += len(report.appended)
            elapsed = time.perf_counter() - started
            assert appended == len(entries), f"only {appended} of {len(entries)} appended"
            usage = store.disk_usage()["total"]

    entries_per_s = len(entries) / elapsed
    print(f"ingest: {entries_per_s:,.0f} entries/s ({elapsed:.2f} s, batches of {args.batch}); "
          f"single-core verify: {verify_per_s:,.0f}/s; ratio {entries_per_s / verify_per_s:.2f}")
    print(f"signatures are checked on {VERIFY_THREADS} threads (PyNaCl releases the GIL); "
          f"frame decoding, not timed above, ran at {len(entries) / decode_s:,.0f}/s")
    facts = machine()
    emit({
        "bench": "ingest",
        "entries": len(entries),
        "authors": args.authors,
        "batch": args.batch,
        "entries_per_s": round(entries_per_s),
        "verify_per_s": round(verify_per_s),
        "ratio": round(entries_per_s / verify_per_s, 3),
        "cores": facts["cores"],
        "verify_threads": VERIFY_THREADS,
        "signature_checks": "thread pool across cores (store/verify.py); PyNaCl releases the GIL",
        "decode_frames_per_s": round(len(entries) / decode_s),
        "bytes_per_entry": round(usage / len(entries)),
        "cpu": facts["cpu"],
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
