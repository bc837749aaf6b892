"""Settings: who this node is, the contact code, peers and where they came from, limits."""

from __future__ import annotations

from rich.markup import escape
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.widgets import Static

from .base import BaseScreen


class SettingsScreen(BaseScreen):
    TITLE = "Settings"
    BINDINGS = [Binding("y", "copy", "Copy contact code")]

    def __init__(self) -> None:
        super().__init__()
        self.code = ""

    def body(self) -> ComposeResult:
        with VerticalScroll():
            yield Static("loading…", id="settings", classes="note")

    def on_screen_resume(self) -> None:
        self.load()

    @work(exclusive=True, group="settings")
    async def load(self) -> None:
        who = await self.app.call("whoami")
        contact = await self.app.call("contact")
        peers = await self.app.call("peers")
        if who is None or contact is None or peers is None:
            return
        self.code = contact["code"]
        lines = [
            "[b]Identity[/b]", f"  id           {who['id']}", f"  fingerprint  {who['fingerprint']}",
            f"  key          {'encrypted with a passphrase' if who['key_encrypted'] else 'NOT encrypted'}",
            f"  home         {escape(str(who['home']))}",
            "", "[b]Contact code[/b] (share it; y copies it)", f"  {contact['code']}",
            "", "[b]Network[/b]", f"  peer id      {who['peer_id']}",
            *(f"  listening    {escape(a)}" for a in who["addrs"]),
            "", "[b]Peers[/b] (add one on the Peers screen, p; bootstrap peers come from bootstrap_peers.toml)",
            *(f"  {p['peer_id'][:20]}…  {p['source']}  {'connected' if p['connected'] else 'not connected'}"
              for p in peers),
            *([] if peers else ["  (none known yet)"]),
            "", "[b]Limits[/b]",
            f"  posts: at most {self.app.max_chars} characters, links count as 23 (the daemon enforces its "
            "post.max_chars; the API does not report it, so the client assumes 500)",
            "  media: not available yet", "  direct posts: not available yet",
        ]
        self.query_one("#settings", Static).update("\n".join(lines))

    def action_copy(self) -> None:
        if self.code:
            self.app.copy_to_clipboard(self.code)
            self.notify("Contact code copied")
