"""Catch-up throughput: a fresh node fetches 100,000 entries (1,000 feeds x 100) from one peer.

    .venv/bin/python bench/sync.py [--feeds 1000] [--per-feed 100] [--profile DIR]

Two daemons, two processes, over 127.0.0.1. The source home (its own identity, following
nobody) holds the feeds, built once and cached in bench/out/. The fresh node's own feed
follows the 1,000 authors (written into its store before it starts); it starts with
`--peer` naming the source, dials it and runs one catch-up. The time is from its log
line "connected to" to its line "synced with ...: N entries stored" (the daemon's own
clock, millisecond log stamps), then the bench checks through the API that it holds them.
`cpu_us_per_entry` is the CPU both daemons spent per entry, and `cpu_bound_entries_per_s`
that work spread over every core (what an idle machine would reach at best): the VM is
shared, so wall-clock figures move with other jobs.
The yardstick is single-core PyNaCl VerifyKey.verify on the same entries, timed in the
same run: `ratio` = entries_per_s / verify_per_s.

--profile DIR runs py-spy (pip install py-spy into the venv) on both daemons during the
catch-up and writes its raw collapsed stacks there (source.txt, fresh.txt).
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import os
import itertools
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

from _common import emit, machine
from _net import (DaemonProcess, author_keys, empty_bootstrap, feed_frames, follower_home, machine_cores,
                  source_home, verify_rate)

ROOT = Path(__file__).resolve().parent.parent


def stamp(line: str) -> float:
    """Seconds since the epoch of a daemon log line ("2026-01-02 03:04:05,678 INFO ...")."""
    return datetime.strptime(line[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def find(lines: list[str], needle: str) -> str:
    return next(line for line in lines if needle in line)


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_profiler(pid: int, out: Path) -> subprocess.Popen:
    return subprocess.Popen([str(ROOT / ".venv/bin/py-spy"), "record", "--pid", str(pid), "--rate", "200",
                             "--threads", "--format", "raw", "--output", str(out), "--nonblocking"],
                            stdout=subprocess.DEVNULL, stderr=out.with_suffix(".log").open("w"))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--feeds", type=int, default=1_000)
    parser.add_argument("--per-feed", type=int, default=100)
    parser.add_argument("--profile", type=Path, help="py-spy both daemons into this folder")
    args = parser.parse_args(argv)
    total = args.feeds * args.per_feed

    source = source_home(args.feeds, args.per_feed)
    sample = list(itertools.islice(itertools.chain.from_iterable(feed_frames(args.feeds, args.per_feed)), 5_000))
    verify_per_s = verify_rate(sample)

    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        root = Path(tmp)
        src = DaemonProcess(source.parent, source.name, extra_args=("--bootstrap", str(empty_bootstrap(root))))
        dst = follower_home(root, "fresh", author_keys(args.feeds))
        profilers: list[subprocess.Popen] = []
        try:
            src.start()
            if args.profile:
                args.profile.mkdir(parents=True, exist_ok=True)
                profilers.append(start_profiler(src.proc.pid, args.profile / "source.txt"))
            src_cpu0 = cpu_seconds(src.proc.pid)
            dst.start("--peer", src.addr)
            if args.profile:
                profilers.append(start_profiler(dst.proc.pid, args.profile / "fresh.txt"))
            line = dst.wait_for_log("synced with", timeout=600)
            cpu = {"source": cpu_seconds(src.proc.pid) - src_cpu0, "fresh": cpu_seconds(dst.proc.pid)}
            held = dst.call("status")["entries"] - args.feeds  # minus its own follow entries
            # The entries are readable now; the audit of the signatures the chained check
            # deferred (protocol.md 5.1) goes on in the background. Time it too.
            # (polled 4 times a second: `status` is not free, and the poll must not slow the audit)
            deadline = time.monotonic() + 600
            while dst.call("status")["unaudited"] and time.monotonic() < deadline:
                time.sleep(0.25)
            audited_at = time.time()
            cpu_audited = cpu_seconds(dst.proc.pid)
            for p in profilers:
                p.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
                p.wait(timeout=60)
            connected = stamp(find(dst.log, "connected to"))
            synced = stamp(line)
            stored = int(line.split("synced with", 1)[1].split(":")[1].split()[0])
        finally:
            for node in (dst, src):
                if node.proc is not None:
                    node.stop()
                node.close()
    if held != total or stored != total:
        raise SystemExit(f"the fresh node holds {held} entries (stored {stored}), expected {total}")
    seconds = synced - connected
    audited_seconds = audited_at - connected
    entries_per_s = total / seconds
    emit({"bench": "sync", "entries": total, "feeds": args.feeds, "seconds": round(seconds, 3),
          "entries_per_s": round(entries_per_s), "verify_per_s": round(verify_per_s),
          "ratio": round(entries_per_s / verify_per_s, 3),
          # until every signature is checked, the deferred ones included
          "audited_seconds": round(audited_seconds, 3), "audited_entries_per_s": round(total / audited_seconds),
          "cpu_s_fresh_audited": round(cpu_audited, 1),
          # CPU both daemons used (the fresh one from its start): what bounds the rate on an
          # idle machine is this work spread over the cores.
          "cpu_s_fresh": round(cpu["fresh"], 1), "cpu_s_source": round(cpu["source"], 1),
          "cpu_us_per_entry": round((cpu["fresh"] + cpu["source"]) / total * 1e6),
          "cpu_bound_entries_per_s": round(total / ((cpu["fresh"] + cpu["source"]) / machine_cores())), "target_entries_per_s": 15_000,
          "machine": machine()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
