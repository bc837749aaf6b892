from __future__ import annotations

from typing import Any

from .base import TimelineScreen
from .home import PAGE


class FederatedScreen(TimelineScreen):
    TITLE = "Federated"
    EMPTY = "nothing yet: everything this node holds shows here (unlisted posts excepted)"

    async def fetch(self, cursor: str | None) -> dict[str, Any]:
        return await self.app.api.call("timeline", which="federated", limit=PAGE, cursor=cursor)
