"""Direct posts this node could open, newest first."""

from __future__ import annotations

from typing import Any

from .base import TimelineScreen


class ConversationsScreen(TimelineScreen):
    TITLE = "Conversations"
    EMPTY = "no direct posts yet: compose one with visibility 'direct' and the recipients' ids"

    async def fetch(self, cursor: str | None) -> dict[str, Any]:
        if cursor is not None:
            return {"items": [], "next_cursor": None}
        return await self.app.api.call("conversations")
