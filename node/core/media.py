"""Media references in posts: at most 4, each a stored blob with alt text. Pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import UsageError

MAX_MEDIA = 4
MAX_ALT_CHARS = 1500
HASH_SIZE = 32


def media_payload(items: list[dict[str, Any]], have: Callable[[bytes], int | None]) -> list[dict[str, Any]]:
    """The `media` field of a post from API params; every blob must be stored here."""
    if len(items) > MAX_MEDIA:
        raise UsageError(f"a post carries at most {MAX_MEDIA} media attachments")
    out = []
    for item in items:
        try:
            blob = bytes.fromhex(item["blob"])
        except (KeyError, TypeError, ValueError):
            raise UsageError("media items are {blob: hex hash, alt, mime} from `attach`") from None
        size = have(blob) if len(blob) == HASH_SIZE else None
        if size is None:
            raise UsageError(f"blob {item['blob']} is not stored here: attach the file first")
        alt = item.get("alt") or ""
        if not isinstance(alt, str) or len(alt) > MAX_ALT_CHARS:
            raise UsageError(f"alt text is at most {MAX_ALT_CHARS} characters")
        mime = item.get("mime") or "application/octet-stream"
        out.append({"blob": blob, "size": size, "mime": str(mime)[:100], "alt": alt})
    return out


