"""Social indexes: who follows, boosted, favourited, replied to or mentioned whom; edits,
blocks, followers, profiles; and the reads over them.

`index` is called from the store's write transaction for every entry with a payload (and
again with `remove=True` when a payload is dropped), so the indexes always match what is
stored. The read functions take a StoreEnv and open one short read transaction.

    follows        follower | followee -> seq u64 of the follow entry   (written by feeds.index_payload)

    interactions   target author | target seq u64 | kind u8 | actor | actor seq u64 -> b""
    notifications  recipient | timestamp u64 | feed_num u32 | seq u64 -> kinds (bytes)
    edits          author | target seq u64 | edit seq u64 -> b""
    blocks         blocker | blocked -> seq u64 of the block entry
    followers      followee | follower -> seq u64 of the follow entry
    profiles       author -> seq u64 of the newest profile entry
    local          key -> value: this node's own settings, never replicated (store/settings.py)
"""

from __future__ import annotations

import base64
from collections.abc import Callable
from typing import Any

from .entry import Envelope, PayloadType
from .log import StoredEntry, get_in, load_num, seq_item
from .payloads import PostIndex, post_index, read_ref, target_id, target_seq
from .records import TIMELINE_KEY, U64, FeedRecord

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


# -- reads ---------------------------------------------------------------------------------------

def follows(env: Any, follower: bytes) -> list[bytes]:
    """The authors `follower` follows, as their own feed says."""
    with env.begin() as txn:
        cur = txn.cursor(db=env.db["follows"])
        out = []
        if cur.set_range(follower):
            for key in cur.iternext(values=False):
                if key[:32] != follower:
                    break
                out.append(bytes(key[32:]))
        return out


def interactions(env: Any, author: bytes, seq: int) -> dict[str, list[tuple[bytes, int]]]:
    """Who boosted, favourited or quoted one entry: kind name -> [(actor, actor seq)]."""
    prefix = author + U64.pack(seq)
    out: dict[str, list[tuple[bytes, int]]] = {}
    with env.begin() as txn:
        for key, _ in scan_prefix(txn, env.db["interactions"], prefix):
            kind = KIND_NAMES.get(key[40:41], "other")
            out.setdefault(kind, []).append((key[41:73], U64.unpack(key[73:81])[0]))
    return out


def notifications(env: Any, recipient: bytes, *, limit: int = 50, cursor: str | None = None
                  ) -> tuple[list[tuple[StoredEntry, list[str]]], str | None]:
    """Entries that reply to, mention, boost, favourite, quote or follow `recipient`,
    newest first, with the kinds of each."""
    before = decode_key_cursor(cursor, recipient) if cursor else None
    out = []
    with env.begin(buffers=True) as txn:
        rows = scan_desc(txn, env.db["notifications"], recipient, limit, before)
        for key, kinds in rows:
            _, feed_num, seq = TIMELINE_KEY.unpack(key[32:])
            stored = load_num(txn, env.db, feed_num, seq)
            if stored is not None:
                out.append((stored, [KIND_NAMES.get(bytes([k]), "other") for k in kinds]))
    next_cursor = encode_key_cursor(rows[-1][0]) if len(rows) == limit else None
    return out, next_cursor


def edits(env: Any, author: bytes, seq: int) -> list[int]:
    """Seqs of the author's edits of entry `seq`, oldest first."""
    with env.begin() as txn:
        rows = scan_prefix(txn, env.db["edits"], author + U64.pack(seq))
    return [U64.unpack(key[40:48])[0] for key, _ in rows]


def blocks(env: Any, blocker: bytes) -> list[bytes]:
    with env.begin() as txn:
        return [key[32:] for key, _ in scan_prefix(txn, env.db["blocks"], blocker)]


def followers(env: Any, followee: bytes) -> list[bytes]:
    with env.begin() as txn:
        return [key[32:] for key, _ in scan_prefix(txn, env.db["followers"], followee)]


def profile(env: Any, author: bytes) -> StoredEntry | None:
    """The author's newest profile entry, if this store holds one."""
    with env.begin() as txn:
        raw = txn.get(author, db=env.db["profiles"])
        return get_in(txn, env.db, author, U64.unpack(raw)[0]) if raw is not None else None


def profile_authors(env: Any) -> list[bytes]:
    with env.begin() as txn:
        return [bytes(k) for k in txn.cursor(db=env.db["profiles"]).iternext(values=False)]


def replies_under(env: Any, author: bytes, seq: int) -> list[StoredEntry]:
    """Every stored reply that names (author, seq) as its parent or its thread root."""
    prefix = author + U64.pack(seq)
    with env.begin(buffers=True) as txn:
        rows = scan_prefix(txn, env.db["replies"], prefix)
        out = []
        for key, _ in rows:
            child = get_in(txn, env.db, key[40:72], U64.unpack(key[72:80])[0])
            if child is not None:
                out.append(child)
        return out


def reply_count(env: Any, author: bytes, seq: int) -> int:
    """How many stored replies name (author, seq) as parent or root (index keys only)."""
    prefix = author + U64.pack(seq)
    count = 0
    with env.begin() as txn:
        cur = txn.cursor(db=env.db["replies"])
        if cur.set_range(prefix):
            for key in cur.iternext(values=False):
                if key[:40] != prefix:
                    break
                count += 1
    return count


def reply_refs(env: Any, author: bytes, seq: int) -> list[tuple[int, bytes, int]]:
    """(timestamp, author, seq) of every stored reply under (author, seq), oldest first,
    from the indexes alone (nothing decoded): a thread's page loads only what it shows."""
    prefix = author + U64.pack(seq)
    out = []
    db = env.db
    with env.begin(buffers=True) as txn:
        nums: dict[bytes, int | None] = {}
        for key, _ in scan_prefix(txn, db["replies"], prefix):
            child, child_seq = key[40:72], U64.unpack(key[72:80])[0]
            if child not in nums:
                raw = txn.get(child, db=db["feeds"])
                nums[child] = FeedRecord.unpack(raw).feed_num if raw is not None else None
            item = seq_item(txn, db, nums[child], child_seq) if nums[child] is not None else None
            if item is not None:
                out.append((item[2], child, child_seq))
    out.sort()
    return out
