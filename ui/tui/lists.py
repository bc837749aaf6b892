"""Lists (kept on this node): pick one to read its timeline; add or remove members."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from .timeline import TimelinePane
from .base import BaseScreen
from .home import PAGE


class ListsScreen(BaseScreen):
    TITLE = "Lists"
    AUTO_FOCUS = "#names"
    DEFAULT_CSS = """
    ListsScreen #side { width: 36; }
    ListsScreen #side OptionList { height: 1fr; }
    """

    def __init__(self) -> None:
        super().__init__()
        self.current: str | None = None

    def body(self) -> ComposeResult:
        with Horizontal():
            with Vertical(id="side"):
                yield Static("Your lists (Enter to read)")
                yield OptionList(id="names")
                yield Input(placeholder="add: LIST ID  or  remove: LIST ID", id="edit")
            yield Vertical(id="main")

    async def on_mount(self) -> None:
        await self._load_names()

    async def on_screen_resume(self) -> None:
        await self._load_names()

    async def _load_names(self) -> None:
        lists = await self.app.call("lists") or {}
        names = self.query_one("#names", OptionList)
        names.clear_options()
        names.add_options([Option(f"{n} ({len(m)})", id=n) for n, m in sorted(lists.items())]
                          or [Option("(no lists yet: type  add: friends mur_…  below)", disabled=True)])

    async def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id:
            await self.show(event.option.id)

    async def show(self, name: str) -> None:
        self.current = name

        async def fetch(cursor: str | None) -> dict[str, Any]:
            return await self.app.api.call("timeline", which="list", list=name, limit=PAGE, cursor=cursor)
        main = self.query_one("#main", Vertical)
        await main.remove_children()
        pane = TimelinePane(f"List: {name}", fetch, empty="no posts from this list's members yet")
        await main.mount(pane)
        pane.view.focus()

    async def on_input_submitted(self, event: Input.Submitted) -> None:
        verb, _, rest = event.value.partition(":")
        parts = rest.split()
        if verb.strip() not in ("add", "remove") or len(parts) != 2:
            self.notify("Type  add: LIST ID  or  remove: LIST ID", severity="warning")
            return
        method = "list_add" if verb.strip() == "add" else "list_remove"
        if await self.app.call(method, name=parts[0], id=parts[1]) is not None:
            event.input.value = ""
            await self._load_names()
            await self.show(parts[0])
