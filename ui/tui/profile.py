"""A person: name, bio, follow/unfollow, block, mute; their posts, followers, following."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.widgets import OptionList, Static, TabbedContent, TabPane
from textual.widgets.option_list import Option

from .timeline import TimelinePane
from .base import PushedScreen

LOG_LIMIT = 500  # `log` has no cursor: one page of up to 500 entries


class ProfileScreen(PushedScreen):
    TITLE = "Profile"
    BINDINGS = [Binding("F", "follow", "Follow/unfollow"), Binding("B", "block", "Block/unblock"),
                Binding("M", "mute", "Mute/unmute")]
    DEFAULT_CSS = """
    ProfileScreen #info { padding: 1 2; height: auto; }
    ProfileScreen TabbedContent { height: 1fr; }
    """

    def __init__(self, author: str) -> None:
        super().__init__()
        self.author = author
        self.profile: dict[str, Any] = {}

    async def fetch_posts(self, cursor: str | None) -> dict[str, Any]:
        items = await self.app.api.call("log", author=self.author, limit=LOG_LIMIT)
        return {"items": [i for i in items if i["type"] in ("post", "boost")], "next_cursor": None}

    def body(self) -> ComposeResult:
        yield Static("loading…", id="info")
        with TabbedContent():
            with TabPane("Posts", id="posts"):
                yield TimelinePane("Posts", self.fetch_posts, live=False, empty="no posts on this node")
            with TabPane("Followers", id="followers"):
                yield OptionList(id="followers-list")
            with TabPane("Following", id="following"):
                yield OptionList(id="following-list")

    def on_mount(self) -> None:
        self.refresh_profile()
        self.query_one(TimelinePane).view.focus()

    @work(exclusive=True, group="profile")
    async def refresh_profile(self) -> None:
        p = await self.app.call("profile", id=self.author)
        if p is None:
            return
        self.profile = p
        mine = p["id"] == self.app.me.get("id")
        flags = ["this is you"] if mine else []
        if not mine:
            flags.append("you follow them (F: unfollow)" if p.get("you_follow") else "F: follow")
            flags.append("BLOCKED (B: unblock)" if p.get("blocked") else "B: block")
            flags.append("muted (M: unmute)" if p.get("muted") else "M: mute")
        lines = [f"[b]{_esc(p.get('name') or '(no name)')}[/b]  {p['id']}"]
        if p.get("bio"):
            lines.append(_esc(p["bio"]))
        lines.append(f"{len(p['following'])} following · {len(p['followers'])} followers · " + " · ".join(flags))
        lines.extend(f"relay: {_esc(r)}" for r in p.get("relays", []))
        self.query_one("#info", Static).update("\n".join(lines))
        for list_id, ids in (("#followers-list", p["followers"]), ("#following-list", p["following"])):
            ol = self.query_one(list_id, OptionList)
            ol.clear_options()
            ol.add_options([Option(i, id=i) for i in ids] or [Option("(none known)", disabled=True)])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            self.app.open_profile(event.option.id)

    async def _act(self, method: str, **params: Any) -> None:
        if await self.app.call(method, **params) is not None:
            self.notify(f"{method}: done")
            self.refresh_profile()

    def _not_me(self) -> bool:
        if self.author == self.app.me.get("id"):
            self.notify("That is you", severity="warning")
            return False
        return bool(self.profile)

    async def action_follow(self) -> None:
        if self._not_me():
            await self._act("unfollow" if self.profile.get("you_follow") else "follow", id=self.author)

    async def action_block(self) -> None:
        if self._not_me():
            await self._act("unblock" if self.profile.get("blocked") else "block", id=self.author)

    async def action_mute(self) -> None:
        if self._not_me():
            await self._act("unmute" if self.profile.get("muted") else "mute", kind="user", value=self.author)


def _esc(text: str) -> str:
    return text.replace("[", r"\[")
