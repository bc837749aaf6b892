"""Social indexes: who boosted, favourited, replied to or mentioned whom; edits, blocks,
followers, profiles; and the node's local-only settings (mutes, lists).

Called from the store's write transaction for every entry with a payload (and again with
`remove=True` when a payload is dropped), so the indexes always match what is stored.

    interactions   target author | target seq u64 | kind u8 | actor | actor seq u64 -> b""
    notifications  recipient | timestamp u64 | feed_num u32 | seq u64 -> kinds (bytes)
    edits          author | target seq u64 | edit seq u64 -> b""
    blocks         blocker | blocked -> seq u64 of the block entry
    followers      followee | follower -> seq u64 of the follow entry
    profiles       author -> seq u64 of the newest profile entry
    local          key -> value: this node's own settings, never replicated
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from .entry import Envelope, PayloadType
from .payloads import PostIndex, post_index, read_ref, target_id, target_seq
from .records import TIMELINE_KEY, U64

DB_NAMES = ("interactions", "notifications", "edits", "blocks", "followers", "profiles", "local")

BOOST = b"b"
FAVOURITE = b"f"
REPLY = b"r"
MENTION = b"m"
QUOTE = b"q"
FOLLOW = b"F"
KIND_NAMES = {BOOST: "boost", FAVOURITE: "favourite", REPLY: "reply", MENTION: "mention", QUOTE: "quote",
              FOLLOW: "follow"}


def index(txn: Any, db: dict[str, Any], env: Envelope, feed_num: int, payload: dict[str, Any], *,
          remove: bool, post: PostIndex | None = None) -> None:
    """Add (or remove) the social index entries of one stored entry. `post` is the post's
    post_index when the caller has it already (it is the costly part of indexing a post)."""
    ptype = env.payload_type
    if (ptype == PayloadType.POST and post is not None and post.reply_to is None and not post.mentions
            and "quote" not in payload):
        return  # the common post (no reply, mention or quote) notifies nobody: a catch-up's fast path
    me = env.author + U64.pack(env.seq)
    tail = TIMELINE_KEY.pack(env.timestamp_ms, feed_num, env.seq)
    put: Callable[[bytes, bytes, str], None]
    if remove:
        def put(key: bytes, value: bytes, name: str) -> None:
            txn.delete(key, db=db[name])
    else:
        def put(key: bytes, value: bytes, name: str) -> None:
            txn.put(key, value, db=db[name])

    notify: dict[bytes, bytes] = {}
    if ptype == PayloadType.POST:
        post = post if post is not None else post_index(payload)
        if post is None:
            return
        if post.reply_to is not None and post.reply_to.author != env.author:
            notify[post.reply_to.author] = notify.get(post.reply_to.author, b"") + REPLY
        for who in post.mentions:
            if who != env.author:
                notify[who] = notify.get(who, b"") + MENTION
        quote = read_ref(payload.get("quote"))
        if quote is not None:
            put(quote.author + U64.pack(quote.seq) + QUOTE + me, b"", "interactions")
            if quote.author != env.author:
                notify[quote.author] = notify.get(quote.author, b"") + QUOTE
    elif ptype in (PayloadType.BOOST, PayloadType.FAVOURITE):
        target = read_ref(payload.get("target"))
        if target is None:
            return
        kind = BOOST if ptype == PayloadType.BOOST else FAVOURITE
        put(target.author + U64.pack(target.seq) + kind + me, b"", "interactions")
        if target.author != env.author:
            notify[target.author] = kind
    elif ptype in (PayloadType.FOLLOW, PayloadType.UNFOLLOW):
        who = target_id(payload)
        if who is None or remove:
            return
        if ptype == PayloadType.FOLLOW:
            txn.put(who + env.author, U64.pack(env.seq), db=db["followers"])
            if who != env.author:
                notify[who] = FOLLOW
        else:
            txn.delete(who + env.author, db=db["followers"])
    elif ptype in (PayloadType.BLOCK, PayloadType.UNBLOCK):
        who = target_id(payload)
        if who is None or remove:
            return
        if ptype == PayloadType.BLOCK:
            txn.put(env.author + who, U64.pack(env.seq), db=db["blocks"])
        else:
            txn.delete(env.author + who, db=db["blocks"])
    elif ptype == PayloadType.EDIT:
        target = target_seq(payload)
        if target is not None and target < env.seq:
            put(env.author + U64.pack(target) + U64.pack(env.seq), b"", "edits")
    elif ptype == PayloadType.PROFILE and not remove:
        txn.put(env.author, U64.pack(env.seq), db=db["profiles"])
    for recipient, kinds in notify.items():
        put(recipient + tail, kinds, "notifications")


def index_opened(txn: Any, db: dict[str, Any], env: Envelope, feed_num: int, payload: dict[str, Any], *,
                 remove: bool) -> bool:
    """Add (or remove) what an opened private post's plaintext `payload` indexes, as a post's:
    its reply links (threads, reply counts) and the notifications and quotes it makes. `env`
    is the type-11 entry's envelope. Hashtags and timelines stay out: a private post is in no
    public list. False if the plaintext is not a readable post."""
    post = post_index(payload)
    if post is None:
        return False
    index(txn, db, env._replace(payload_type=PayloadType.POST), feed_num, payload, remove=remove, post=post)
    child = env.author + U64.pack(env.seq)
    for parent in {post.reply_to, post.root} - {None}:
        key = parent.author + U64.pack(parent.seq) + child
        if remove:
            txn.delete(key, db=db["replies"])
        else:
            txn.put(key, b"", db=db["replies"])
    return True


def encode_key_cursor(key: bytes) -> str:
    return base64.urlsafe_b64encode(key).decode("ascii").rstrip("=")


def decode_key_cursor(text: str, prefix: bytes) -> bytes:
    """A cursor over an index whose keys start with `prefix`. Raises ValueError."""
    try:
        key = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (ValueError, TypeError):
        raise ValueError(f"not a cursor: {text!r}") from None
    if not key.startswith(prefix) or len(key) != len(prefix) + TIMELINE_KEY.size:
        raise ValueError(f"not a cursor for this list: {text!r}")
    return key


def scan_desc(txn: Any, dbi: Any, prefix: bytes, limit: int, before: bytes | None) -> list[tuple[bytes, bytes]]:
    """Up to `limit` (key, value) pairs whose keys start with `prefix`, newest (largest) first,
    strictly before `before` when given."""
    cur = txn.cursor(db=dbi)
    if before is not None:
        ok = cur.set_range(before)
        ok = cur.prev() if ok else cur.last()
    else:
        upper = _next_prefix(prefix)
        ok = cur.set_range(upper) if upper is not None else False
        ok = cur.prev() if ok else cur.last()
    out = []
    while ok and len(out) < limit:
        key = bytes(cur.key())
        if not key.startswith(prefix):
            if key < prefix:
                break
            ok = cur.prev()
            continue
        out.append((key, bytes(cur.value())))
        ok = cur.prev()
    return out


def scan_prefix(txn: Any, dbi: Any, prefix: bytes) -> list[tuple[bytes, bytes]]:
    cur = txn.cursor(db=dbi)
    out = []
    if cur.set_range(prefix):
        for key, value in cur:
            if not bytes(key).startswith(prefix):
                break
            out.append((bytes(key), bytes(value)))
    return out


def _next_prefix(prefix: bytes) -> bytes | None:
    """The smallest key greater than every key starting with `prefix`."""
    stripped = prefix.rstrip(b"\xff")
    if not stripped:
        return None
    return stripped[:-1] + bytes([stripped[-1] + 1])
