from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import Input

from .timeline import TimelinePane
from .base import PushedScreen
from .home import PAGE


class HashtagScreen(PushedScreen):
    TITLE = "Hashtag"

    def __init__(self, tag: str | None) -> None:
        super().__init__()
        self.tag = (tag or "").lstrip("#")

    def body(self) -> ComposeResult:
        yield Input(value=self.tag, placeholder="hashtag, then Enter", id="tag")
        if self.tag:
            yield self._pane()

    def _pane(self) -> TimelinePane:
        tag = self.tag

        async def fetch(cursor: str | None) -> dict[str, Any]:
            return await self.app.api.call("timeline", which="hashtag", tag=tag, limit=PAGE, cursor=cursor)
        return TimelinePane(f"#{tag}", fetch, empty=f"no posts with #{tag} on this node yet")

    def on_mount(self) -> None:
        if self.tag:
            self.query_one(TimelinePane).view.focus()
        else:
            self.query_one(Input).focus()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        self.tag = event.value.strip().lstrip("#")
        if not self.tag:
            return
        await self.query(TimelinePane).remove()
        pane = self._pane()
        await self.mount(pane, after=self.query_one(Input))
        pane.view.focus()
