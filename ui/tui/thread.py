from __future__ import annotations

from typing import Any

from textual.app import ComposeResult

from .timeline import TimelinePane
from .base import PushedScreen


def with_depth(thread: dict[str, Any]) -> list[dict[str, Any]]:
    """Thread items (time order, each with `parent`) marked with their depth in the tree,
    children right under their parent."""
    items = thread["items"]
    children: dict[str | None, list[dict[str, Any]]] = {}
    refs = {i["ref"] for i in items}
    for item in items:
        parent = item.get("parent") if item.get("parent") in refs else None
        children.setdefault(parent, []).append(item)
    out: list[dict[str, Any]] = []

    def walk(parent: str | None, depth: int) -> None:
        for item in children.get(parent, []):
            out.append({**item, "_depth": depth})
            walk(item["ref"], depth + 1)
    walk(None, 0)
    return out


class ThreadScreen(PushedScreen):
    TITLE = "Conversation"

    def __init__(self, ref: str) -> None:
        super().__init__()
        self.ref = ref

    async def fetch(self, cursor: str | None) -> dict[str, Any]:
        thread = await self.app.api.call("thread", ref=self.ref)
        return {"items": with_depth(thread), "next_cursor": None}

    def body(self) -> ComposeResult:
        yield TimelinePane("Conversation", self.fetch, live=False)

    def on_mount(self) -> None:
        self.query_one(TimelinePane).view.focus()
