"""People, hashtags and posts (the daemon searches the newest 20,000 posts)."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

from .timeline import TimelinePane
from .base import BaseScreen


class SearchScreen(BaseScreen):
    TITLE = "Search"
    DEFAULT_CSS = """
    SearchScreen OptionList { height: auto; max-height: 10; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.results: dict[str, Any] = {"people": [], "hashtags": [], "posts": []}

    async def fetch(self, cursor: str | None) -> dict[str, Any]:
        return {"items": self.results["posts"], "next_cursor": None}

    def body(self) -> ComposeResult:
        yield Input(placeholder="search people, #hashtags, posts — then Enter", id="query")
        yield OptionList(id="hits")
        yield TimelinePane("Posts", self.fetch, live=False, empty="no posts found")

    def on_screen_resume(self) -> None:
        self.query_one(Input).focus()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        query = event.value.strip()
        if not query:
            return
        found = await self.app.call("search", query=query, limit=50)
        if found is None:
            return
        self.results = found
        hits = self.query_one(OptionList)
        hits.clear_options()
        hits.add_options([Option(f"person: {p.get('name') or '(no name)'}  {p['id']}", id=f"@{p['id']}")
                          for p in found["people"]]
                         + [Option(f"#{t}", id=f"#{t}") for t in found["hashtags"]])
        self.query_one(TimelinePane).view.reload()

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        key = event.option.id or ""
        if key.startswith("@"):
            self.app.open_profile(key[1:])
        elif key.startswith("#"):
            self.app.open_hashtag(key[1:])
