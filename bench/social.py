"""Social model latency over a large store, and the cost of private posts.

    .venv/bin/python bench/social.py [--entries 1000000] [--authors 2000] [--rounds 100]

Builds (once; cached under bench/out/, keyed by the parameters and the store's source) a
store of `entries` entries from `authors` feeds plus the store's own author ("me"), with
heavy-tailed activity (log-normal weights, sigma 2) over a year, ingested in time order in
batches as a live node would. Each author's first entry is a profile; the rest are posts
(30% of them replies to a recent post, so threads form; 15% carry hashtags, a fifth of
those #news; about 60 carry the rare #orchid; 2% mention someone, 0.3% mention me),
favourites (14%), boosts (8%) and follows (4%). About 1% of replies, boosts and
favourites target me's posts, and 300 authors follow me. Me posts 1,500 times and follows
500 authors. One thread has a root and 200 replies (each to the root or an earlier reply).

Then it times the first page (50) of what clients get, each query `--rounds` times after
one untimed warm-up: the home timeline and a hashtag (popular and rare) through
Store.home_timeline/hashtag + Views.items (the daemon's `timeline`), the large thread
through Views.thread, and me's notifications through Views.notifications. It also times
private posts on a small store of their own (the cost is the cryptography): a
followers-only post to 1,000 accepted followers (write: the grants chunk of a new epoch +
the sealed post, appended; read: a follower absorbing both: open the grant, open the
post) and a direct post to 50 recipients (write: seal + append; read: absorb).
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import cached_store, DAY_MS, NOW_MS, OUT, emit, identity, machine, percentile
from murmurate.crypto import encode_id
from murmurate.node.private import MEMBER, Private
from murmurate.node.social import Views
from murmurate.store import PayloadType, Store, create_entry, decode_frame, encode_frame
from murmurate.store import env as store_env, payloads, records, social as store_social

SALT = "social"
PLAN_VERSION = 1  # bump when plan() changes what it builds
POPULAR, RARE = "news", "orchid"
ME_POSTS, ME_FOLLOWS, FOLLOWERS_OF_ME = 1_500, 500, 300
THREAD_REPLIES = 200
RECENT_WINDOW = 20_000  # replies, boosts and favourites target one of the newest posts
TAGS = [f"topic{i}" for i in range(300)]
WORDS = ("the a of to and in is it that for on with as was at by this be from or have an are but not "
         "what all were when we there can been one do if will up out about so said some time could "
         "people make like just him know take into year your good them see other than then now look "
         "only come its over think also back after use two how our work first well way even new want "
         "because any these give day most us garden river bread music walk light city train coffee").split()

# An event's spec, built by plan() and turned into a payload by the signing worker:
#   ("P", name) profile; ("F", author index) follow; ("b"|"f", author index, seq) boost/favourite;
#   ("p", text seed, tags, mention indexes, reply (index, seq) | None, root (index, seq) | None) post.
Spec = tuple[Any, ...]


def cache_dir(args: argparse.Namespace) -> Path:
    """One directory per set of parameters and per store layout (as bench/timeline.py, plus
    the social indexes' source)."""
    digest = hashlib.blake2b(digest_size=8)
    digest.update(repr((PLAN_VERSION, args.entries, args.authors, args.seed, args.batch)).encode())
    digest.update(repr((store_env.__doc__, store_env.SCHEMA_VERSION, store_env.DB_FLAGS)).encode())
    for module in (records, store_social, payloads):
        digest.update(Path(module.__file__).read_bytes())
    return OUT / f"social-{args.entries}-{args.authors}-{digest.hexdigest()}"


def plan(args: argparse.Namespace) -> tuple[list[list[tuple[int, Spec]]], dict[str, Any]]:
    """Per-author lists of (timestamp, spec) in seq order, and facts the bench needs.
    Author index `args.authors` is me."""
    rng = random.Random(args.seed)
    n, me = args.authors, args.authors
    start = NOW_MS - 365 * DAY_MS
    thread_at = start + 300 * DAY_MS
    budget = args.entries - (1 + min(n, ME_FOLLOWS) + ME_POSTS) - (1 + THREAD_REPLIES)
    weights = [rng.lognormvariate(0, 2.0) for _ in range(n)]
    counts = [5] * n
    for a in rng.choices(range(n), weights=weights, k=budget - 5 * n):
        counts[a] += 1
    # (timestamp, author, kind hint): profiles first, then follows of me, then the rest.
    events: list[tuple[int, int, str]] = []
    followers_of_me = set(rng.sample(range(n), min(n, FOLLOWERS_OF_ME)))
    for a in range(n):
        ts = sorted(start + rng.randrange(365 * DAY_MS - 3_600_000) for _ in range(counts[a]))
        events += [(t, a, "P" if i == 0 else "M" if i == 1 and a in followers_of_me else "") for i, t in enumerate(ts)]
    events.append((start, me, "P"))
    events += [(start + 1 + i, me, "F") for i in range(min(n, ME_FOLLOWS))]
    events += [(start + rng.randrange(365 * DAY_MS - 3_600_000), me, "m") for _ in range(ME_POSTS)]
    thread_author = max(range(n), key=lambda a: (counts[a] < 2000, counts[a]))  # active, not the busiest
    events.append((thread_at, thread_author, "T"))
    events += [(thread_at + 1 + rng.randrange(2 * DAY_MS), rng.randrange(n), "t") for _ in range(THREAD_REPLIES)]
    events.sort()

    me_follows = rng.sample(range(n), min(n, ME_FOLLOWS))
    feeds: list[list[tuple[int, Spec]]] = [[] for _ in range(n + 1)]
    recent: list[tuple[int, int, tuple[int, int]]] = []  # (author, seq, root) of the newest posts
    mine: list[tuple[int, int]] = []
    thread: list[tuple[int, int]] = []
    rare_p = 60 / (budget * 0.74)
    facts: dict[str, Any] = {"me": me, "thread_author": thread_author}

    def add_post(a: int, reply: tuple[int, int, tuple[int, int]] | None) -> tuple[int, int]:
        seq = len(feeds[a]) + 1
        tags: list[str] = []
        if rng.random() < 0.15:
            tags = [POPULAR if rng.random() < 0.2 else rng.choice(TAGS) for _ in range(rng.randint(1, 2))]
        if rng.random() < rare_p:
            tags.append(RARE)
        mentions = []
        if a != me and rng.random() < 0.003:
            mentions.append(me)
        if rng.random() < 0.02:
            mentions.append(rng.randrange(n))
        parent = (reply[0], reply[1]) if reply else None
        root = reply[2] if reply else None
        feeds[a].append((ts, ("p", rng.getrandbits(32), tuple(dict.fromkeys(tags)), tuple(dict.fromkeys(mentions)),
                              parent, root)))
        ref = (a, seq)
        post = (a, seq, root or ref)
        if len(recent) < RECENT_WINDOW:
            recent.append(post)
        else:
            recent[rng.randrange(RECENT_WINDOW)] = post
        return ref

    def target() -> tuple[int, int, tuple[int, int]]:
        if mine and rng.random() < 0.01:
            a, s = rng.choice(mine)
            return a, s, (a, s)
        return rng.choice(recent)

    follows_left = list(me_follows)
    for ts, a, hint in events:
        if hint == "P":
            feeds[a].append((ts, ("P", f"Person {a}")))
        elif hint == "M":
            feeds[a].append((ts, ("F", me)))
        elif hint == "F":
            feeds[a].append((ts, ("F", follows_left.pop())))
        elif hint == "m":
            mine.append(add_post(a, None))
        elif hint == "T":
            root = add_post(a, None)
            facts["thread_root"] = root
            thread.append(root)
        elif hint == "t":
            parent = thread[0] if rng.random() < 0.5 else rng.choice(thread)
            thread.append(add_post(a, (parent[0], parent[1], facts["thread_root"])))
        else:
            r = rng.random()
            if r < 0.74 or not recent:
                add_post(a, target() if recent and rng.random() < 0.3 else None)
            elif r < 0.82:
                t = target()
                feeds[a].append((ts, ("b", t[0], t[1])))
            elif r < 0.96:
                t = target()
                feeds[a].append((ts, ("f", t[0], t[1])))
            else:
                feeds[a].append((ts, ("F", rng.randrange(n))))
    facts["me_follows"] = me_follows
    return feeds, facts


_KEYS: list[bytes] = []


def _payload(spec: Spec, rng: random.Random) -> tuple[int, dict[str, Any]]:
    kind = spec[0]
    if kind == "P":
        return PayloadType.PROFILE, {"name": spec[1], "bio": "Writes about " + " ".join(rng.sample(WORDS, 6))}
    if kind == "F":
        return PayloadType.FOLLOW, {"id": _KEYS[spec[1]]}
    if kind in ("b", "f"):
        ptype = PayloadType.BOOST if kind == "b" else PayloadType.FAVOURITE
        return ptype, {"target": [_KEYS[spec[1]], spec[2]]}
    _, seed, tags, mentions, reply, root = spec
    words = random.Random(seed)
    text = " ".join(words.choice(WORDS) for _ in range(words.randint(25, 45)))
    text += "".join(f" @{encode_id(_KEYS[m])}" for m in mentions) + "".join(f" #{t}" for t in tags)
    payload: dict[str, Any] = {"text": text}
    if tags:
        payload["tags"] = list(tags)
    if mentions:
        payload["mentions"] = [_KEYS[m] for m in mentions]
    if reply is not None:
        payload["reply"] = [_KEYS[reply[0]], reply[1]]
        payload["root"] = [_KEYS[root[0]], root[1]]
    return PayloadType.POST, payload


def sign_feed(job: tuple[int, int, list[tuple[int, Spec]]]) -> list[bytes]:
    """Sign one author's feed (in a worker); returns entry frames."""
    n_keys, index, items = job
    if len(_KEYS) != n_keys:
        _KEYS[:] = [identity(i, SALT).public_key for i in range(n_keys)]
    me = identity(index, SALT)
    rng = random.Random(index)
    frames, prev = [], None
    for seq, (ts, spec) in enumerate(items, start=1):
        ptype, payload = _payload(spec, rng)
        entry = create_entry(me, seq=seq, prev=prev, timestamp_ms=ts, payload_type=ptype, payload=payload)
        prev = entry.envelope.hash
        frames.append(encode_frame(entry))
    return frames


def build(path: Path, args: argparse.Namespace) -> None:
    from multiprocessing import get_context
    t0 = time.perf_counter()
    feeds, facts = plan(args)
    print(f"planned in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    t0 = time.perf_counter()
    jobs = [(len(feeds), a, items) for a, items in enumerate(feeds)]
    with get_context("fork").Pool(args.processes) as pool:
        signed = pool.map(sign_feed, jobs, chunksize=max(1, len(jobs) // (args.processes * 8)))
    print(f"signed {sum(map(len, signed))} entries in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    order = sorted((ts, a, i) for a, items in enumerate(feeds) for i, (ts, _) in enumerate(items))
    del feeds
    tmp = path.with_name(path.name + ".building")
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.perf_counter()
    keys = [identity(i, SALT).public_key for i in range(args.authors + 1)]
    with Store(tmp) as store:
        for start in range(0, len(order), args.batch):
            batch = [decode_frame(signed[a][i]) for _, a, i in order[start:start + args.batch]]
            report = store.ingest(batch, NOW_MS)
            assert len(report.appended) == len(batch), report.rejected[:3]
        store.set_self(keys[facts["me"]])
    print(f"ingested in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
    root = facts["thread_root"]
    (tmp / "bench.json").write_text(json.dumps({
        "me": encode_id(keys[facts["me"]]),
        "thread_root": f"{encode_id(keys[root[0]])}/{root[1]}",
    }))
    tmp.rename(path)


def timed(fn: Callable[[], object], rounds: int) -> tuple[list[float], float, object]:
    """(ms per round, the untimed warm-up's ms, the last result)."""
    started = time.perf_counter()
    result = fn()
    cold = (time.perf_counter() - started) * 1000
    out = []
    for _ in range(rounds):
        started = time.perf_counter()
        result = fn()
        out.append((time.perf_counter() - started) * 1000)
    return out, cold, result


def social_cases(store: Store, facts: dict[str, str], rounds: int) -> dict[str, dict[str, Any]]:
    from murmurate.crypto import decode_id
    me = decode_id(facts["me"])

    def page_view(page_fn: Callable[[], Any]) -> Callable[[], dict[str, Any]]:
        def run() -> dict[str, Any]:  # what the daemon's `timeline` does
            page = page_fn()
            return {"items": Views(store, me).items(page.items), "next_cursor": page.next_cursor}
        return run

    cases: dict[str, Callable[[], Any]] = {
        "home": page_view(lambda: store.home_timeline(limit=50)),
        "hashtag_popular": page_view(lambda: store.hashtag(POPULAR, limit=50)),
        "hashtag_rare": page_view(lambda: store.hashtag(RARE, limit=50)),
        "thread": lambda: Views(store, me).thread(facts["thread_root"]),
        "notifications": lambda: Views(store, me).notifications(limit=50, cursor=None),
    }
    store_only = {"home": lambda: store.home_timeline(limit=50),
                  "hashtag_popular": lambda: store.hashtag(POPULAR, limit=50),
                  "hashtag_rare": lambda: store.hashtag(RARE, limit=50),
                  "notifications": lambda: store.notifications(me, limit=50)}
    out: dict[str, dict[str, Any]] = {}
    for name, fn in cases.items():
        ms, cold, result = timed(fn, rounds)
        items = result["items"]
        out[name] = {"p50_ms": round(percentile(ms, 50), 2), "p99_ms": round(percentile(ms, 99), 2),
                     "cold_ms": round(cold, 1), "items": len(items)}
        if name in store_only:
            ms_store, _, _ = timed(store_only[name], rounds)
            out[name]["store_only_p99_ms"] = round(percentile(ms_store, 99), 2)
        print(f"{name}: p50 {out[name]['p50_ms']:.2f} ms, p99 {out[name]['p99_ms']:.2f} ms "
              f"({len(items)} items; first query {cold:.0f} ms)")
    return out


def private_cases(rounds: int, followers: int = 1_000, direct_to: int = 50) -> dict[str, float]:
    """Median ms of writing and reading private posts, on stores of their own."""
    people = [identity(i, "social-private") for i in range(followers)]
    post = {"text": "only for the circle " + "x" * 200}
    fw, fr, dw, dr = [], [], [], []
    with tempfile.TemporaryDirectory(prefix="murmurate-bench-") as tmp:
        author_store, reader_store = Store(Path(tmp) / "a"), Store(Path(tmp) / "r")
        for p in people:
            author_store.local_put(MEMBER + p.public_key)
        for r in range(rounds):
            author = identity(r, "social-private-author")  # a new author: a new circle each round
            t0 = time.perf_counter()
            plans = Private(author_store, os.urandom).plan_followers_post(author, post)
            entries = [author_store.append_own(author, p.payload_type, p.payload, NOW_MS) for p in plans]
            fw.append((time.perf_counter() - t0) * 1000)
            assert len(plans) == 2, "1,000 followers and the author fit one grants chunk"
            reader = people[(r * 37) % followers]
            reader_store.ingest(entries, NOW_MS)
            stored = [reader_store.get(author.public_key, e.envelope.seq) for e in entries]
            t0 = time.perf_counter()
            opened = Private(reader_store, os.urandom).absorb(reader, stored)
            fr.append((time.perf_counter() - t0) * 1000)
            assert opened == 1, opened

            recipients = [encode_id(people[(r + k * 13) % followers].public_key) for k in range(direct_to)]
            t0 = time.perf_counter()
            plans = Private(author_store, os.urandom).plan_direct(author, recipients, post)
            entries = [author_store.append_own(author, p.payload_type, p.payload, NOW_MS) for p in plans]
            dw.append((time.perf_counter() - t0) * 1000)
            reader = people[(r + 7 * 13) % followers]
            reader_store.ingest(entries, NOW_MS)
            stored = [reader_store.get(author.public_key, e.envelope.seq) for e in entries]
            t0 = time.perf_counter()
            opened = Private(reader_store, os.urandom).absorb(reader, stored)
            dr.append((time.perf_counter() - t0) * 1000)
            assert opened == 1, opened
        author_store.close()
        reader_store.close()
    return {"followers_write_ms": round(percentile(fw, 50), 2), "followers_read_ms": round(percentile(fr, 50), 2),
            "direct50_write_ms": round(percentile(dw, 50), 2), "direct50_read_ms": round(percentile(dr, 50), 2)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--authors", type=int, default=2_000)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--batch", type=int, default=5_000, help="entries per ingest while building")
    parser.add_argument("--rounds", type=int, default=100, help="timed queries per case")
    parser.add_argument("--private-rounds", type=int, default=20)
    parser.add_argument("--processes", type=int, default=os.cpu_count() or 1, help="for signing")
    parser.add_argument("--rebuild", action="store_true")
    args = parser.parse_args(argv)

    path = cached_store(cache_dir(args), args.rebuild, lambda p: build(p, args))
    facts = json.loads((path / "bench.json").read_text())
    with Store(path) as store:
        entries = store.count_entries()
        cases = social_cases(store, facts, args.rounds)
    private = private_cases(args.private_rounds)
    print(", ".join(f"{k} {v:.1f}" for k, v in private.items()))
    worst = max(c["p99_ms"] for c in cases.values())
    emit({"bench": "social", "entries": entries, "authors": args.authors, "rounds": args.rounds,
          **cases, **private, "worst_p99_ms": worst, "target_p99_ms": 20, "cores": machine()["cores"]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
