"""Terminal client speed: first paint over a 100,000-entry store, and scrolling 10,000 entries.

    .venv/bin/python bench/tui.py [--entries 100000] [--authors 100] [--follows 50] [--scroll 10000]

Builds a throw-away home (identity through `murmurate init`, feeds signed and ingested with
murmurate.store directly), starts its daemon, follows `follows` authors through the API,
then runs the real client headless (Textual's run_test, 120x40):
  - first paint: from creating the app to the home timeline's first page on screen (the
    daemon is already running, as it is for a returning user); median of 5 starts;
  - scrolling: `scroll` federated entries loaded into one timeline view, then 300 presses of
    j and 100 of page down, each timed until the app is idle again (key handled, lines drawn).
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import NOW_MS, build_feeds, emit, identity, machine, percentile  # noqa: E402
from murmurate.crypto import encode_id  # noqa: E402
from murmurate.node.home import Home, socket_path  # noqa: E402
from murmurate.store import Store, decode_frame  # noqa: E402
from murmurate.ui.api_client import ApiClient  # noqa: E402
from murmurate.ui.tui.app import MurmurateApp  # noqa: E402
from murmurate.ui.tui.launch import Launcher  # noqa: E402
from murmurate.ui.tui.timeline import TimelinePane  # noqa: E402

SALT = "tui"
SIZE = (120, 40)


def build(home: Path, env: dict[str, str], args: argparse.Namespace) -> None:
    cli = [sys.executable, "-m", "murmurate.ui.cli", "--home", str(home)]
    subprocess.run(cli + ["init", "--no-passphrase"], env=env, check=True, capture_output=True)
    rng = random.Random(7)
    per = args.entries // args.authors
    jobs = [(a, SALT, sorted(NOW_MS - rng.randrange(30 * 86_400_000) for _ in range(per)), 200, a)
            for a in range(args.authors)]
    feeds = build_feeds(jobs, os.cpu_count() or 1)
    order = sorted((decode_frame(f).envelope.timestamp_ms, a, i) for a, feed in enumerate(feeds)
                   for i, f in enumerate(feed))
    with Store(Home.resolve(str(home), env).store_dir) as store:
        for start in range(0, len(order), 2000):
            store.ingest([decode_frame(feeds[a][i]) for _, a, i in order[start:start + 2000]], NOW_MS)


async def measure(launcher: Launcher, args: argparse.Namespace) -> dict[str, float]:
    paints = []
    for _ in range(5):
        t0 = time.perf_counter()
        app = MurmurateApp(launcher=launcher)
        async with app.run_test(size=SIZE) as pilot:
            while not (app.ready and app.screen.query(TimelinePane) and app.screen.query_one(TimelinePane).view.items):
                await pilot.pause(0.001)
            await pilot.pause()
            paints.append((time.perf_counter() - t0) * 1000)
            if len(paints) < 5:
                continue
            view = app.screen.query_one(TimelinePane).view
            view.live = False
            items: list[dict] = []
            cursor = None
            while len(items) < args.scroll:
                page = await app.api.call("timeline", which="federated", limit=500, cursor=cursor)
                items.extend(page["items"])
                cursor = page["next_cursor"]
                if cursor is None:
                    break
            t0 = time.perf_counter()
            view.set_items(items[:args.scroll])
            await pilot.pause()
            load_ms = (time.perf_counter() - t0) * 1000
            steps = []
            for key in ["j"] * 300 + ["pagedown"] * 100:
                t0 = time.perf_counter()
                await pilot.press(key)
                steps.append((time.perf_counter() - t0) * 1000)
            assert view.selected > 300, view.selected
    return {"first_paint_ms": round(statistics.median(paints), 1), "first_paint_max_ms": round(max(paints), 1),
            "scroll_p50_ms": round(percentile(steps, 50), 2), "scroll_p99_ms": round(percentile(steps, 99), 2),
            "scroll_entries": len(view.items), "render_10k_ms": round(load_ms, 1)}


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--entries", type=int, default=100_000)
    p.add_argument("--authors", type=int, default=100)
    p.add_argument("--follows", type=int, default=50)
    p.add_argument("--scroll", type=int, default=10_000)
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mur-tui-"))
    env = {**os.environ, "XDG_RUNTIME_DIR": str(root)}
    home = root / "home"
    daemon = None
    try:
        t0 = time.perf_counter()
        build(home, env, args)
        print(f"built {args.entries} entries in {time.perf_counter() - t0:.0f} s", file=sys.stderr)
        log = open(root / "daemon.log", "wb")
        daemon = subprocess.Popen([sys.executable, "-m", "murmurate.ui.cli", "--home", str(home), "daemon",
                                   "--listen", "/ip4/127.0.0.1/tcp/0"], env=env, stderr=log,
                                  stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        path = socket_path(Home.resolve(str(home), env), env)
        end = time.monotonic() + 60
        while (client := ApiClient.connect(path)) is None:
            assert daemon.poll() is None and time.monotonic() < end, "the daemon did not start"
            time.sleep(0.05)
        for a in range(args.follows):
            client.call("follow", id=encode_id(identity(a, SALT).public_key))
        result = asyncio.run(measure(Launcher(str(home), env), args))
        client.call("shutdown")
        daemon.wait(30)
        emit({"bench": "tui", "entries": args.entries, "follows": args.follows, **result, **machine()})
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
