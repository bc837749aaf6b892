"""Peers and sync status, from `status` and `peers`; dial a peer by address."""

from __future__ import annotations

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Input, Static

from .. import render
from .base import BaseScreen


class PeersScreen(BaseScreen):
    TITLE = "Peers & sync"
    AUTO_FOCUS = "VerticalScroll"
    BINDINGS = [Binding("R", "refresh", "Refresh")]

    def body(self) -> ComposeResult:
        yield Input(placeholder="a peer to connect to: /ip4/…/tcp/…/p2p/12D3KooW…  then Enter", id="addr")
        with VerticalScroll():
            yield Static("loading…", id="status", classes="note")

    def on_screen_resume(self) -> None:
        self.action_refresh()

    @work(exclusive=True, group="peers")
    async def action_refresh(self) -> None:
        status = await self.app.call("status")
        peers = await self.app.call("peers")
        if status is None or peers is None:
            return
        text = render.status(status) + "\n\npeers:\n" + render.peers(peers)
        self.query_one("#status", Static).update(escape(text))

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        addr = event.value.strip()
        if not addr:
            return
        self.notify(f"connecting to {addr}…")
        r = await self.app.call("connect", addr=addr)
        if r is not None:
            self.notify(f"connected to {r['peer_id']}")
            event.input.value = ""
        self.action_refresh()
