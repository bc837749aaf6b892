"""The Textual application: boots (identity, daemon), then shows the screens.

It holds one API connection (`api`, an AsyncApi or anything with the same `call`) that also
carries the live `event` notifications; screens never talk to the daemon any other way.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import time
from collections.abc import Callable
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding
from textual.screen import Screen

from ..api_client import ApiError
from .launch import Launcher, LaunchError
from .home import HomeScreen, home_page

MAX_CHARS = 500  # the API does not report the node's post.max_chars yet; the daemon enforces it

# Screens other than home are imported when first shown: importing all of them (and the Textual
# widgets they use) at start added about 100 ms before the first paint.


def _screen(module: str, name: str) -> Any:
    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


def _mode(module: str, name: str) -> Callable[[], Screen[Any]]:
    return lambda: _screen(module, name)()


class MurmurateApp(App[None]):
    TITLE = "Murmurate"
    CSS = """
    Screen { layout: vertical; }
    .topbar { height: 1; background: $primary; color: $text; padding: 0 1; }
    .note { padding: 1 2; }
    .form { padding: 1 2; height: auto; }
    .form Input { margin: 0 0 1 0; }
    """
    MODES = {
        "home": HomeScreen, "notifications": _mode("notifications", "NotificationsScreen"),
        "federated": _mode("federated", "FederatedScreen"), "lists": _mode("lists", "ListsScreen"),
        "conversations": _mode("conversations", "ConversationsScreen"), "search": _mode("search", "SearchScreen"),
        "peers": _mode("peers", "PeersScreen"), "settings": _mode("settings", "SettingsScreen"),
        "columns": _mode("columns", "ColumnsScreen"),
    }
    BINDINGS = [
        Binding("question_mark", "help", "Help"),
        Binding("c", "compose", "Compose"),
        Binding("h", "mode('home')", "Home"),
        Binding("n", "mode('notifications')", "Notifs"),
        Binding("w", "mode('federated')", "Federated"),
        Binding("number_sign", "hashtag", "#Tag", show=False),
        Binding("slash", "mode('search')", "Search"),
        Binding("l", "mode('lists')", "Lists", show=False),
        Binding("d", "mode('conversations')", "Direct", show=False),
        Binding("p", "mode('peers')", "Peers", show=False),
        Binding("s", "mode('settings')", "Settings", show=False),
        Binding("m", "mode('columns')", "Columns"),
        Binding("u", "me", "Me", show=False),
        Binding("q", "quit", "Quit"),
        Binding("escape", "leave_input", "Leave field", show=False),
    ]

    def __init__(self, *, launcher: Launcher | None = None, api: Any = None,
                 now_ms: Callable[[], int] | None = None) -> None:
        super().__init__()
        self.launcher, self.api = launcher, api
        self.now_ms = now_ms or (lambda: int(time.time() * 1000))
        self.live_views: set[Any] = set()
        self.me: dict[str, Any] = {}
        self.max_chars = MAX_CHARS
        self.started_daemon = False
        self.ready = False
        self.launcher_passphrase: str | None = None  # from first run, for the first daemon start only
        self._early_home: asyncio.Future[dict[str, Any]] | None = None

    def on_mount(self) -> None:
        self._boot()

    @work(exclusive=True, group="boot")
    async def _boot(self) -> None:
        first_run = False
        if self.api is None:
            assert self.launcher is not None
            if not self.launcher.has_identity():
                await self.push_screen_wait(_screen("firstrun", "IdentityScreen")(self.launcher))
                first_run = True
            api = await self.launcher.connect()
            while api is None:
                passphrase = None
                if self.launcher.key_encrypted():
                    passphrase = await self.push_screen_wait(_screen("firstrun", "UnlockScreen")())
                try:
                    api = await self.launcher.start_daemon(passphrase)
                except LaunchError as e:
                    self.notify(str(e), severity="error", timeout=15)
                    if not self.launcher.key_encrypted():
                        self.exit(message=f"murmurate: {e}")
                        return
                    continue
                self.started_daemon = True
                self.notify(f"No daemon was running for this home: started one in the background "
                            f"(log: {self.launcher.log_file}). It keeps running after you quit.", timeout=10)
            self.api = api
        self.api.on_event = self._on_event
        self.api.on_close = self._on_close
        await self.api.subscribe()
        # The home page is asked for now, with whoami, and taken by the home screen when it
        # mounts: the first paint does not wait for that round trip after the screen is built.
        self._early_home = asyncio.ensure_future(home_page(self.api, None))
        self.me = await self.api.call("whoami")
        if first_run:
            await self.push_screen_wait(_screen("firstrun", "WelcomeScreen")())
        self.ready = True
        await self.switch_mode("home")
        # What exists now (Textual's classes, styles, screens) lives as long as the app: moved out
        # of the collector's sight, full collections while scrolling scan far less (bench/tui.py).
        gc.freeze()

    def take_early_home(self) -> asyncio.Future[dict[str, Any]] | None:
        early, self._early_home = self._early_home, None
        return early

    def _drop_early_home(self) -> None:
        early, self._early_home = self._early_home, None
        if early is None:
            return
        if early.done() and not early.cancelled():
            early.exception()  # retrieved: a refusal nobody will read is not an error to log
        early.cancel()

    def _on_event(self, params: dict[str, Any]) -> None:
        self._drop_early_home()  # it may lack the entry this event announces
        if params.get("kind") == "overflow":
            # We fell behind: the daemon ended the subscription. Refetch, then listen again.
            self.run_worker(self.api.subscribe(), group="resubscribe")
            for view in list(self.live_views):
                view.reload()
            return
        for view in list(self.live_views):
            view.entry_arrived()

    def _on_close(self) -> None:
        self.notify("The daemon closed the connection (it stopped?). Restart the client to reconnect.",
                    severity="error", timeout=30)

    async def on_unmount(self) -> None:
        self._drop_early_home()
        if self.api is not None and hasattr(self.api, "close"):
            await self.api.close()

    # -- navigation ----------------------------------------------------------------------
    async def action_mode(self, mode: str) -> None:
        if self.ready:
            await self.switch_mode(mode)

    def action_leave_input(self) -> None:
        # Section keys are plain letters: escape takes the focus out of a text field so they work.
        self.screen.set_focus(None)

    def action_help(self) -> None:
        self.push_screen(_screen("help", "HelpScreen")())

    def action_compose(self) -> None:
        if self.ready:
            self.open_compose()

    def action_hashtag(self) -> None:
        if self.ready:
            self.push_screen(_screen("hashtag", "HashtagScreen")(None))

    def action_me(self) -> None:
        if self.ready:
            self.open_profile(self.me["id"])

    def open_thread(self, ref: str) -> None:
        self.push_screen(_screen("thread", "ThreadScreen")(ref))

    def open_profile(self, author: str) -> None:
        self.push_screen(_screen("profile", "ProfileScreen")(author))

    def open_hashtag(self, tag: str) -> None:
        self.push_screen(_screen("hashtag", "HashtagScreen")(tag))

    def open_compose(self, reply_to: dict[str, Any] | None = None, quote: dict[str, Any] | None = None) -> None:
        self.push_screen(_screen("compose", "ComposeScreen")(reply_to=reply_to, quote=quote))

    # -- actions on posts ----------------------------------------------------------------
    @work(group="react")
    async def toggle_reaction(self, kind: str, post: dict[str, Any]) -> None:
        done = post.get("boosted" if kind == "boost" else "favourited")
        method = f"un{kind}" if done else kind
        try:
            await self.api.call(method, ref=post["ref"])
            updated = await self.fetch_post(post["ref"])
        except ApiError as e:
            self.notify(str(e), severity="error")
            return
        self.notify(f"{method}: done")
        if updated is not None:
            for view in list(self.live_views):
                view.replace(post["ref"], updated)

    async def fetch_post(self, ref: str) -> dict[str, Any] | None:
        thread = await self.api.call("thread", ref=ref)
        return next((i for i in thread["items"] if i["ref"] == ref), None)

    async def call(self, method: str, **params: Any) -> Any:
        """A call whose refusal is shown as a notification; returns None then."""
        try:
            return await self.api.call(method, **params)
        except ApiError as e:
            self.notify(str(e), severity="error", timeout=8)
            return None
