"""The params each local-API method cannot do without (docs/api.md). Pure.

Checked before a method runs, so a call without one gets INVALID_PARAMS naming it, not a
KeyError from deep inside the verb (found by tests/test_fuzz_api.py). Each of these is a
string; what the string must hold (an id, a ref) the method itself checks.
"""

from __future__ import annotations

from typing import Any

REQUIRED_TEXT: dict[str, tuple[str, ...]] = {
    "post": ("text",),
    "edit": ("ref", "text"),
    "boost": ("ref",), "unboost": ("ref",), "favourite": ("ref",), "unfavourite": ("ref",), "delete": ("ref",),
    "thread": ("ref",), "history": ("ref",),
    "follow": ("id",), "unfollow": ("id",), "block": ("id",), "unblock": ("id",),
    "accept_follower": ("id",), "remove_follower": ("id",),
    "mute": ("kind", "value"), "unmute": ("kind", "value"),
    "list_add": ("name", "id"), "list_remove": ("name", "id"),
    "search": ("query",),
}


def missing_param(method: str, params: dict[str, Any]) -> str | None:
    """The first required param of `method` that is absent or not a string, or None."""
    for name in REQUIRED_TEXT.get(method, ()):
        if not isinstance(params.get(name), str):
            return name
    return None
