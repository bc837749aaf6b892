"""Publish-to-visible latency: 10 daemons in a random connected graph, 9 following one author.

    .venv/bin/python bench/propagation.py [--nodes 10] [--posts 200] [--rate 5] [--seed 1]

Node 0 is the author; the others follow it (by plain id: they learn no address of it, so
posts reach most of them only through other followers). Each node dials 2 or 3 others
(seeded; node i first dials one of nodes 0..i-1, so the graph is connected). After the
GossipSub meshes form and one warm-up post has reached everyone, the author posts
`posts` times at `rate` per second. Every follower's API subscription is read by its own
thread, which timestamps each arrival. A post's latency is from the author's `post` call
returning to its arrival at the LAST follower. From the followers' `status` stats:
`by_gossip` counts GossipSub messages they received (duplicates included),
`by_live_stream` the entries they stored from live sync streams, `by_catchup` those
stored by catch-ups.
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import emit, machine, percentile
from _net import DaemonProcess, empty_bootstrap, log, wait_until


def graph(nodes: int, rng: random.Random) -> set[tuple[int, int]]:
    """Edges (dialler, dialled): node i dials one earlier node (connected), then each node
    dials more until it has made 2 or 3 dials (node 0 only gets dialled, then dials too)."""
    edges: set[tuple[int, int]] = set()
    linked: set[frozenset[int]] = set()
    for i in range(1, nodes):
        j = rng.randrange(i)
        edges.add((i, j))
        linked.add(frozenset((i, j)))
    for i in range(nodes):
        want = rng.choice((2, 3))
        made = sum(1 for a, _ in edges if a == i)
        others = [j for j in range(nodes) if j != i and frozenset((i, j)) not in linked]
        rng.shuffle(others)
        for j in others[:max(0, want - made)]:
            edges.add((i, j))
            linked.add(frozenset((i, j)))
    return edges


def cpu_seconds(nodes: list[DaemonProcess]) -> float:
    """User + system CPU time used so far by the daemons (from /proc/PID/stat)."""
    total = 0
    for node in nodes:
        fields = Path(f"/proc/{node.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15)
    return total / os.sysconf("SC_CLK_TCK")


class Arrivals:
    """Reads one follower's event stream on a thread; seq -> monotonic arrival time."""

    def __init__(self, node: DaemonProcess, author: str) -> None:
        self.times: dict[int, float] = {}
        self.client = node.subscribe()
        self.author = author
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        try:
            while True:
                event = self.client.next_notification()
                now = time.monotonic()
                item = event.get("params", {}).get("item") or {}
                if item.get("author") == self.author:
                    with self.changed:
                        self.times.setdefault(item["seq"], now)
                        self.changed.notify_all()
        except Exception:  # the client was closed at the end (or the daemon died: seen as missing posts)
            return

    def wait_for(self, seq: int, timeout: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: seq in self.times, timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=10)
    parser.add_argument("--posts", type=int, default=200)
    parser.add_argument("--rate", type=float, default=5.0, help="posts per second")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", type=Path, help="py-spy nodes 0, 3 and 5 into this folder")
    args = parser.parse_args(argv)
    rng = random.Random(args.seed)
    edges = graph(args.nodes, rng)

    with tempfile.TemporaryDirectory(prefix="bench-prop-") as tmp:
        root = Path(tmp)
        boot = str(empty_bootstrap(root))
        nodes = [DaemonProcess(root, f"n{i}", extra_args=("--bootstrap", boot)).init() for i in range(args.nodes)]
        readers: list[Arrivals] = []
        try:
            for node in nodes:
                node.start()
            author, followers = nodes[0], nodes[1:]
            for a, b in sorted(edges):
                nodes[a].call("connect", addr=nodes[b].addr)
            for node in followers:
                node.call("follow", id=author.id)
            readers = [Arrivals(node, author.id) for node in followers]

            def live(node: DaemonProcess) -> bool:
                feed = next(f for f in node.call("status")["feeds"] if f["id"] == author.id)
                return feed["live_peers"] >= 1
            for node in nodes:
                wait_until(lambda: live(node), 60, f"{node.name} to have a peer pushing the author's feed")
            warm = author.call("post", text="warm-up")["seq"]
            profilers = []
            if args.profile:
                from sync import start_profiler
                args.profile.mkdir(parents=True, exist_ok=True)
                profilers = [start_profiler(nodes[i].proc.pid, args.profile / f"n{i}.txt") for i in (0, 3, 5)]
            for r in readers:
                if not r.wait_for(warm, 60):
                    raise SystemExit("the warm-up post did not reach every follower within 60 s")
            before = [n.call("status")["stats"] for n in followers]

            cpu_before, wall_before = cpu_seconds(nodes), time.monotonic()
            sent: dict[int, float] = {}
            post_ms: list[float] = []
            interval = 1 / args.rate
            start = time.monotonic()
            for k in range(args.posts):
                delay = start + k * interval - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                called = time.monotonic()
                entry = author.call("post", text=f"post {k} of the propagation bench")
                sent[entry["seq"]] = time.monotonic()
                post_ms.append((sent[entry["seq"]] - called) * 1000)
            last = max(sent)
            deadline = time.monotonic() + 60
            missing = 0
            for r in readers:
                for seq in sent:
                    if not r.wait_for(seq, max(0.0, deadline - time.monotonic())):
                        missing += 1
            cores_busy = (cpu_seconds(nodes) - cpu_before) / (time.monotonic() - wall_before)
            after = [n.call("status")["stats"] for n in followers]
            for p in profilers:
                p.send_signal(signal.SIGINT)
                p.wait(timeout=60)
            edges_out = sorted(edges)
        finally:
            for r in readers:
                r.client.close()
            for node in nodes:
                try:
                    if node.proc is not None:
                        node.stop()
                except AssertionError as e:
                    log(str(e))
                node.close()

    latencies, firsts = [], []
    for seq, t in sent.items():
        arrivals = [r.times.get(seq) for r in readers]
        if all(a is not None for a in arrivals):
            latencies.append((max(arrivals) - t) * 1000)  # type: ignore[type-var]
            firsts.append((min(arrivals) - t) * 1000)  # type: ignore[type-var]
    per_follower = {node.name: round(percentile([(r.times[s] - t) * 1000 for s, t in sent.items() if s in r.times], 50), 1)
                    for node, r in zip(followers, readers)}
    by_gossip = sum(a["gossip_in"] - b["gossip_in"] for a, b in zip(after, before))
    by_live = sum(a["live_in"] - b["live_in"] for a, b in zip(after, before))
    # (a live fetch adds to synced_entries only when its stream ends)
    by_catchup = sum(a["synced_entries"] - b["synced_entries"] for a, b in zip(after, before))
    emit({"bench": "propagation", "nodes": args.nodes, "followers": len(followers), "posts": len(sent),
          "rate_per_s": args.rate, "seed": args.seed, "edges": edges_out, "last_seq": last,
          "complete_posts": len(latencies), "missing_arrivals": missing,
          "p50_ms": round(percentile(latencies, 50), 1), "p99_ms": round(percentile(latencies, 99), 1),
          "max_ms": round(max(latencies), 1),
          "first_follower_p50_ms": round(percentile(firsts, 50), 1), "p50_ms_by_follower": per_follower,
          "post_call_ms_p50": round(percentile(post_ms, 50), 1),
          "daemons_cpu_cores_busy": round(cores_busy, 2), "by_gossip": by_gossip, "by_live_stream": by_live, "by_catchup": by_catchup,
          "target_p99_ms": 1000, "machine": machine()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
