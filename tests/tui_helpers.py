"""Helpers for the terminal client's tests: wait on a condition inside a Pilot session."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.css.query import NoMatches
from textual.pilot import Pilot

from murmurate.ui.tui.timeline import TimelinePane, TimelineView

DEADLINE = 30.0


async def until(pilot: Pilot[Any], condition: Callable[[], Any], what: str, timeout: float = DEADLINE) -> Any:
    """Let the app run until `condition()` is true; fail after `timeout` seconds."""
    end = time.monotonic() + timeout
    while True:
        try:
            value = condition()
        except NoMatches:  # the screen is not composed yet
            value = None
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.02)


def view(app: Any) -> TimelineView:
    focused = app.screen.focused
    if isinstance(focused, TimelineView):
        return focused
    return app.screen.query_one(TimelinePane).view


def texts(app: Any) -> list[str]:
    return [(i.get("boosted_post") or i).get("text", "") for i in view(app).items]


def bar(app: Any) -> str:
    return str(app.screen.query_one(TimelinePane).query_one(".bar").render())


def on_asyncio(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run an async test on asyncio (Textual's loop); this suite's default async mode is trio."""
    import asyncio
    import functools

    @functools.wraps(fn)
    def run(*args: Any, **kwargs: Any) -> None:
        asyncio.run(fn(*args, **kwargs))
    return run


def shown(app: Any) -> str:
    """The lines of the focused timeline that are on screen now."""
    v = view(app)
    return "\n".join(v.render_line(y).text for y in range(v.size.height))
