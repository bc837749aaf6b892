"""Small pure helpers for the terminal client: the post-length counter, relative times, names.

The counter mirrors murmurate.node.core.text.count_chars (Mastodon's rule: every URL counts
23) without importing the node layer, so the client stays a pure API client.
"""

from __future__ import annotations

import re
from typing import Any

URL_WEIGHT = 23
_URL = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)


def count_chars(text: str) -> int:
    total = 0
    last = 0
    for match in _URL.finditer(text):
        total += len(text[last:match.start()]) + URL_WEIGHT
        last = match.end()
    return total + len(text[last:])


def relative_time(timestamp_ms: int, now_ms: int) -> str:
    seconds = max(0, (now_ms - timestamp_ms) // 1000)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return "now" if seconds < 5 else f"{seconds}s"


def who(item: dict[str, Any]) -> str:
    """Display name with the short fingerprint: a name is only a label, the fingerprint tells
    two people of the same name apart."""
    name = item.get("name")
    label = name if name else f"{item['author'][:12]}…"
    return f"{label} [{item['fingerprint']}]"
