from __future__ import annotations

from typing import Any

from .base import TimelineScreen
from .home import PAGE


async def notifications_page(api: Any, cursor: str | None) -> dict[str, Any]:
    """Notifications as timeline rows: the entry, marked with what it did to us."""
    page = await api.call("notifications", limit=PAGE, cursor=cursor)
    return {"items": [{**n["entry"], "_kinds": n["kinds"]} for n in page["items"]],
            "next_cursor": page.get("next_cursor")}


class NotificationsScreen(TimelineScreen):
    TITLE = "Notifications"
    EMPTY = "no notifications yet: replies, mentions, boosts, favourites and new followers show here"

    async def fetch(self, cursor: str | None) -> dict[str, Any]:
        return await notifications_page(self.app.api, cursor)
