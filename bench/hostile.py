"""Private memory of a daemon under a memory attack on its sync server (issue 11, point 1).

    .venv/bin/python bench/hostile.py [--peers 40] [--streams 8] [--partial 500000] [--hold 40]
                                      [--daemon-python PATH]

One daemon; its RssAnon idle; then `--peers` fresh peer ids (real libp2p hosts in this
process) open `--streams` sync streams each: half send a length prefix promising a 590 KB
frame and `--partial` bytes of it, half send nothing; none ever finishes or closes
(tests/hostile.py). RssAnon of the daemon is sampled every 20 ms until every stream has been
ended by the daemon or `--hold` seconds passed. `--daemon-python` runs the daemon with
another interpreter, e.g. /work/main/.venv/bin/python to measure another checkout's code
(the attack itself is this checkout's). The last stdout line is one JSON object.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio

from _common import emit, machine
from _net import DaemonProcess, log

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
from hostile import Sampler, attack, rss_anon_kb  # noqa: E402  (tests/ is not a package)


class OtherPythonDaemon(DaemonProcess):
    python = sys.executable

    @property
    def env(self) -> dict[str, str]:
        return {**super().env, "PYTHONDONTWRITEBYTECODE": "1"}  # leave the other checkout untouched


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--peers", type=int, default=40)
    parser.add_argument("--streams", type=int, default=8)
    parser.add_argument("--partial", type=int, default=500_000)
    parser.add_argument("--hold", type=float, default=40.0)
    parser.add_argument("--daemon-python", default=sys.executable)
    args = parser.parse_args()
    OtherPythonDaemon.python = args.daemon_python
    root = Path(tempfile.mkdtemp(prefix="bench-hostile-"))
    target = OtherPythonDaemon(root, "target").init().start()
    try:
        assert target.proc is not None
        pid = target.proc.pid
        time.sleep(2)  # settle after start (a measurement pause, not a wait for a condition)
        idle_kb = rss_anon_kb(pid)
        sampler = Sampler(pid)
        log(f"idle RssAnon {idle_kb / 1024:.1f} MB; attacking with {args.peers} peers x {args.streams} streams")
        started = time.monotonic()
        report = trio.run(lambda: attack(target.info["peer_id"], target.addr, peers=args.peers,
                                         streams_per_peer=args.streams, partial=args.partial,
                                         end_deadline_s=args.hold))
        peak_kb = sampler.stop()
        after_kb = rss_anon_kb(pid)
        result = {
            "bench": "hostile", **machine(), "daemon_python": args.daemon_python,
            "peers": args.peers, "streams_per_peer": args.streams, "partial_bytes": args.partial,
            "connected": report.connected, "streams_tried": report.streams, "streams_accepted": report.opened,
            "partial_mb_taken": round(report.partial_bytes / 1e6, 1), "streams_ended_by_daemon": report.ended,
            "streams_still_open_after_hold": report.still_open, "slowest_end_s": round(report.slowest_end_s, 1),
            "idle_rss_anon_mb": round(idle_kb / 1024, 1), "peak_rss_anon_mb": round(peak_kb / 1024, 1),
            "rise_mb": round((peak_kb - idle_kb) / 1024, 1), "after_rss_anon_mb": round(after_kb / 1024, 1),
            "seconds": round(time.monotonic() - started, 1),
        }
    finally:
        target.close()
    emit(result)


if __name__ == "__main__":
    main()
