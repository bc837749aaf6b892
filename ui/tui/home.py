from __future__ import annotations

from typing import Any

from .base import TimelineScreen

PAGE = 40


async def home_page(api: Any, cursor: str | None) -> dict[str, Any]:
    return await api.call("timeline", which="home", limit=PAGE, cursor=cursor)


class HomeScreen(TimelineScreen):
    TITLE = "Home"
    EMPTY = "nothing yet: post something (c), or follow someone from their profile or a contact code (s)"

    async def fetch(self, cursor: str | None) -> dict[str, Any]:
        early = self.app.take_early_home() if cursor is None else None
        if early is not None:  # asked for while the app booted (see MurmurateApp._boot)
            return await early
        return await home_page(self.app.api, cursor)
