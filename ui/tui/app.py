"""The Textual application: boots (identity, daemon), then shows the screens.

It holds one API connection (`api`, an AsyncApi or anything with the same `call`) that also
carries the live `event` notifications; screens never talk to the daemon any other way.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual import work
from textual.app import App
from textual.binding import Binding

from ..api_client import ApiError
from .launch import Launcher, LaunchError
from .columns import ColumnsScreen
from .compose import ComposeScreen
from .conversations import ConversationsScreen
from .federated import FederatedScreen
from .firstrun import IdentityScreen, UnlockScreen, WelcomeScreen
from .hashtag import HashtagScreen
from .help import HelpScreen
from .home import HomeScreen
from .lists import ListsScreen
from .notifications import NotificationsScreen
from .peers import PeersScreen
from .profile import ProfileScreen
from .search import SearchScreen
from .settings import SettingsScreen
from .thread import ThreadScreen

MAX_CHARS = 500  # the API does not report the node's post.max_chars yet; the daemon enforces it


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
        "home": HomeScreen, "notifications": NotificationsScreen, "federated": FederatedScreen,
        "lists": ListsScreen, "conversations": ConversationsScreen, "search": SearchScreen,
        "peers": PeersScreen, "settings": SettingsScreen, "columns": ColumnsScreen,
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

    def on_mount(self) -> None:
        self._boot()

    @work(exclusive=True, group="boot")
    async def _boot(self) -> None:
        first_run = False
        if self.api is None:
            assert self.launcher is not None
            if not self.launcher.has_identity():
                await self.push_screen_wait(IdentityScreen(self.launcher))
                first_run = True
            api = await self.launcher.connect()
            while api is None:
                passphrase = None
                if self.launcher.key_encrypted():
                    passphrase = await self.push_screen_wait(UnlockScreen())
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
        self.me = await self.api.call("whoami")
        if first_run:
            await self.push_screen_wait(WelcomeScreen())
        self.ready = True
        await self.switch_mode("home")

    def _on_event(self, params: dict[str, Any]) -> None:
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
        self.push_screen(HelpScreen())

    def action_compose(self) -> None:
        if self.ready:
            self.open_compose()

    def action_hashtag(self) -> None:
        if self.ready:
            self.push_screen(HashtagScreen(None))

    def action_me(self) -> None:
        if self.ready:
            self.open_profile(self.me["id"])

    def open_thread(self, ref: str) -> None:
        self.push_screen(ThreadScreen(ref))

    def open_profile(self, author: str) -> None:
        self.push_screen(ProfileScreen(author))

    def open_hashtag(self, tag: str) -> None:
        self.push_screen(HashtagScreen(tag))

    def open_compose(self, reply_to: dict[str, Any] | None = None, quote: dict[str, Any] | None = None) -> None:
        self.push_screen(ComposeScreen(reply_to=reply_to, quote=quote))

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
