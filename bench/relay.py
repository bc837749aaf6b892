"""Relay: 50 concurrent catch-ups served, peak memory with 1,000,000 hosted entries, ingest rate.

    .venv/bin/python bench/relay.py [--ingest] [--serve] [--memory] [--feeds 1000] [--per-feed 1000]
                                    [--sources 4] [--clients 50] [--slice 10000] [--client-procs 2]

With no part named, all three run on one relay process (`murmurate relay --config relay.toml`),
which hosts the 1,000 feeds by having their authors on its allowlist (1,000 users, each
hosting its own feed; `limits.max_feeds = 1000`):

- ingest: `--sources` real daemons each hold a contiguous share of the feeds (homes built
  once from the cached signed frames and cached in bench/out/). The fresh relay starts with
  all of them as `peers` and catches up from all at once. The time runs from the relay's
  first "connected to" log line to its last "synced with" line (the relay's own log stamps),
  once /metrics shows every entry stored. `verify_per_s` is single-core PyNaCl verify on the
  same entries in the same run; `ratio` = entries_per_s / verify_per_s. `relay_cpu_s` and
  `sources_cpu_s` are the CPU each side used meanwhile (all share the same cores);
  `cpu_bound_entries_per_s` is the relay's CPU per entry spread over every core. The
  sources are stopped afterwards.
- serve: `--clients` light clients in `--client-procs` processes, each client its own
  libp2p host (node/p2p.py, no pubsub) running the real ClientSession (node/core/sync.py)
  and decoding every frame. Client c asks for `--slice` entries from seq 1 of the feeds
  after c's offset (10 feeds of 1,000 for the defaults): the slices are disjoint, so 50
  clients read half the store. All connect first; then all start together. `seconds` runs
  from the first want sent to the last "done" read; per-client p50/p99 are each client's
  own want-to-done time; `relay_cpu_s` is the relay's user+system CPU over that time.
- memory: /proc/PID/status of the relay sampled every 50 ms from its start through ingest
  and serve: peak RssAnon (private: heap, buffers) and RssFile (mostly LMDB's map: page
  cache), overall and per phase, and both just before the serve part. Without --ingest the
  relay's store starts as a copy of the cached source store (bench/out/net-src-*), so it
  hosts the same entries without ingesting them (--memory alone: startup, then serve).
  The whole relay log is left in bench/out/relay-bench-relay.log.

Progress goes to stderr; the last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from contextlib import AsyncExitStack
from pathlib import Path

from _common import emit, machine, percentile
from _net import (OUT, DaemonProcess, author_keys, empty_bootstrap, feed_frames, log, machine_cores,
                  proc_status_kb, share_homes, source_home, verify_rate)
from memory import Sampler, mb
from sync import cpu_seconds

from murmurate.crypto import encode_id

TARGET_RSS_MB = 150
TARGET_INGEST_PER_S = 10_000


class RelayProcess(DaemonProcess):
    """`murmurate relay --config relay.toml`; its data folder is `home`, so the daemon helper
    finds its API socket. `toml` is the config past data_dir (listen and key lines added)."""

    def __init__(self, root: Path, name: str, toml: str) -> None:
        super().__init__(root, name)
        self.home.mkdir(parents=True, exist_ok=True)
        self.config = root / f"{name}.toml"
        self.config.write_text(f'data_dir = "{self.home}"\nlisten = ["/ip4/127.0.0.1/tcp/0"]\n'
                               f'unencrypted_key = true\n{toml}\n')

    def command(self, *more: str) -> list[str]:
        return [sys.executable, "-m", "murmurate.ui.cli", "relay", "--config", str(self.config), *more]

    def metrics(self) -> dict[str, float]:
        url = f"http://127.0.0.1:{self.info['metrics_port']}/metrics"
        with urllib.request.urlopen(url, timeout=30) as r:
            text = r.read().decode()
        return {k: float(v) for k, v in (line.split() for line in text.splitlines() if not line.startswith("#"))}


def relay_toml(feeds: int, peers: list[str]) -> str:
    """Host every feed: each author is an allowlisted user (so each feed is a user's own)."""
    allow = ", ".join(f'"{encode_id(a)}"' for a in author_keys(feeds))
    return (f"peers = {json.dumps(peers)}\n"
            f"[admission]\nallow = [{allow}]\n"
            f"[limits]\nmax_users = {max(feeds, 1_000)}\nmax_feeds = {feeds}\n"
            '[metrics]\nlisten = "127.0.0.1:0"\n')


def log_stamp(line: str) -> float:
    """The relay logs JSON lines with a `ts` in epoch seconds."""
    return float(json.loads(line)["ts"])


# -- ingest ----------------------------------------------------------------------------------

def run_ingest(args: argparse.Namespace, root: Path, total: int, started: list[DaemonProcess]) -> tuple[
        RelayProcess, Sampler, dict]:
    """Start the sources and a fresh relay that catches up from all of them at once.
    Returns the relay (still running), its sampler and the figures; every process started
    goes into `started` at once, so the caller stops them even when this fails."""
    homes = share_homes(args.feeds, args.per_feed, args.sources)
    sample = []
    for frames in feed_frames(args.feeds, args.per_feed):
        sample.extend(frames[:50])
        if len(sample) >= 5_000:
            break
    verify_per_s = verify_rate(sample)
    sources = [DaemonProcess(h.parent, h.name, extra_args=("--bootstrap", str(empty_bootstrap(root)))) for h in homes]
    for s in sources:
        started.append(s)
        s.start()
    log(f"{len(sources)} sources up, each holding {args.feeds // args.sources} feeds")
    relay = RelayProcess(root, "relay", relay_toml(args.feeds, [s.addr for s in sources]))
    started.append(relay)
    relay.start()
    sampler = Sampler(relay.proc.pid)
    cpu0 = cpu_seconds(relay.proc.pid)
    sources_cpu0 = sum(cpu_seconds(s.proc.pid) for s in sources)
    while True:  # every JSON log line has "msg": take them one by one
        line = relay.wait_for_log('"msg"', timeout=3_600)
        if "cutting off peer" in line:  # banned for 10 minutes: the catch-up cannot finish
            raise SystemExit(f"the relay cut off a source during the catch-up: {line}")
        if "synced with" not in line:
            continue  # a catch-up cut short is resumed later and logs a second "synced with" line
        held = relay.metrics()["murmurate_relay_entries"]
        log(f"relay holds {int(held)} of {total} entries")
        if held >= total:
            break
    cpu = cpu_seconds(relay.proc.pid) - cpu0
    sources_cpu = sum(cpu_seconds(s.proc.pid) for s in sources) - sources_cpu0
    peak = dict(sampler.peak)
    events = [line for line in relay.log if line.startswith("{")]  # libp2p also prints plain lines
    start = min(log_stamp(line) for line in events if "connected to" in line)
    end = max(log_stamp(line) for line in events if "synced with" in line)
    seconds = end - start
    rate = total / seconds
    metrics = relay.metrics()
    figures = {"sources": args.sources, "entries": total, "seconds": round(seconds, 2),
               "entries_per_s": round(rate), "verify_per_s": round(verify_per_s),
               "ratio": round(rate / verify_per_s, 3), "relay_cpu_s": round(cpu, 1),
               "cpu_us_per_entry": round(cpu / total * 1e6),
               "cpu_bound_entries_per_s": round(total / (cpu / machine_cores())),
               "sources_cpu_s": round(sources_cpu, 1),
               "ingested_entries_total": int(metrics["murmurate_relay_ingested_entries_total"]),
               "write_transactions": int(metrics["murmurate_relay_write_transactions_total"]),
               "peak_rss_mb": mb(peak["RssAnon"]), "peak_rss_file_mb": mb(peak["RssFile"])}
    log(f"ingest: {total} entries in {seconds:.1f} s ({rate:.0f}/s)")
    return relay, sampler, figures


def relay_from_cache(args: argparse.Namespace, root: Path, started: list[DaemonProcess]) -> tuple[
        RelayProcess, Sampler]:
    """A relay whose store starts as a copy of the cached source store (no ingest)."""
    source = source_home(args.feeds, args.per_feed)
    relay = RelayProcess(root, "relay", relay_toml(args.feeds, []))
    (relay.home / "store").mkdir(mode=0o700)
    shutil.copyfile(source / "store" / "data.mdb", relay.home / "store" / "data.mdb")
    log(f"copied the cached store of {args.feeds * args.per_feed} entries")
    started.append(relay)
    relay.start()
    return relay, Sampler(relay.proc.pid)


# -- serve -----------------------------------------------------------------------------------

def client_wants(client: int, feeds: int, per_feed: int, slice_: int) -> list[tuple[int, int | None]]:
    """(feed index, upto or None) for one client: `slice_` entries from seq 1, starting at the
    client's own offset so that clients read disjoint feeds while the store has enough."""
    per_client = -(-slice_ // per_feed)
    out, left = [], slice_
    for k in range(per_client):
        take = min(per_feed, left)
        out.append(((client * per_client + k) % feeds, None if take == per_feed else take))
        left -= take
    return out


def run_serve(args: argparse.Namespace, relay: RelayProcess) -> dict:
    procs = max(1, min(args.client_procs, args.clients))
    groups = [list(range(args.clients))[i::procs] for i in range(procs)]
    workers = [subprocess.Popen([sys.executable, __file__, "--client-worker", relay.addr, "--feeds", str(args.feeds),
                                 "--per-feed", str(args.per_feed), "--slice", str(args.slice),
                                 "--clients", ",".join(map(str, g))],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True) for g in groups]
    try:
        for w in workers:
            assert w.stdout is not None
            if w.stdout.readline().strip() != "ready":
                raise SystemExit("a client worker failed to connect")
        log(f"{args.clients} clients connected in {procs} processes; starting")
        cpu0 = cpu_seconds(relay.proc.pid)
        for w in workers:
            assert w.stdin is not None
            w.stdin.write("go\n")
            w.stdin.flush()
        results = []
        for w in workers:
            out, _ = w.communicate(timeout=3_600)
            if w.returncode != 0:
                raise SystemExit(f"a client worker failed ({w.returncode})")
            results.extend(json.loads(out.strip().splitlines()[-1]))
        cpu = cpu_seconds(relay.proc.pid) - cpu0
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
                w.wait()
    bad = [r for r in results if r["entries"] != args.slice]
    if bad:
        raise SystemExit(f"client {bad[0]['client']} got {bad[0]['entries']} entries, expected {args.slice}")
    seconds = max(r["end"] for r in results) - min(r["start"] for r in results)
    each = [r["end"] - r["start"] for r in results]
    total = args.clients * args.slice
    log(f"serve: {total} entries to {args.clients} clients in {seconds:.1f} s")
    return {"clients": args.clients, "entries_per_client": args.slice, "slices": "disjoint" if
            args.clients * -(-args.slice // args.per_feed) <= args.feeds else "overlapping",
            "entries": total, "seconds": round(seconds, 2), "entries_per_s": round(total / seconds),
            "client_p50_s": round(percentile(each, 50), 2), "client_p99_s": round(percentile(each, 99), 2),
            "relay_cpu_s": round(cpu, 1), "relay_cpu_us_per_entry": round(cpu / total * 1e6)}


# -- the light clients (one process runs several) ---------------------------------------------

def client_worker(relay_addr: str, clients: list[int], feeds: int, per_feed: int, slice_: int) -> int:
    import trio
    results = trio.run(_clients, relay_addr, clients, feeds, per_feed, slice_)
    print(json.dumps(results), flush=True)
    return 0


async def _clients(relay_addr: str, clients: list[int], feeds: int, per_feed: int, slice_: int) -> list[dict]:
    import hashlib

    import trio

    from murmurate.node.core import sync
    from murmurate.node.p2p import HostConfig, open_host

    keys = author_keys(feeds)
    relay_peer = relay_addr.rsplit("/p2p/", 1)[1]
    async with AsyncExitStack() as stack:
        hosts = []
        for c in clients:
            seed = hashlib.blake2b(f"relay-bench-client:{c}".encode(), digest_size=32).digest()
            host = await stack.enter_async_context(open_host(HostConfig(seed=seed, pubsub=False)))
            host.serve(sync.PROTOCOL, _hold_nothing)  # the relay asks its peers for its feeds too
            await host.dial(relay_addr)
            hosts.append(host)
        print("ready", flush=True)
        await trio.to_thread.run_sync(sys.stdin.readline)
        results: list[dict] = []
        async with trio.open_nursery() as nursery:
            for c, host in zip(clients, hosts):
                wants = [sync.FeedWant(keys[i], 0, upto) for i, upto in client_wants(c, feeds, per_feed, slice_)]
                nursery.start_soon(_catch_up, host, relay_peer, c, wants, results)
        return results


async def _catch_up(host, relay_peer: str, client: int, wants: list, results: list[dict]) -> None:
    """One catch-up through the real ClientSession: it decodes and checks every frame."""
    from murmurate.node.core import framing, sync

    started = time.time()
    stream = await host.open_stream(relay_peer, sync.PROTOCOL)
    session = sync.ClientSession(sync.Want(tuple(wants)))
    await stream.write(framing.encode(sync.encode(session.want)))
    decoder = framing.FrameDecoder(sync.MAX_MESSAGE_BYTES)
    entries = 0
    while not session.done:
        frame = decoder.next_frame()
        if frame is None:
            data = await stream.read(256 * 1024)
            if not data:
                raise SystemExit(f"client {client}: the relay ended the stream before done")
            decoder.feed(data)
            continue
        entries += len(session.on_message(sync.decode(frame)))
    ended = time.time()
    await stream.close()
    results.append({"client": client, "start": started, "end": ended, "entries": entries})


async def _hold_nothing(stream) -> None:
    """Answer the relay's own catch-up requests: this client holds none of its feeds."""
    from murmurate.node.core import framing, sync

    decoder = framing.FrameDecoder(sync.MAX_MESSAGE_BYTES)
    while True:
        frame = decoder.next_frame()
        if frame is None:
            data = await stream.read(65536)
            if not data:
                return
            decoder.feed(data)
            continue
        if isinstance(sync.decode(frame), sync.Want):
            await stream.write(framing.encode(sync.encode(sync.Heads(()))) + framing.encode(sync.encode(sync.Done())))


def report_problems(relay: RelayProcess) -> None:
    """Warnings and errors in the relay's log, on stderr (a bench that hides them misleads)."""
    bad = [line for line in relay.log if '"level": "warning"' in line or '"level": "error"' in line
           or "Traceback" in line]
    saved = OUT / "relay-bench-relay.log"
    saved.write_text("\n".join(relay.log) + "\n")
    log(f"relay log: {len(relay.log)} lines, {len(bad)} warnings or errors (all in {saved})")
    for line in bad[:5]:
        log("  " + line[:300])


# -- main ------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ingest", action="store_true", help="run the ingest part")
    parser.add_argument("--serve", action="store_true", help="run the serve part")
    parser.add_argument("--memory", action="store_true", help="report peak memory (runs the serve part)")
    parser.add_argument("--feeds", type=int, default=1_000)
    parser.add_argument("--per-feed", type=int, default=1_000)
    parser.add_argument("--sources", type=int, default=4, help="source daemons for the ingest part")
    parser.add_argument("--clients", default="50", help="light clients (a worker gets a comma list)")
    parser.add_argument("--slice", type=int, default=10_000, help="entries each client catches up on")
    parser.add_argument("--client-procs", type=int, default=2, help="processes running the light clients")
    parser.add_argument("--client-worker", metavar="RELAY_ADDR", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.client_worker:
        return client_worker(args.client_worker, [int(c) for c in args.clients.split(",")], args.feeds,
                             args.per_feed, args.slice)
    args.clients = int(args.clients)
    if not (args.ingest or args.serve or args.memory):
        args.ingest = args.serve = args.memory = True
    if args.feeds > 100_000:
        raise SystemExit("a relay hosts at most 100,000 feeds (relay.toml limits.max_feeds)")
    total = args.feeds * args.per_feed
    load_before = os.getloadavg()
    result: dict = {"bench": "relay", "feeds": args.feeds, "per_feed": args.per_feed, "entries_hosted": total}

    with tempfile.TemporaryDirectory(prefix="bench-relay-") as tmp:
        root = Path(tmp)
        started: list[DaemonProcess] = []  # stopped in reverse order whatever happens
        try:
            if args.ingest:
                relay, sampler, result["ingest"] = run_ingest(args, root, total, started)
                for source in started[:-1]:
                    source.stop()
                ingest_peak = dict(sampler.peak)
            else:
                relay, sampler = relay_from_cache(args, root, started)
                ingest_peak = None
            idle = proc_status_kb(relay.proc.pid, "RssAnon", "RssFile")
            if args.serve or args.memory:
                # The serve phase's own peak: a second sampler from here on.
                serving = Sampler(relay.proc.pid)
                result["serve"] = run_serve(args, relay)
                serve_peak = serving.stop()
                result["serve"].update(peak_rss_mb=mb(serve_peak["RssAnon"]),
                                       peak_rss_file_mb=mb(serve_peak["RssFile"]))
            peak = sampler.stop()
            if args.memory:
                result["memory"] = {
                    "entries_hosted": int(relay.metrics()["murmurate_relay_entries"]),
                    "peak_rss_mb": mb(peak["RssAnon"]), "peak_rss_file_mb": mb(peak["RssFile"]),
                    "peak_vmhwm_mb": mb(peak["VmHWM"]), "samples": sampler.samples,
                    "before_serve_rss_mb": mb(idle["RssAnon"]), "before_serve_rss_file_mb": mb(idle["RssFile"]),
                    "ingest_peak_rss_mb": mb(ingest_peak["RssAnon"]) if ingest_peak else None,
                    "serve_peak_rss_mb": mb(serve_peak["RssAnon"])}
        finally:
            for node in reversed(started):
                if node.proc is not None:
                    node.stop(timeout=60)
                node.close()
            sources = [node for node in started if not isinstance(node, RelayProcess)]
            (OUT / "relay-bench-sources.log").write_text(  # beside the relay's log, for a failed run
                "".join(f"{node.name}: {line}\n" for node in sources for line in node.log))
            relays = [node for node in started if isinstance(node, RelayProcess)]
            if relays:
                report_problems(relays[0])
    result.update(targets={"peak_rss_mb": TARGET_RSS_MB, "ingest_entries_per_s": TARGET_INGEST_PER_S},
                  loadavg_before=[round(x, 2) for x in load_before],
                  loadavg_after=[round(x, 2) for x in os.getloadavg()], machine=machine())
    emit(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
