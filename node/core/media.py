"""Media references in posts: at most 4, each a stored blob with alt text. Pure."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from murmurate.store import PayloadType

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




# Payload types whose payloads name blobs: a post's `media`, a profile's `avatar`.
MEDIA_TYPES = (PayloadType.POST, PayloadType.PROFILE)


def media_item_blob(value: Any) -> bytes | None:
    """The blob hash of one media item as a payload holds it ({blob: 32 bytes, ...}), or
    None if the item is malformed (payloads come from anyone: read, never trust)."""
    if isinstance(value, dict):
        blob = value.get("blob")
        if isinstance(blob, bytes) and len(blob) == HASH_SIZE:
            return blob
    return None


def named_blobs(payload_type: int, payload: dict[str, Any]) -> list[tuple[bytes, int]]:
    """(blob hash, declared size) of the media a post or profile names, malformed items
    left out (the size is only the author's claim)."""
    if payload_type == PayloadType.POST:
        items = payload.get("media")
        items = items[:MAX_MEDIA] if isinstance(items, list) else []
    elif payload_type == PayloadType.PROFILE:
        items = [payload.get("avatar")]
    else:
        return []
    out = []
    for item in items:
        blob = media_item_blob(item)
        size = item.get("size") if blob is not None else None
        if blob is not None and isinstance(size, int) and not isinstance(size, bool) and size >= 0:
            out.append((blob, size))
    return out
