"""What every full screen shares: a one-line top bar and the key hints (Footer)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Static

from .textutil import who
from .timeline import TimelinePane


class BaseScreen(Screen[Any]):
    TITLE = ""

    def compose(self) -> ComposeResult:
        me = getattr(self.app, "me", {})
        who_am_i = f"  ·  you: {who({'name': me.get('name'), 'author': me['id'], 'fingerprint': me['fingerprint']})}" \
            if me.get("id") else ""
        yield Static(f"Murmurate · {self.TITLE}{who_am_i}", classes="topbar", markup=False)
        yield from self.body()
        yield Footer()

    def body(self) -> ComposeResult:
        yield from ()


class PushedScreen(BaseScreen):
    """A screen opened on top of a section: escape goes back."""

    BINDINGS = [Binding("escape", "back", "Back")]

    def action_back(self) -> None:
        self.app.pop_screen()


class TimelineScreen(BaseScreen):
    """A section that is one timeline."""

    EMPTY = "(nothing here yet)"

    async def fetch(self, cursor: str | None) -> dict[str, Any]:
        raise NotImplementedError

    def body(self) -> ComposeResult:
        yield TimelinePane(self.TITLE, self.fetch, empty=self.EMPTY)

    def on_screen_resume(self) -> None:
        self.query_one(TimelinePane).view.focus()
