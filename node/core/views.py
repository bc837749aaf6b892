"""How entries look to clients: plain JSON-ready dicts. Pure.

The command line prints these, `--json` emits them as they are, and the local API will
send the same shapes, so every client sees one model.
"""

from __future__ import annotations

from typing import Any

from murmurate.crypto import InvalidIdError, decode_id, encode_id, fingerprint
from murmurate.store import PayloadType, Ref, StoredEntry, post_index, read_ref

from ..errors import UsageError
from .media import MAX_MEDIA, media_item_blob

MAX_REF_SEQ = 2**64 - 1
_TYPE_NAMES = {t.value: t.name.lower() for t in PayloadType}


def ref_text(author: bytes, seq: int) -> str:
    """Text form of an entry reference: `<author id>/<seq>`."""
    return f"{encode_id(author)}/{seq}"


def parse_ref(text: str) -> Ref:
    """Parse `<author id>/<seq>`. Raises UsageError with what is wrong."""
    if not isinstance(text, str):
        raise UsageError("a post reference is a string <id>/<seq>")
    author_text, sep, seq_text = text.strip().rpartition("/")
    # ASCII digits only (str.isdigit takes "²", which int() refuses), and at most what the
    # store's 64-bit keys hold: a payload's ref may name up to that (no entry has a seq over
    # 2^53 - 1, so such a ref finds nothing), and views write such refs back as text.
    if not sep or not (seq_text.isascii() and seq_text.isdigit()) or len(seq_text) > 20:
        raise UsageError(f"a post reference looks like <id>/<seq>, e.g. mur_.../12; got {text[:100]!r}")
    if not 1 <= int(seq_text) <= MAX_REF_SEQ:
        raise UsageError(f"a post reference's seq is from 1 to {MAX_REF_SEQ}; got {seq_text}")
    try:
        author = decode_id(author_text)
    except InvalidIdError as e:
        raise UsageError(f"in post reference: {e}") from None
    return Ref(author, int(seq_text))


def entry_view(stored: StoredEntry, *, payload_type: int | None = None) -> dict[str, Any]:
    """`payload_type` overrides the envelope's (an opened private post reads as a post)."""
    env = stored.envelope
    view: dict[str, Any] = {
        "ref": ref_text(env.author, env.seq),
        "author": encode_id(env.author),
        "fingerprint": fingerprint(env.author),
        "seq": env.seq,
        "timestamp_ms": env.timestamp_ms,
        "type": _TYPE_NAMES.get(env.payload_type, f"unknown:{env.payload_type}"),
    }
    payload = stored.payload
    if stored.dropped:
        view["state"] = "deleted"
        return view
    if stored.entry.payload is None:
        view["state"] = "payload_missing"
        return view
    if payload is None:
        view["state"] = "unreadable"
        return view
    view["state"] = "ok"
    ptype = payload_type if payload_type is not None else env.payload_type
    if ptype == PayloadType.POST:
        index = post_index(payload)
        if index is None:
            view["state"] = "unreadable"
            return view
        view["text"] = payload["text"]
        if isinstance(payload.get("cw"), str):
            view["cw"] = payload["cw"]
        if isinstance(payload.get("lang"), str):
            view["lang"] = payload["lang"]
        if index.reply_to:
            view["reply_to"] = ref_text(index.reply_to.author, index.reply_to.seq)
        quote = read_ref(payload.get("quote"))
        if quote:
            view["quote"] = ref_text(quote.author, quote.seq)
        if index.root:
            view["root"] = ref_text(index.root.author, index.root.seq)
        view["tags"] = list(index.tags)
        media = payload.get("media")
        if isinstance(media, list):
            view["media"] = [{"blob": m["blob"].hex(), "size": _int_or_none(m.get("size")),
                              "mime": _str(m.get("mime"), "application/octet-stream"), "alt": _str(m.get("alt"), "")}
                             for m in media[:MAX_MEDIA] if media_item_blob(m) is not None]
        view["mentions"] = [encode_id(m) for m in index.mentions]
    elif ptype in (PayloadType.FOLLOW, PayloadType.UNFOLLOW, PayloadType.BLOCK, PayloadType.UNBLOCK):
        who = payload.get("id")
        if isinstance(who, bytes) and len(who) == 32:
            view["target"] = encode_id(who)
    elif ptype in (PayloadType.BOOST, PayloadType.FAVOURITE):
        target = read_ref(payload.get("target"))
        if target:
            view["target"] = ref_text(target.author, target.seq)
    elif ptype in (PayloadType.DELETE, PayloadType.EDIT):
        if isinstance(payload.get("target"), int):
            view["target"] = ref_text(env.author, payload["target"])
    return view


def _str(value: Any, default: str) -> str:
    return value if isinstance(value, str) else default


def _int_or_none(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None
