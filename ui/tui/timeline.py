"""A timeline that renders only the lines on screen (Textual's line API), so 10,000 entries
scroll as fast as 10. Pages are fetched lazily near the end; live entries are put above the
reader without moving what they look at, and counted in the pane's "n new posts" bar."""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Awaitable, Callable
from itertools import accumulate
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.containers import Vertical
from textual.app import ComposeResult
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.widgets import Static

from ..api_client import ApiError
from .entry_text import entry_text

Page = dict[str, Any]
Fetch = Callable[[str | None], Awaitable[Page]]
LOAD_AHEAD = 40  # lines: fetch the next page when the reader gets this close to the end
BAR = Style(color="rgb(0,160,255)", bold=True)
SELECTED = Style(bgcolor="rgb(40,44,60)")


def post_of(item: dict[str, Any]) -> dict[str, Any]:
    """The post an action on this row applies to (a boost acts on the boosted post)."""
    return item.get("boosted_post") or item


class TimelineView(ScrollView, can_focus=True):
    BINDINGS = [
        Binding("j,down", "move(1)", "Next", show=False),
        Binding("k,up", "move(-1)", "Prev", show=False),
        Binding("enter", "open", "Thread"),
        Binding("x", "toggle_cw", "CW"),
        Binding("r", "reply", "Reply"),
        Binding("b", "boost", "Boost"),
        Binding("f", "favourite", "Fav"),
        Binding("o", "quote", "Quote", show=False),
        Binding("a", "author", "Author"),
        Binding("period", "show_new", "New", show=False),
        Binding("g,home", "first", "Top", show=False),
        Binding("G,end", "last", "End", show=False),
        Binding("pagedown,space", "page(1)", "Page down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
    ]

    class Changed(Message):
        """The bar above should be redrawn (new count, loading, end)."""

    def __init__(self, fetch: Fetch, *, live: bool = True, id: str | None = None) -> None:
        super().__init__(id=id)
        self.fetch, self.live = fetch, live
        self.items: list[dict[str, Any]] = []
        self.known: set[str] = set()
        self.expanded: set[str] = set()
        self.selected = 0
        self.new_count = 0
        self.cursor: str | None = None
        self.at_end = False
        self.busy = False
        self.error: str | None = None
        self._strips: list[list[Strip]] = []
        self._starts: list[int] = [0]
        self._width = 0

    # -- data ---------------------------------------------------------------------------
    def on_mount(self) -> None:
        self.app.live_views.add(self)
        self.reload()

    def on_unmount(self) -> None:
        self.app.live_views.discard(self)

    def reload(self) -> None:
        self.busy = True
        self.run_worker(self._load(first=True), exclusive=True, group="load")

    async def _load(self, first: bool = False) -> None:
        self.post_message(self.Changed())
        try:
            page = await self.fetch(None if first else self.cursor)
        except ApiError as e:
            self.error = str(e)
            page = {"items": [], "next_cursor": None}
        finally:
            self.busy = False
        if first:
            self.items, self.known, self.selected, self.new_count = [], set(), 0, 0
        fresh = [i for i in page["items"] if _key(i) not in self.known]
        self.items.extend(fresh)
        self.known.update(_key(i) for i in fresh)
        self.cursor = page.get("next_cursor")
        self.at_end = self.cursor is None
        self._rebuild(range(len(self.items) - len(fresh), len(self.items)) if not first else None)
        self.post_message(self.Changed())
        self._maybe_load_more()

    def set_items(self, items: list[dict[str, Any]]) -> None:
        """Show a fixed list (threads, search results)."""
        self.items, self.known = list(items), {_key(i) for i in items}
        self.cursor, self.at_end, self.selected = None, True, 0
        self._rebuild()
        self.post_message(self.Changed())

    def entry_arrived(self) -> None:
        """Something new is stored: see whether this timeline's first page has news."""
        if self.live and not self.busy:
            self.run_worker(self._check_new(), exclusive=True, group="new")

    async def _check_new(self) -> None:
        try:
            page = await self.fetch(None)
        except ApiError:
            return
        new = []
        for item in page["items"]:
            if _key(item) in self.known:
                break
            new.append(item)
        if not new:
            return
        lines_before = self.virtual_size.height
        self.items[0:0] = new
        self.known.update(_key(i) for i in new)
        self.selected += len(new) if len(self.items) > len(new) else 0
        self.new_count += len(new)
        self._strips[0:0] = [self._render_item(i) for i in new]
        self._reindex()
        # Keep the reader's lines where they were: scroll down by what was added above.
        added = self.virtual_size.height - lines_before
        if self.scroll_y > 0 or len(self.items) > len(new):
            self.scroll_to(y=self.scroll_y + added, animate=False, immediate=True)
        self.refresh()
        self.post_message(self.Changed())

    def _maybe_load_more(self) -> None:
        if self.at_end or self.busy or not self.items:
            return
        if self.scroll_y + self.size.height + LOAD_AHEAD >= self.virtual_size.height or \
                self.selected >= len(self.items) - 5:
            self.busy = True
            self.run_worker(self._load(), group="load")

    # -- rendering -----------------------------------------------------------------------
    def _render_item(self, index_or_item: int | dict[str, Any]) -> list[Strip]:
        item = self.items[index_or_item] if isinstance(index_or_item, int) else index_or_item
        indent = min(item.get("_depth", 0), 8) * 2
        width = max(10, self._width - 2 - indent)
        text = entry_text(item, self.app.now_ms(), expanded=_key(item) in self.expanded)
        console = self.app.console
        lines = console.render_lines(text, console.options.update(width=width, height=None), pad=False)
        pad = [Segment(" " * indent)] if indent else []
        return [Strip(pad + line) for line in lines] + [Strip([])]

    def _rebuild(self, only: range | None = None) -> None:
        self._width = self.scrollable_content_region.width or self.size.width or 80
        if only is None:
            self._strips = [self._render_item(i) for i in range(len(self.items))]
        else:
            self._strips.extend(self._render_item(i) for i in only)
        self._reindex()
        self.refresh()

    def _reindex(self) -> None:
        self._starts = [0, *accumulate(len(s) for s in self._strips)]
        self.virtual_size = Size(self._width, self._starts[-1])

    def on_resize(self) -> None:
        if (self.scrollable_content_region.width or self.size.width) != self._width:
            self._rebuild()

    def render_line(self, y: int) -> Strip:
        line = int(self.scroll_y) + y
        width = self.scrollable_content_region.width
        style = self.rich_style
        if line >= self._starts[-1]:
            return Strip.blank(width, style)
        index = bisect_right(self._starts, line) - 1
        strip = self._strips[index][line - self._starts[index]]
        chosen = index == self.selected and self.has_focus_within
        head = Segment("▌ ", BAR) if index == self.selected else Segment("  ")
        out = Strip([head, *strip]).extend_cell_length(width).crop(0, width)
        out = out.apply_style(style)
        return out.apply_style(SELECTED) if chosen else out

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        if self.new_count and self.items and self.new_count and new < self._starts[min(self.new_count, len(self.items))]:
            self.new_count = 0
            self.post_message(self.Changed())
        self._maybe_load_more()

    def on_focus(self) -> None:
        self.refresh()

    def on_blur(self) -> None:
        self.refresh()

    # -- reading ------------------------------------------------------------------------
    @property
    def current(self) -> dict[str, Any] | None:
        return self.items[self.selected] if 0 <= self.selected < len(self.items) else None

    def select(self, index: int) -> None:
        if not self.items:
            return
        self.selected = max(0, min(len(self.items) - 1, index))
        top, bottom = self._starts[self.selected], self._starts[self.selected + 1]
        if top < self.scroll_y:
            self.scroll_to(y=top, animate=False, immediate=True)
        elif bottom > self.scroll_y + self.size.height:
            self.scroll_to(y=min(top, bottom - self.size.height), animate=False, immediate=True)
        self.refresh()
        self._maybe_load_more()

    def action_move(self, step: int) -> None:
        self.select(self.selected + step)

    def action_page(self, step: int) -> None:
        target = self.scroll_y + step * max(1, self.size.height - 2)
        self.scroll_to(y=max(0, target), animate=False, immediate=True)
        index = bisect_right(self._starts, int(self.scroll_y)) - 1
        self.select(max(0, min(index, len(self.items) - 1)))

    def action_first(self) -> None:
        self.select(0)
        self.scroll_to(y=0, animate=False, immediate=True)
        if self.new_count:
            self.new_count = 0
            self.post_message(self.Changed())

    def action_last(self) -> None:
        self.select(len(self.items) - 1)

    def action_show_new(self) -> None:
        self.action_first()

    def on_click(self, event: Any) -> None:
        line = int(self.scroll_y) + event.y
        if line < self._starts[-1]:
            self.select(bisect_right(self._starts, line) - 1)

    def action_toggle_cw(self) -> None:
        item = self.current
        if item is None:
            return
        key = _key(item)
        self.expanded.symmetric_difference_update({key})
        self._strips[self.selected] = self._render_item(self.selected)
        self._reindex()
        self.refresh()

    def action_open(self) -> None:
        if self.current is not None and post_of(self.current).get("type") == "post":
            self.app.open_thread(post_of(self.current)["ref"])

    def action_author(self) -> None:
        if self.current is not None:
            self.app.open_profile(post_of(self.current)["author"])

    def action_reply(self) -> None:
        if self.current is not None:
            self.app.open_compose(reply_to=post_of(self.current))

    def action_quote(self) -> None:
        if self.current is not None:
            self.app.open_compose(quote=post_of(self.current))

    def action_boost(self) -> None:
        if self.current is not None:
            self.app.toggle_reaction("boost", post_of(self.current))

    def action_favourite(self) -> None:
        if self.current is not None:
            self.app.toggle_reaction("favourite", post_of(self.current))

    def replace(self, ref: str, updated: dict[str, Any]) -> None:
        """Show a changed post (counts after a boost or favourite) in place."""
        for i, item in enumerate(self.items):
            if item.get("ref") == ref:
                self.items[i] = {**updated, **{k: v for k, v in item.items() if k.startswith("_")}}
            elif item.get("boosted_post", {}).get("ref") == ref:
                self.items[i] = {**item, "boosted_post": updated}
            else:
                continue
            self._strips[i] = self._render_item(i)
        self._reindex()
        self.refresh()


def _key(item: dict[str, Any]) -> str:
    return item["ref"]


class TimelinePane(Vertical):
    """A title bar (with the "n new posts" marker) over a timeline."""

    DEFAULT_CSS = """
    TimelinePane { height: 1fr; }
    TimelinePane > .bar { height: 1; background: $panel; color: $text; padding: 0 1; }
    TimelinePane > TimelineView { height: 1fr; }
    """

    def __init__(self, title: str, fetch: Fetch, *, live: bool = True, empty: str = "(nothing here yet)",
                 id: str | None = None) -> None:
        super().__init__(id=id)
        self.title, self.empty = title, empty
        self.view = TimelineView(fetch, live=live)

    def compose(self) -> ComposeResult:
        yield Static(self.title, classes="bar", markup=False)
        yield self.view

    def on_timeline_view_changed(self, event: TimelineView.Changed) -> None:
        event.stop()
        v = self.view
        state = (f"error: {v.error}" if v.error else "loading…" if v.busy else
                 self.empty if not v.items else f"{len(v.items)} shown" + ("" if v.at_end else ", more below"))
        new = f"  ▲ {v.new_count} new post{'s' if v.new_count != 1 else ''} above (. to show)" if v.new_count else ""
        self.query_one(".bar", Static).update(f"{self.title} · {state}{new}")
