"""Peak private memory of a daemon holding N entries while it serves a catch-up of them.

    .venv/bin/python bench/memory.py [--entries 1000000] [--feeds 1000] [--fetch-feeds F]

The serving daemon's home (1,000 feeds of N/1,000 entries, its own identity following
nobody) is built once and cached in bench/out/ (a 1M-entry build takes minutes). A fresh
daemon following F of those authors (default: all) connects and catches up; meanwhile
/proc/PID/status of the serving daemon is sampled every 50 ms. `RssAnon` is the
process's private memory (Python heap, buffers); `RssFile` is file-backed pages mapped
into it, here LMDB's memory map: page cache the kernel can drop, reported beside it.
The fetching daemon's peak RssAnon is reported too. The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import emit, machine
from _net import DaemonProcess, author_keys, empty_bootstrap, follower_home, log, proc_status_kb, source_home

FIELDS = ("RssAnon", "RssFile", "VmHWM")


class Sampler:
    """Peak of /proc/PID/status fields, sampled every `interval` seconds on a thread."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = dict.fromkeys(FIELDS, 0)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            now = proc_status_kb(self.pid, *FIELDS)
            self.samples += 1
            for k, v in now.items():
                self.peak[k] = max(self.peak[k], v)
            self._stop.wait(self.interval)

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join()
        return self.peak


def mb(kb: int) -> float:
    return round(kb / 1024, 1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--feeds", type=int, default=1_000)
    parser.add_argument("--fetch-feeds", type=int, help="how many of the feeds the fresh node follows (default all)")
    args = parser.parse_args(argv)
    per_feed = args.entries // args.feeds
    fetch_feeds = args.fetch_feeds or args.feeds
    source = source_home(args.feeds, per_feed)

    with tempfile.TemporaryDirectory(prefix="bench-mem-") as tmp:
        root = Path(tmp)
        src = DaemonProcess(source.parent, source.name, extra_args=("--bootstrap", str(empty_bootstrap(root))))
        dst = follower_home(root, "fresh", author_keys(args.feeds)[:fetch_feeds])
        try:
            src.start()
            idle = proc_status_kb(src.proc.pid, *FIELDS)
            serving = Sampler(src.proc.pid)
            started = time.monotonic()
            dst.start("--peer", src.addr)
            fetching = Sampler(dst.proc.pid)
            line = dst.wait_for_log("synced with", timeout=3_600)
            seconds = time.monotonic() - started
            peak, peak_fetch = serving.stop(), fetching.stop()
            stored = int(line.split("synced with", 1)[1].split(":")[1].split()[0])
        finally:
            for node in (dst, src):
                if node.proc is not None:
                    node.stop()
                node.close()
    emit({"bench": "memory", "entries_held": args.feeds * per_feed, "entries_served": stored,
          "feeds_served": fetch_feeds, "seconds": round(seconds, 1), "samples": serving.samples,
          "idle_rss_mb": mb(idle["RssAnon"]), "peak_rss_mb": mb(peak["RssAnon"]),
          "peak_rss_file_mb": mb(peak["RssFile"]), "peak_vmhwm_mb": mb(peak["VmHWM"]),
          "fetcher_peak_rss_mb": mb(peak_fetch["RssAnon"]), "fetcher_peak_rss_file_mb": mb(peak_fetch["RssFile"]),
          "target_peak_rss_mb": 150, "machine": machine()})
    log(f"served {stored} entries in {seconds:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
