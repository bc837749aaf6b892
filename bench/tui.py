"""Terminal client speed: first paint over a 100,000-entry store, and scrolling 10,000 entries.

    .venv/bin/python bench/tui.py [--entries 100000] [--authors 100] [--follows 50] [--scroll 10000] [--rebuild]

Builds a home once (identity through `murmurate init`, feeds signed and ingested with
murmurate.store directly; cached under bench/out/, --rebuild for a fresh one), starts its
daemon (already running, as for a returning user), follows `follows` authors, then measures:
  - first_paint_process: `murmurate tui` started in a pseudo-terminal of 120x40 until the
    text of the first home entry has been written to it (interpreter start, imports, the
    app); median of 5;
  - first_paint: the real client headless (Textual's run_test, 120x40), from creating the app
    to the first frame that shows the home page (entries laid out at the view's width);
    median of 5 (imports done once, so this is the app's own part);
  - scrolling: `scroll` federated entries set into one view, then j x300 and page down x100,
    each after a random pause (0-50 ms, not timed), and k x300 and page up x50 back to back
    ("burst"); each timed from the key event to the first frame after the view moved.
Frames are timed where the app hands them to its terminal, and turned into escape codes as a
terminal would need (headless Textual skips that). Pilot's press/pause are not used for timing:
they sleep until the process looks idle (20 ms at least, twice a key).
The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import os
import pty
import random
import select
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import termios
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import NOW_MS, OUT, build_feeds, cached_store, emit, identity, machine, percentile  # noqa: E402
from murmurate.crypto import encode_id  # noqa: E402
from murmurate.node.home import Home, socket_path  # noqa: E402
from murmurate.store import Store, decode_frame  # noqa: E402
from murmurate.ui.api_client import ApiClient  # noqa: E402
from murmurate.ui.tui.app import MurmurateApp  # noqa: E402
from murmurate.ui.tui.launch import Launcher  # noqa: E402
from murmurate.ui.tui.home import PAGE as HOME_PAGE  # noqa: E402
from murmurate.ui.tui.timeline import TimelinePane  # noqa: E402
from textual import events  # noqa: E402
from textual._compositor import CompositorUpdate  # noqa: E402

SALT = "tui"
SIZE = (120, 40)


def build(path: Path, env: dict[str, str], args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    home = path / "home"
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
    print(f"built {args.entries} entries in {time.perf_counter() - t0:.0f} s", file=sys.stderr)


class Frames:
    """Times the frames the app hands to its terminal. It wraps the app's `_display` (where every
    screen update ends) and, headless, also turns the update into the escape codes a terminal
    would receive (headless Textual skips that step; the user's terminal does not).

    `until(done)` resolves at the first frame shown once `done()` holds: the user sees it then.
    This replaces Pilot's `pause()`/`press()`, which wait for the process to look idle (sleeps of
    20 ms at least, twice per key press): those sleeps were most of the old per-key figure."""

    def __init__(self, app: MurmurateApp) -> None:
        self.app = app
        self._done: Callable[[], bool] | None = None
        self._shown: asyncio.Future[float] | None = None
        display = app._display

        def timed_display(screen: Any, renderable: Any) -> None:
            display(screen, renderable)
            if isinstance(renderable, CompositorUpdate):
                renderable.render_segments(app.console)
            if self._done is not None and self._shown is not None and not self._shown.done() and self._done():
                self._shown.set_result(time.perf_counter())

        app._display = timed_display  # type: ignore[method-assign]

    async def until(self, done: Callable[[], bool], timeout: float = 30.0) -> float:
        self._done, self._shown = done, asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(self._shown, timeout)
        finally:
            self._done = self._shown = None


def press(app: MurmurateApp, key: str) -> None:
    """A key as the terminal driver delivers it (Pilot's press would also wait for idle)."""
    event = events.Key(key, key if len(key) == 1 else None)
    event.set_sender(app)
    assert app._driver is not None
    app._driver.send_message(event)


def home_shown(app: MurmurateApp) -> bool:
    panes = app.screen.query(TimelinePane) if app.ready else []
    return bool(panes) and bool(panes.first().view.items) and panes.first().view.laid_out


async def measure(launcher: Launcher, args: argparse.Namespace) -> dict[str, float]:
    paints = []
    for _ in range(5):
        t0 = time.perf_counter()
        app = MurmurateApp(launcher=launcher)
        frames = Frames(app)
        async with app.run_test(size=SIZE) as pilot:
            shown = await frames.until(lambda: home_shown(app))
            paints.append((shown - t0) * 1000)
            if len(paints) < 5:
                continue
            view = app.screen.query_one(TimelinePane).view
            assert len(view.items) == HOME_PAGE, len(view.items)
            await pilot.pause()
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
            load_ms = (await frames.until(lambda: True) - t0) * 1000
            await pilot.pause()
            rng = random.Random(5)
            # A reader's keys come at any moment of Textual's 60 Hz frame clock: a random gap
            # (0-50 ms, not timed) before each. "burst": each key the moment the previous frame is
            # out, which always lands just after a frame tick (the worst phase; see docs).
            paced = [await scroll_step(app, frames, pilot, view, key, rng.uniform(0, 0.05))
                     for key in ["j"] * 300 + ["pagedown"] * 100]
            burst = [await scroll_step(app, frames, pilot, view, key, 0.0)
                     for key in ["k"] * 300 + ["pageup"] * 50]
            assert 0 < view.selected < 2000, view.selected
    return {"first_paint_ms": round(statistics.median(paints), 1), "first_paint_max_ms": round(max(paints), 1),
            "scroll_p50_ms": round(percentile(paced, 50), 2), "scroll_p99_ms": round(percentile(paced, 99), 2),
            "scroll_burst_p50_ms": round(percentile(burst, 50), 2),
            "scroll_burst_p99_ms": round(percentile(burst, 99), 2),
            "scroll_entries": len(view.items), "render_10k_ms": round(load_ms, 1)}


async def scroll_step(app: MurmurateApp, frames: Frames, pilot: Any, view: Any, key: str, gap_s: float) -> float:
    """ms from a key press to the first frame after the view moved (selection bar or scroll)."""
    await asyncio.sleep(gap_s)
    before = (view.selected, view.scroll_y)
    t0 = time.perf_counter()
    press(app, key)
    shown = await frames.until(lambda: (view.selected, view.scroll_y) != before)
    await pilot._wait_for_screen()  # let the key's last messages settle (not timed)
    return (shown - t0) * 1000


def process_paint(home: Path, env: dict[str, str], marker: str) -> float:
    """ms from starting `murmurate tui` in a terminal (a pty of SIZE) until `marker`, a text of
    the first home entry, has been written to it: interpreter start and imports included."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", SIZE[1], SIZE[0], 0, 0))
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "murmurate.ui.cli", "--home", str(home), "tui"],
                            stdin=slave, stdout=slave, stderr=slave, env={**env, "TERM": "xterm-256color"},
                            start_new_session=True)
    os.close(slave)
    seen, shown, end = b"", None, time.monotonic() + 60
    try:
        while shown is None:
            assert time.monotonic() < end, f"the client did not show {marker!r}: {seen[-300:]!r}"
            if select.select([master], [], [], 1.0)[0]:
                seen += os.read(master, 65536)
                if marker.encode() in seen:
                    shown = time.perf_counter()
        os.write(master, b"q")
        while proc.poll() is None and time.monotonic() < end:  # keep reading: a full pty blocks its writes
            if select.select([master], [], [], 0.1)[0]:
                try:
                    os.read(master, 65536)
                except OSError:  # the client closed the terminal
                    break
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        os.close(master)
    return (shown - t0) * 1000


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--entries", type=int, default=100_000)
    p.add_argument("--authors", type=int, default=100)
    p.add_argument("--follows", type=int, default=50)
    p.add_argument("--scroll", type=int, default=10_000)
    p.add_argument("--rebuild", action="store_true", help="sign and ingest the cached home afresh")
    args = p.parse_args()
    root = Path(tempfile.mkdtemp(prefix="mur-tui-"))
    env = {**os.environ, "XDG_RUNTIME_DIR": str(root)}
    daemon = None
    try:
        home = cached_store(OUT / f"tui-{args.entries}-{args.authors}", args.rebuild,
                            lambda path: build(path, env, args)) / "home"
        log = open(root / "daemon.log", "wb")
        daemon = subprocess.Popen([sys.executable, "-m", "murmurate.ui.cli", "--home", str(home), "daemon",
                                   "--listen", "/ip4/127.0.0.1/tcp/0"], env=env, stderr=log,
                                  stdout=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        path = socket_path(Home.resolve(str(home), env), env)
        end = time.monotonic() + 60
        while (client := ApiClient.connect(path)) is None:
            assert daemon.poll() is None and time.monotonic() < end, "the daemon did not start"
            time.sleep(0.05)
        following = set(client.call("following"))
        for a in range(args.follows):
            if (author := encode_id(identity(a, SALT).public_key)) not in following:  # a cached home follows them
                client.call("follow", id=author)
        first = client.call("timeline", which="home", limit=1)["items"][0]
        process = [process_paint(home, env, first["text"][:16]) for _ in range(5)]
        result = asyncio.run(measure(Launcher(str(home), env), args))
        result |= {"first_paint_process_ms": round(statistics.median(process), 1),
                   "first_paint_process_max_ms": round(max(process), 1)}
        client.call("shutdown")
        daemon.wait(30)
        emit({"bench": "tui", "entries": args.entries, "follows": args.follows, **result, **machine()})
    finally:
        if daemon is not None and daemon.poll() is None:
            daemon.kill()
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
