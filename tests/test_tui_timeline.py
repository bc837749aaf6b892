"""The timeline view on long timelines: pages fetched as the reader nears the end, drawn lines
kept for a bounded number of entries, the reader's place kept across a width change, and the
first home page fetched once (asked for while the app boots)."""

from __future__ import annotations

from bisect import bisect_right
from typing import Any

import pytest

from tui_fake import ANN, BOB, NOW, FakeApi, post
from tui_helpers import on_asyncio, shown, until, view
from murmurate.ui.tui.app import MurmurateApp
from murmurate.ui.tui.timeline import CACHED

TOTAL, PAGE = 300, 40


class PagedApi(FakeApi):
    """TOTAL posts, newest first, served PAGE at a time through opaque cursors."""

    def __init__(self) -> None:
        super().__init__()
        self.posts = [post(ANN if i % 2 else BOB, "Ann" if i % 2 else "Bob", TOTAL - i, i,
                           f"post number {TOTAL - i} " + "words " * (i % 40)) for i in range(TOTAL)]
        self.timeline_calls: list[str | None] = []

    async def call(self, method: str, **p: Any) -> Any:
        if method != "timeline":
            return await super().call(method, **p)
        self.timeline_calls.append(p.get("cursor"))
        start = int(p.get("cursor") or 0)
        end = start + p["limit"]
        return {"items": self.posts[start:end], "next_cursor": str(end) if end < TOTAL else None}


def texts_in_order(app: MurmurateApp) -> list[str]:
    return [i["text"].split(" ")[2] for i in view(app).items]


@pytest.mark.slow
@on_asyncio
async def test_a_long_timeline_loads_page_by_page_and_keeps_few_entries_drawn() -> None:
    api = PagedApi()
    app = MurmurateApp(api=api, now_ms=lambda: NOW)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.ready and view(app).items and not view(app).busy, "the first page")
        assert len(view(app).items) == PAGE and api.timeline_calls == [None]
        v = view(app)
        for _ in range(TOTAL):  # page down until the end; each page is fetched on the way
            if v.at_end and v.selected == len(v.items) - 1:
                break
            await pilot.press("pagedown")
            await until(pilot, lambda: not v.busy, "a page")
        assert texts_in_order(app) == [str(TOTAL - i) for i in range(TOTAL)]
        assert api.timeline_calls == [None] + [str(n) for n in range(PAGE, TOTAL, PAGE)]
        assert "post number 1 " in shown(app)
        assert len(v._lines) <= CACHED < TOTAL


def top_entry(app: MurmurateApp) -> int:
    v = view(app)
    return bisect_right(v._starts, int(v.scroll_y)) - 1


@on_asyncio
async def test_the_reader_keeps_their_place_when_the_width_changes() -> None:
    app = MurmurateApp(api=PagedApi(), now_ms=lambda: NOW)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.ready and view(app).items and not view(app).busy, "the first page")
        v = view(app)
        for _ in range(25):
            await pilot.press("j")
        await until(pilot, lambda: top_entry(app) > 5, "a scrolled view")
        top, lines = top_entry(app), v.virtual_size.height
        for width in (50, 140):
            await pilot.resize_terminal(width, 30)
            # Re-wrapped (on_resize done): the entries' width is the view's new width.
            await until(pilot, lambda: abs(v.size.width - width) < 5
                        and v.virtual_size.width == v.scrollable_content_region.width, f"the layout at {width}")
            assert v.virtual_size.height != lines  # re-wrapped: the old line numbers mean nothing now
            assert top_entry(app) == top and f"post number {TOTAL - top} " in shown(app)
            lines = v.virtual_size.height


@on_asyncio
async def test_the_first_home_page_is_fetched_once() -> None:
    """The app asks for it while booting; the home screen takes that answer, no second call."""
    api = PagedApi()
    app = MurmurateApp(api=api, now_ms=lambda: NOW)
    async with app.run_test(size=(100, 30)) as pilot:
        await until(pilot, lambda: app.ready and view(app).items and not view(app).busy, "the first page")
        await until(pilot, lambda: "post number 300 " in shown(app), "the first entry drawn")
        assert api.timeline_calls == [None]
