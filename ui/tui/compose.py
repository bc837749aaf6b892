"""Write a post: live counter (links count 23), content warning, visibility (public,
unlisted, followers only, direct to named ids), reply, quote, media by file path with alt text."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Input, RadioButton, RadioSet, Static, TextArea

from .textutil import count_chars, who
from .base import PushedScreen


class ComposeScreen(PushedScreen):
    TITLE = "Compose"
    BINDINGS = [Binding("escape", "back", "Cancel"), Binding("ctrl+s", "send", "Send", priority=True)]
    DEFAULT_CSS = """
    ComposeScreen TextArea { height: 8; }
    ComposeScreen #counter { width: auto; padding: 0 1; }
    ComposeScreen #counter.over { color: $error; text-style: bold; }
    ComposeScreen RadioSet { layout: horizontal; height: auto; }
    ComposeScreen .row { height: auto; }
    ComposeScreen #context { color: $text-muted; }
    ComposeScreen #media, ComposeScreen #alt { width: 1fr; }
    """

    def __init__(self, reply_to: dict[str, Any] | None = None, quote: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.reply_to, self.quote = reply_to, quote

    def body(self) -> ComposeResult:
        with Vertical(classes="form"):
            if self.reply_to:
                yield Static(f"Replying to {who(self.reply_to)}: {self.reply_to.get('text', '')[:120]}", id="context")
            if self.quote:
                yield Static(f"Quoting {who(self.quote)}: {self.quote.get('text', '')[:120]}", id="context")
            yield Input(placeholder="content warning (optional)", id="cw")
            yield TextArea(id="text")
            # A reply to a private post starts with its visibility (the node refuses a public
            # one), and a direct reply with its author as the recipient.
            private = (self.reply_to or {}).get("visibility")
            start = private if private in ("followers", "direct") else "public"
            with Horizontal(classes="row"):
                with RadioSet(id="visibility"):
                    for choice in ("public", "unlisted", "followers", "direct"):
                        yield RadioButton(choice, value=choice == start, id=choice)
                yield Static("", id="counter")
            yield Input(value=self.reply_to["author"] if start == "direct" and self.reply_to else "",
                        placeholder="direct: recipient ids, separated by spaces", id="to")
            with Horizontal(classes="row"):
                yield Input(placeholder="media: file path (optional)", id="media")
                yield Input(placeholder="alt text for the media", id="alt")
            yield Button("Send (ctrl+s)", id="send", variant="primary")

    def on_mount(self) -> None:
        self.query_one(TextArea).focus()
        self._count()

    def _text(self) -> str:
        return self.query_one(TextArea).text

    def _count(self) -> None:
        n = count_chars(self._text())
        left = self.app.max_chars - n
        counter = self.query_one("#counter", Static)
        counter.update(f"{left} left")
        counter.set_class(left < 0, "over")

    def on_text_area_changed(self) -> None:
        self._count()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "send":
            self.action_send()

    def action_send(self) -> None:
        self.run_worker(self._send(), exclusive=True)

    async def _send(self) -> None:
        text = self._text()
        if not text.strip():
            self.notify("Nothing to send", severity="warning")
            return
        if count_chars(text) > self.app.max_chars:
            self.notify(f"Too long: at most {self.app.max_chars} characters (links count 23)", severity="error")
            return
        cw = self.query_one("#cw", Input).value.strip() or None
        visibility = next((v for v in ("unlisted", "followers", "direct")
                           if self.query_one(f"#{v}", RadioButton).value), "public")
        to = self.query_one("#to", Input).value.split() or None
        if visibility == "direct" and not to:
            self.notify("A direct post needs at least one recipient id", severity="error")
            return
        media = None
        path = self.query_one("#media", Input).value.strip()
        if path:
            ref = await self.app.call("attach", path=str(Path(path).expanduser().resolve()),
                                      alt=self.query_one("#alt", Input).value.strip())
            if ref is None:
                return
            media = [ref]
        item = await self.app.call("post", text=text, cw=cw, reply_to=self.reply_to["ref"] if self.reply_to else None,
                                   quote=self.quote["ref"] if self.quote else None, visibility=visibility,
                                   to=to if visibility == "direct" else None, media=media)
        if item is not None:
            self.notify("Posted")
            self.dismiss(item)
