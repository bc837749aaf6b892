"""A timeline that renders only the lines on screen (Textual's line API), so 10,000 entries
scroll as fast as 10. Pages are fetched lazily near the end; live entries are put above the
reader without moving what they look at, and counted in the pane's "n new posts" bar."""

from __future__ import annotations

from bisect import bisect_right
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from itertools import accumulate
from typing import Any

from rich.segment import Segment
from rich.style import Style
from textual.binding import Binding
from textual.containers import Vertical
from textual.app import ComposeResult
from textual.geometry import Region, Size
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
BLANK_HEAD = Segment("  ")
CACHED = 256  # entries whose drawn lines are kept (a screen shows about 20)
STYLED = 2048  # finished screen lines kept (bar, padding and style applied)


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
        self._heights: list[int] = []  # lines of each entry, separator included
        self._starts: list[int] = [0]  # first line of each entry, then the total
        self._lines: OrderedDict[str, list[Strip]] = OrderedDict()  # drawn entries, least recent first
        self._paint: tuple[Style, int, bool] | None = None
        self._ahead_pending = False
        self._styled: dict[tuple[str, int], tuple[Strip, Strip]] = {}  # (entry, row): (drawn, finished)
        self._styled_for: tuple[Style, int] | None = None
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
        self._heights[0:0] = [self._height(i) for i in new]
        self._reindex()
        # Keep the reader's lines where they were: scroll down by what was added above.
        added = self.virtual_size.height - lines_before
        if self.scroll_y > 0 or len(self.items) > len(new):
            self.scroll_to(y=self.scroll_y + added, animate=False, immediate=True)
        self.refresh()
        self.post_message(self.Changed())

    def _maybe_load_more(self) -> None:
        if self.at_end or self.busy or not self.items or not self._width:  # not laid out: on_resize asks again
            return
        if self.scroll_y + self.size.height + LOAD_AHEAD >= self.virtual_size.height or \
                self.selected >= len(self.items) - 5:
            self.busy = True
            self.run_worker(self._load(), group="load")

    # -- rendering -----------------------------------------------------------------------
    # Only line counts are kept for every entry; the lines themselves are drawn when they come
    # on screen and kept for the last CACHED entries. Keeping all of 10,000 entries' lines alive
    # made each full garbage collection take 50-400 ms mid-scroll (bench/tui.py).
    def _text(self, item: dict[str, Any]) -> Any:
        return entry_text(item, self.app.now_ms(), expanded=_key(item) in self.expanded)

    def _text_width(self, item: dict[str, Any]) -> int:
        return max(10, self._width - 2 - _indent(item))

    def _height(self, item: dict[str, Any]) -> int:
        """Lines of one entry plus its blank separator; wrapping only (no styled segments)."""
        return len(self._text(item).wrap(self.app.console, self._text_width(item))) + 1

    def _lines_of(self, index: int) -> list[Strip]:
        item = self.items[index]
        key = _key(item)
        lines = self._lines.get(key)
        if lines is not None:
            self._lines.move_to_end(key)
            return lines
        console = self.app.console
        options = console.options.update(width=self._text_width(item), height=None)
        rendered = console.render_lines(self._text(item), options, pad=False)
        indent = _indent(item)
        pad = [Segment(" " * indent)] if indent else []
        lines = [Strip(pad + line) for line in rendered] + [Strip([])]
        if len(lines) != self._heights[index]:  # wrap and render agreed in all we tried; if not, drawn wins
            self._heights[index] = len(lines)
            self._reindex()
        self._lines[key] = lines
        if len(self._lines) > CACHED:
            self._lines.popitem(last=False)
        return lines

    def _draw_ahead(self) -> None:
        """After a frame: draw the entries a screen above and below the view, so the next page
        key finds them ready instead of drawing ~20 entries (10 ms or more) before its frame."""
        self._ahead_pending = False
        if not self._width or not self.items:
            return
        top, height = int(self.scroll_y), self.size.height
        first = bisect_right(self._starts, max(0, top - height)) - 1
        last = min(len(self.items) - 1, bisect_right(self._starts, top + 2 * height) - 1)
        for index in range(max(0, first), last + 1):
            self._lines_of(index)

    def _schedule_draw_ahead(self) -> None:
        if not self._ahead_pending:
            self._ahead_pending = True
            self.call_after_refresh(self._draw_ahead)

    def _forget(self, item: dict[str, Any]) -> None:
        self._lines.pop(_key(item), None)

    def _rebuild(self, only: range | None = None) -> None:
        width = self.scrollable_content_region.width or self.size.width
        if not width:
            # Not laid out yet (a page can arrive before the first layout): on_resize lays the
            # entries out once their width is known; until then nothing is drawn.
            self._width, self._heights = 0, [1] * len(self.items)
            self._lines.clear()
        elif width != self._width or only is None:
            self._width = width
            self._lines.clear()
            self._heights = [self._height(i) for i in self.items]
        else:
            self._heights.extend(self._height(self.items[i]) for i in only)
        self._reindex()
        self.refresh()
        self._schedule_draw_ahead()

    def _reindex(self) -> None:
        self._starts = [0, *accumulate(self._heights)]
        self.virtual_size = Size(self._width, self._starts[-1])

    def on_resize(self) -> None:
        if (self.scrollable_content_region.width or self.size.width) != self._width:
            # Re-wrapping changes every entry's height: keep the entry at the top of the view
            # there (a line number would now point into some other entry, or past the end).
            top = bisect_right(self._starts, int(self.scroll_y)) - 1 if self._width and self.items else 0
            self._rebuild()
            if self._width and 0 < top < len(self.items):
                self.scroll_to(y=self._starts[top], animate=False, immediate=True)
            self._maybe_load_more()

    def render_lines(self, crop: Region) -> list[Strip]:
        # What every line of this pass shares, computed once (rich_style walks all ancestors).
        self._paint = self._paint_state()
        try:
            return super().render_lines(crop)
        finally:
            self._paint = None

    def _paint_state(self) -> tuple[Style, int, bool]:
        return self.rich_style, self.scrollable_content_region.width, self.has_focus_within

    @property
    def laid_out(self) -> bool:
        """The entries are wrapped to the view's width: the next frame shows them."""
        return self._width > 0

    def render_line(self, y: int) -> Strip:
        style, width, focused = self._paint or self._paint_state()
        line = int(self.scroll_y) + y
        if line >= self._starts[-1] or not self._width:
            return Strip.blank(width, style)
        index = bisect_right(self._starts, line) - 1
        lines = self._lines_of(index)
        row = line - self._starts[index]
        strip = lines[row] if row < len(lines) else Strip([])
        if index != self.selected:
            # Finished lines are kept too: a scroll redraws every line, most of them seen before.
            if (style, width) != self._styled_for or len(self._styled) > STYLED:
                self._styled, self._styled_for = {}, (style, width)
            done = self._styled.get((_key(self.items[index]), row))
            if done is None or done[0] is not strip:
                done = (strip, Strip([BLANK_HEAD, *strip]).extend_cell_length(width).crop(0, width).apply_style(style))
                self._styled[(_key(self.items[index]), row)] = done
            return done[1]
        out = Strip([Segment("▌ ", BAR), *strip]).extend_cell_length(width).crop(0, width).apply_style(style)
        return out.apply_style(SELECTED) if focused else out

    def _refresh_entry(self, index: int) -> None:
        if 0 <= index < len(self.items):
            self.refresh_lines(self._starts[index], self._starts[index + 1] - self._starts[index])

    def watch_scroll_y(self, old: float, new: float) -> None:
        super().watch_scroll_y(old, new)
        self._schedule_draw_ahead()
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
        before, self.selected = self.selected, max(0, min(len(self.items) - 1, index))
        top, bottom = self._starts[self.selected], self._starts[self.selected + 1]
        if top < self.scroll_y:
            self.scroll_to(y=top, animate=False, immediate=True)
        elif bottom > self.scroll_y + self.size.height:
            self.scroll_to(y=min(top, bottom - self.size.height), animate=False, immediate=True)
        # Only the two entries whose bar changed are redrawn (a scroll redraws everything anyway).
        self._refresh_entry(before)
        self._refresh_entry(self.selected)
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
        self._forget(item)
        self._heights[self.selected] = self._height(item)
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
            self._forget(item)
            self._heights[i] = self._height(self.items[i])
        self._reindex()
        self.refresh()


def _key(item: dict[str, Any]) -> str:
    return item["ref"]


def _indent(item: dict[str, Any]) -> int:
    """Replies in a thread are indented by their depth."""
    return min(item.get("_depth", 0), 8) * 2


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
