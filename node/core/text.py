"""Post text: length as Mastodon counts it, hashtags and mentions. Pure.

Mastodon counts characters (Unicode code points) and counts every URL as 23 characters,
however long, so a link never eats the budget. Hashtags are `#` followed by letters,
digits or `_` (not all digits), at the start or after a non-word character. Mentions are
full ids (`@mur_...` or `mur_...`): an id is the identity, a name is only a label.
"""

from __future__ import annotations

import re

from murmurate.crypto import InvalidIdError, decode_id

DEFAULT_MAX_CHARS = 500
URL_WEIGHT = 23

_URL = re.compile(r"https?://[^\s<>\"]+", re.IGNORECASE)
_HASHTAG = re.compile(r"(?:^|(?<=[^\w&/]))#(\w{1,100})(?!\w)", re.UNICODE)
# An id alone, or after "@"; never glued to a word ("x@mur_..." is not a mention).
_MENTION = re.compile(r"(?:(?<![\w@])@|(?<![\w@]))(mur_[a-z2-7]{58})\b", re.IGNORECASE)


def count_chars(text: str) -> int:
    """Length of `text` as Mastodon's counter shows it."""
    total = 0
    last = 0
    for match in _URL.finditer(text):
        total += len(text[last:match.start()]) + URL_WEIGHT
        last = match.end()
    return total + len(text[last:])


def hashtags(text: str) -> list[str]:
    """Normalized hashtags in order of first appearance."""
    found = []
    for match in _HASHTAG.finditer(text):
        tag = match.group(1)
        if not tag.isdigit():
            found.append(_normalize_tag(tag))
    return list(dict.fromkeys(found))


def mentions(text: str) -> list[bytes]:
    """Public keys of the ids mentioned in `text` (ids with a bad checksum are ignored)."""
    found = []
    for match in _MENTION.finditer(text):
        try:
            found.append(decode_id(match.group(1)))
        except InvalidIdError:
            continue
    return list(dict.fromkeys(found))


def _normalize_tag(tag: str) -> str:
    # store.payloads.normalize_tag, imported on first use: importing murmurate.store loads
    # LMDB, and node/home.py (which the terminal client imports) reads DEFAULT_MAX_CHARS here.
    from murmurate.store import normalize_tag
    return normalize_tag(tag)
