from __future__ import annotations

from typing import Any

from .base import TimelineScreen

PAGE = 40


class HomeScreen(TimelineScreen):
    TITLE = "Home"
    EMPTY = "nothing yet: post something (c), or follow someone from their profile or a contact code (s)"

    async def fetch(self, cursor: str | None) -> dict[str, Any]:
        return await self.app.api.call("timeline", which="home", limit=PAGE, cursor=cursor)
