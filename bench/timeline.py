"""Home timeline latency and bytes per entry over a large store.

    .venv/bin/python bench/timeline.py [--entries 1000000] [--authors 2000] [--follows 500]

Builds (once; cached under bench/out/, keyed by the parameters and the store's source) a
store of `entries` text posts of about 300 payload bytes from `authors` feeds. Activity is
heavy-tailed (log-normal weights, sigma 2, at least 5 posts each) and timestamps spread
over a year, interleaved across authors; the store ingests them in time order, in batches,
as a live node would. Two local authors each follow `follows` feeds:
  - "random": a uniform sample of the authors (their posts are common in the time index,
    so the home timeline scans the shared index);
  - "quiet": the least active authors (rare in the index: the scan's budget runs out and
    the timeline merges the followed feeds' own indexes instead).
For each, times the first page of 50 and pages 2-5 through cursors. The last line is one
JSON object: p50_ms and p99_ms over all queries, per case figures, and bytes_per_entry
(Store.disk_usage()["total"] / entries, indexes and free pages included).
"""

from __future__ import annotations

import argparse
import hashlib
import os
import random
import shutil
import sys
import time
from pathlib import Path

from _common import cached_store, DAY_MS, NOW_MS, OUT, build_feeds, emit, identity, machine, percentile
from murmurate.store import PayloadType, Store, create_entry, decode_frame
from murmurate.store import env as store_env, records, timelines
from murmurate.store.entry import Entry

SELF_SALT = "timeline-self"


def cache_dir(args: argparse.Namespace) -> Path:
    """One directory per set of parameters and per store layout (the layout docstring of
    store/env.py, its sub-database flags, and records.py, where the byte layouts live)."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(repr((args.entries, args.authors, args.follows, args.payload, args.seed, args.batch)).encode())
    digest.update(repr((store_env.__doc__, store_env.SCHEMA_VERSION, store_env.DB_FLAGS)).encode())
    digest.update(Path(records.__file__).read_bytes())
    return OUT / f"timeline-{args.entries}-{args.authors}-{digest.hexdigest()}"


def plan(args: argparse.Namespace) -> tuple[list[list[int]], list[int], list[int]]:
    """Per-author sorted timestamps, the random follow set and the quiet follow set."""
    rng = random.Random(args.seed)
    weights = [rng.lognormvariate(0, 2.0) for _ in range(args.authors)]
    counts = [5] * args.authors
    for a in rng.choices(range(args.authors), weights=weights, k=args.entries - 5 * args.authors):
        counts[a] += 1
    start = NOW_MS - 365 * DAY_MS
    timestamps = [sorted(start + rng.randrange(365 * DAY_MS - 3_600_000) for _ in range(n)) for n in counts]
    random_follows = rng.sample(range(args.authors), args.follows)
    quiet_follows = sorted(range(args.authors), key=lambda a: counts[a])[:args.follows]
    return timestamps, random_follows, quiet_follows


def follow_entries(index: int, follows: list[int], ts: int) -> list[Entry]:
    me = identity(index, SELF_SALT)
    out, prev = [], None
    for seq, a in enumerate(follows, start=1):
        entry = create_entry(me, seq=seq, prev=prev, timestamp_ms=ts, payload_type=PayloadType.FOLLOW,
                             payload={"id": identity(a, "timeline").public_key})
        prev = entry.envelope.hash
        out.append(entry)
    return out


def build(path: Path, args: argparse.Namespace) -> None:
    timestamps, random_follows, quiet_follows = plan(args)
    t0 = time.perf_counter()
    jobs = [(a, "timeline", ts, args.payload, args.seed * 100_003 + a) for a, ts in enumerate(timestamps)]
    feeds = build_feeds(jobs, args.processes)
    print(f"signed {args.entries} entries in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    order = sorted((ts, a, i) for a, feed_ts in enumerate(timestamps) for i, ts in enumerate(feed_ts))
    tmp = path.with_name(path.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.perf_counter()
    with Store(tmp) as store:
        for start in range(0, len(order), args.batch):
            batch = [decode_frame(feeds[a][i]) for _, a, i in order[start:start + args.batch]]
            report = store.ingest(batch, NOW_MS)
            assert len(report.appended) == len(batch), report.rejected[:3]
        for index, follows in ((0, random_follows), (1, quiet_follows)):
            report = store.ingest(follow_entries(index, follows, NOW_MS - 3_600_000), NOW_MS)
            assert len(report.appended) == len(follows), report.rejected[:3]
    print(f"ingested in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    tmp.rename(path)


def measure(store: Store, rounds: int, pages: int) -> tuple[list[float], list[float], int]:
    """Times `rounds` x `pages` home timeline pages. Returns (first page ms, deeper page
    ms, how many queries fell back to the merge)."""
    merges = 0
    merge = timelines.merge_timeline

    def counting_merge(*a: object, **k: object) -> list[bytes]:
        nonlocal merges
        merges += 1
        return merge(*a, **k)

    timelines.merge_timeline = counting_merge  # type: ignore[assignment]
    first, deeper = [], []
    try:
        for _ in range(rounds):
            cursor = None
            for page in range(pages):
                started = time.perf_counter()
                result = store.home_timeline(limit=50, cursor=cursor)
                (first if page == 0 else deeper).append((time.perf_counter() - started) * 1000)
                assert len(result.items) == 50 and result.next_cursor is not None
                cursor = result.next_cursor
    finally:
        timelines.merge_timeline = merge  # type: ignore[assignment]
    return first, deeper, merges


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--authors", type=int, default=2_000)
    parser.add_argument("--follows", type=int, default=500)
    parser.add_argument("--payload", type=int, default=300, help="mean payload bytes")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=5_000, help="entries per ingest while building")
    parser.add_argument("--rounds", type=int, default=50, help="per case; each round reads --pages pages")
    parser.add_argument("--pages", type=int, default=5)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="for signing")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args(argv)

    path = cached_store(cache_dir(args), args.rebuild, lambda p: build(p, args))

    results: dict[str, object] = {}
    everything: list[float] = []
    with Store(path) as store:
        entries = store.count_entries()
        usage = store.disk_usage()
        for index, case in ((0, "random"), (1, "quiet")):
            store.set_self(identity(index, SELF_SALT).public_key)
            first, deeper, merges = measure(store, args.rounds, args.pages)
            both = first + deeper
            everything += both
            results[case] = {
                "p50_ms": round(percentile(both, 50), 2), "p99_ms": round(percentile(both, 99), 2),
                "first_page_p50_ms": round(percentile(first, 50), 2),
                "first_page_p99_ms": round(percentile(first, 99), 2),
                "deeper_pages_p99_ms": round(percentile(deeper, 99), 2),
                "merge_fallbacks": f"{merges}/{len(both)}",
            }
            print(f"{case} follows: p50 {percentile(both, 50):.2f} ms, p99 {percentile(both, 99):.2f} ms "
                  f"({len(both)} queries, {merges} merged the followed feeds)")
    bytes_per_entry = usage["total"] / entries
    print(f"{entries} entries, {usage['total']:,} bytes in use: {bytes_per_entry:.0f} bytes/entry; "
          + ", ".join(f"{k} {v / entries:.1f}" for k, v in usage.items() if k != "total" and v))
    emit({
        "bench": "timeline",
        "entries": entries,
        "authors": args.authors,
        "follows": args.follows,
        "queries": len(everything),
        "p50_ms": round(percentile(everything, 50), 2),
        "p99_ms": round(percentile(everything, 99), 2),
        "bytes_per_entry": round(bytes_per_entry, 1),
        "bytes_per_entry_by_db": {k: round(v / entries, 1) for k, v in usage.items() if k != "total" and v},
        **results,
        "cores": machine()["cores"],
    })
    return 0


if __name__ == "__main__":
    sys.exit(main())
