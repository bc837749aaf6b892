"""Reading known payload types safely. Pure.

A payload is a canonical msgpack map. Its meaning depends on the envelope's payload type
(docs/protocol.md, "Payload types"). Known types with fields of the wrong shape are not
refused (the envelope is validly signed and the chain must go on): they are indexed as
nothing and shown as unreadable. Unknown keys are ignored, unknown types kept as they are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .entry import HASH_SIZE, PayloadType

MAX_TAGS = 30
MAX_MENTIONS = 50
MAX_TAG_CHARS = 100


@dataclass(frozen=True)
class Ref:
    """Names one entry: its author and seq (a feed has one entry per seq, or a proven fork)."""

    author: bytes
    seq: int


@dataclass(frozen=True)
class PostIndex:
    """What the store indexes of a post."""

    reply_to: Ref | None
    root: Ref | None
    tags: tuple[str, ...]
    mentions: tuple[bytes, ...]


def read_ref(value: Any) -> Ref | None:
    if (isinstance(value, list) and len(value) == 2 and isinstance(value[0], bytes)
            and len(value[0]) == HASH_SIZE and isinstance(value[1], int)
            and not isinstance(value[1], bool) and value[1] >= 1):
        return Ref(value[0], value[1])
    return None


def ref_value(ref: Ref) -> list[Any]:
    return [ref.author, ref.seq]


def normalize_tag(tag: str) -> str:
    return tag.strip().lstrip("#").casefold()


_PLAIN_POST = PostIndex(None, None, (), ())


def post_index(payload: dict[str, Any]) -> PostIndex | None:
    """Index fields of a post payload, or None if it is not a readable post."""
    if not isinstance(payload.get("text"), str):
        return None
    tags_raw = payload.get("tags", [])
    mentions_raw = payload.get("mentions", [])
    if not tags_raw and not mentions_raw and "reply" not in payload and "root" not in payload:
        return _PLAIN_POST  # most posts: nothing to index but the post itself
    tags: list[str] = []
    if isinstance(tags_raw, list):
        for t in tags_raw[:MAX_TAGS]:
            if isinstance(t, str) and 0 < len(t) <= MAX_TAG_CHARS and "\x00" not in t:
                tags.append(normalize_tag(t))
    mentions: list[bytes] = []
    if isinstance(mentions_raw, list):
        for m in mentions_raw[:MAX_MENTIONS]:
            if isinstance(m, bytes) and len(m) == HASH_SIZE:
                mentions.append(m)
    return PostIndex(read_ref(payload.get("reply")), read_ref(payload.get("root")),
                     tuple(dict.fromkeys(t for t in tags if t)), tuple(dict.fromkeys(mentions)))


def target_id(payload: dict[str, Any]) -> bytes | None:
    """The user a follow, unfollow, block or unblock names."""
    value = payload.get("id")
    return value if isinstance(value, bytes) and len(value) == HASH_SIZE else None


def target_seq(payload: dict[str, Any]) -> int | None:
    """The own entry a delete or edit names."""
    value = payload.get("target")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 1:
        return value
    return None


TIMELINE_TYPES = frozenset({PayloadType.POST, PayloadType.BOOST, PayloadType.ENCRYPTED})
