"""The social model over the store: what each verb writes, and how entries are shown.

`plan_*` functions check a request against what the store holds and return the entry to
append (payload type and payload): the command line appends it directly, the daemon
through its writer. `Views` reads: it enriches entries (display names, counts, edits,
boosted posts) and hides what the user blocked or muted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from murmurate.crypto import decode_id, encode_id
from murmurate.store import PayloadType, Store, StoredEntry, StoreView, normalize_tag, read_ref

from .core.media import media_item_blob
from .core.views import entry_view, parse_ref, ref_text
from .errors import UsageError

MAX_NAME_CHARS = 60
MAX_BIO_CHARS = 500
MAX_RELAYS = 8
MAX_PINNED = 5
MAX_LIST_NAME = 60


@dataclass(frozen=True)
class Plan:
    payload_type: PayloadType
    payload: dict[str, Any]


# -- writing ------------------------------------------------------------------------------------

def _post_entry(store: StoreView, ref: str) -> StoredEntry:
    target = parse_ref(ref)
    stored = store.get(target.author, target.seq)
    if stored is None:
        raise UsageError(f"no entry {ref} in this node's store")
    if stored.envelope.payload_type not in (PayloadType.POST, PayloadType.ENCRYPTED) or stored.dropped:
        raise UsageError(f"{ref} is not a post that can be shown")
    return stored


def plan_boost(store: StoreView, me: bytes, ref: str) -> Plan:
    stored = _post_entry(store, ref)
    env = stored.envelope
    # A followers-only or direct post is a type-11 entry: its visibility is inside the
    # ciphertext, so the envelope's type decides (a boost would name it in public).
    private = env.payload_type == PayloadType.ENCRYPTED
    if private or (stored.payload or {}).get("vis") not in (None, "public", "unlisted"):
        raise UsageError(f"only public and unlisted posts can be boosted: {ref} is private")
    if any(actor == me for actor, _ in store.interactions(env.author, env.seq).get("boost", [])):
        raise UsageError(f"you already boosted {ref}")
    return Plan(PayloadType.BOOST, {"target": [env.author, env.seq]})


def plan_favourite(store: StoreView, me: bytes, ref: str) -> Plan:
    env = _post_entry(store, ref).envelope
    if env.payload_type == PayloadType.ENCRYPTED:
        # Unlike Mastodon's, a favourite here is a public entry: favouriting a private post
        # would tell everyone who reads our feed that we can read it (docs/private-posts.md 13).
        raise UsageError(f"a favourite is public, and {ref} is private: favouriting it would tell "
                         "everyone that you can read it")
    if any(actor == me for actor, _ in store.interactions(env.author, env.seq).get("favourite", [])):
        raise UsageError(f"you already favourited {ref}")
    return Plan(PayloadType.FAVOURITE, {"target": [env.author, env.seq]})


def plan_undo(store: StoreView, me: bytes, ref: str, kind: str) -> Plan:
    """Unboost / unfavourite: delete our own boost or favourite entry."""
    target = parse_ref(ref)
    mine = [seq for actor, seq in store.interactions(target.author, target.seq).get(kind, []) if actor == me]
    if not mine:
        raise UsageError(f"you have not {'boosted' if kind == 'boost' else 'favourited'} {ref}")
    return Plan(PayloadType.DELETE, {"target": mine[-1]})


def plan_delete(store: StoreView, me: bytes, ref: str) -> Plan:
    target = parse_ref(ref)
    if target.author != me:
        raise UsageError("you can only delete your own entries")
    stored = store.get(me, target.seq)
    if stored is None:
        raise UsageError(f"no entry {ref}")
    if stored.dropped:
        raise UsageError(f"{ref} is already deleted")
    if stored.envelope.payload_type == PayloadType.DELETE:
        raise UsageError("a delete cannot be deleted")
    return Plan(PayloadType.DELETE, {"target": target.seq})


def plan_edit(store: StoreView, me: bytes, ref: str, post_payload: dict[str, Any]) -> Plan:
    target = parse_ref(ref)
    if target.author != me:
        raise UsageError("you can only edit your own posts")
    stored = store.get(me, target.seq)
    if stored is None or stored.dropped or stored.envelope.payload_type != PayloadType.POST:
        raise UsageError(f"{ref} is not a post of yours that can be edited")
    payload = {k: v for k, v in post_payload.items() if k in ("text", "cw", "lang", "tags", "mentions")}
    return Plan(PayloadType.EDIT, {"target": target.seq, **payload})


def plan_profile(store: StoreView, me: bytes, *, name: str | None = None, bio: str | None = None,
                 relays: list[str] | None = None, pinned: list[str] | None = None,
                 avatar: dict[str, Any] | None = None) -> Plan:
    """A new profile entry: unspecified fields keep their current values."""
    current = store.profile(me)
    payload: dict[str, Any] = dict(current.payload) if current is not None and current.payload else {}
    if name is not None:
        if not isinstance(name, str) or len(name) > MAX_NAME_CHARS or "\n" in name:
            raise UsageError(f"a display name is one line of at most {MAX_NAME_CHARS} characters")
        payload["name"] = name
    if bio is not None:
        if not isinstance(bio, str) or len(bio) > MAX_BIO_CHARS:
            raise UsageError(f"a bio is at most {MAX_BIO_CHARS} characters")
        payload["bio"] = bio
    if relays is not None:
        if not isinstance(relays, list) or len(relays) > MAX_RELAYS or not all(isinstance(r, str) and r.startswith("/") for r in relays):
            raise UsageError(f"relays are up to {MAX_RELAYS} multiaddrs or contact addresses")
        payload["relays"] = relays
    if avatar is not None:
        from .core.media import media_payload
        if not isinstance(avatar, dict):
            raise UsageError("avatar is the result of `attach` (an image stored here)")
        image = media_payload([avatar], store.blob_size)[0]
        payload["avatar"] = {"blob": image["blob"], "size": image["size"], "mime": image["mime"]}
    if pinned is not None:
        if not isinstance(pinned, list):
            raise UsageError("pinned is a list of refs")
        seqs = []
        for ref in pinned[:MAX_PINNED]:
            target = parse_ref(ref)
            if target.author != me:
                raise UsageError("you can only pin your own posts")
            pinned_entry = store.get(me, target.seq)
            if pinned_entry is not None and pinned_entry.envelope.payload_type == PayloadType.ENCRYPTED:
                raise UsageError(f"only public posts can be pinned: {ref} is private")
            seqs.append(target.seq)
        payload["pinned"] = seqs
    return Plan(PayloadType.PROFILE, payload)


def plan_block(store: StoreView, me: bytes, who: str, *, block: bool) -> Plan:
    target = decode_id(who)
    if target == me:
        raise UsageError("you cannot block yourself")
    blocked = target in store.blocks(me)
    if block and blocked:
        raise UsageError(f"{encode_id(target)} is already blocked")
    if not block and not blocked:
        raise UsageError(f"{encode_id(target)} is not blocked")
    return Plan(PayloadType.BLOCK if block else PayloadType.UNBLOCK, {"id": target})


# -- local settings: mutes and lists (never leave this node) -----------------------------------

MUTE_USER, MUTE_WORD, MUTE_THREAD, LIST = b"mute-user\x00", b"mute-word\x00", b"mute-thread\x00", b"list\x00"


def mute(store: Store, kind: str, value: str, *, on: bool) -> dict[str, Any]:
    key = _mute_key(kind, value)
    if on:
        store.local_put(key)
    elif not store.local_delete(key):
        raise UsageError(f"{kind} {value!r} is not muted")
    return mutes(store)


def _mute_key(kind: str, value: str) -> bytes:
    if kind == "user":
        return MUTE_USER + decode_id(value)
    if kind == "word":
        word = value.strip().casefold()
        if not word or len(word) > 100:
            raise UsageError("a muted word is 1 to 100 characters")
        return MUTE_WORD + word.encode()
    if kind == "thread":
        ref = parse_ref(value)
        return MUTE_THREAD + ref.author + ref.seq.to_bytes(8, "big")
    raise UsageError("mute kinds are user, word and thread")


def mutes(store: StoreView) -> dict[str, list[str]]:
    return {
        "users": [encode_id(k[len(MUTE_USER):]) for k, _ in store.local_scan(MUTE_USER)],
        "words": [k[len(MUTE_WORD):].decode() for k, _ in store.local_scan(MUTE_WORD)],
        "threads": [ref_text(k[len(MUTE_THREAD):-8], int.from_bytes(k[-8:], "big"))
                    for k, _ in store.local_scan(MUTE_THREAD)],
    }


def list_change(store: Store, name: str, who: str, *, add: bool) -> dict[str, list[str]]:
    if not name or len(name) > MAX_LIST_NAME or "\x00" in name:
        raise UsageError(f"a list name is 1 to {MAX_LIST_NAME} characters")
    key = LIST + name.encode() + b"\x00" + decode_id(who)
    if add:
        store.local_put(key)
    elif not store.local_delete(key):
        raise UsageError(f"{who} is not on list {name!r}")
    return lists(store)


def lists(store: StoreView) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for key, _ in store.local_scan(LIST):
        name, member = key[len(LIST):].split(b"\x00", 1)
        out.setdefault(name.decode(), []).append(encode_id(member))
    return out


def list_members(store: StoreView, name: str) -> list[bytes]:
    return [k[len(LIST) + len(name.encode()) + 1:] for k, _ in store.local_scan(LIST + name.encode() + b"\x00")]


# -- reading ------------------------------------------------------------------------------------

class Views:
    """Entries as clients see them, for one reader (`me`): blocks and mutes applied."""

    def __init__(self, store: StoreView, me: bytes | None) -> None:
        self.store = store
        self.me = me
        self.blocked = set(store.blocks(me)) if me else set()
        m = mutes(store)
        self.muted_users = {decode_id(u) for u in m["users"]}
        self.muted_words = m["words"]
        self.muted_threads = set(m["threads"])
        self._names: dict[bytes, str | None] = {}

    def name(self, author: bytes) -> str | None:
        if author not in self._names:
            profile = self.store.profile(author)
            name = profile.payload.get("name") if profile is not None and profile.payload else None
            self._names[author] = name if isinstance(name, str) else None
        return self._names[author]

    def content(self, stored: StoredEntry) -> dict[str, Any]:
        """The payload as this reader sees it: an opened private post's plaintext payload,
        the stored payload otherwise ({} if none)."""
        if stored.envelope.payload_type == PayloadType.ENCRYPTED and not stored.dropped:
            from .private import Private  # private builds on this module's Plan
            opened = Private(self.store, lambda n: b"").plaintext(stored.envelope.author, stored.envelope.seq)
            return opened[1] if opened is not None else {}
        return stored.payload or {}

    def muted_word(self, stored: StoredEntry) -> bool:
        """True if the post's text (an opened private post's too) holds a muted word."""
        text = self.content(stored).get("text")
        return isinstance(text, str) and any(w in text.casefold() for w in self.muted_words)

    def hidden(self, stored: StoredEntry, *, strict: bool = True) -> bool:
        """True if this reader must not see the entry (blocked author, or muted when strict)."""
        author = stored.envelope.author
        if author in self.blocked:
            return True
        payload = self.content(stored)
        target = read_ref(payload.get("target"))
        if target is not None and target.author in self.blocked:
            return True  # a boost or favourite of a blocked author's post
        if not strict:
            return False
        if author in self.muted_users:
            return True
        if self.muted_word(stored):
            return True
        root = read_ref(payload.get("root"))
        if root is not None and ref_text(root.author, root.seq) in self.muted_threads:
            return True
        return False

    def item(self, stored: StoredEntry, *, depth: int = 0, count_replies: bool = True) -> dict[str, Any]:
        env = stored.envelope
        if env.payload_type == PayloadType.ENCRYPTED and not stored.dropped:
            return self._private_item(stored)
        view = entry_view(stored)
        view["name"] = self.name(env.author)
        if env.payload_type == PayloadType.POST and view.get("state") == "ok":
            edits = self.store.edits(env.author, env.seq)
            if edits:
                latest = self.store.get(env.author, edits[-1])
                if latest is not None and latest.payload is not None and isinstance(latest.payload.get("text"), str):
                    view["text"] = latest.payload["text"]
                    if isinstance(latest.payload.get("cw"), str):
                        view["cw"] = latest.payload["cw"]
                    else:
                        view.pop("cw", None)
                    view["edited_ms"] = latest.envelope.timestamp_ms
                    view["edits"] = len(edits)
            if view.get("mentions"):
                # Mentions are ids (the identity); clients show them by display name.
                view["mention_names"] = {m: self.name(decode_id(m)) for m in view["mentions"]}
            counts = self.store.interactions(env.author, env.seq)
            view["boosts"] = len(counts.get("boost", []))
            view["favourites"] = len(counts.get("favourite", []))
            if self.me is not None:
                view["boosted"] = any(a == self.me for a, _ in counts.get("boost", []))
                view["favourited"] = any(a == self.me for a, _ in counts.get("favourite", []))
            if count_replies:
                # From the index alone: direct replies, or for a thread's first post every
                # reply in the thread (what the thread view will show under it).
                view["replies"] = self.store.reply_count(env.author, env.seq)
        if "quote" in view and depth == 0:
            quoted_ref = parse_ref(view["quote"])
            quoted = self.store.get(quoted_ref.author, quoted_ref.seq)
            if quoted is not None and not self.hidden(quoted, strict=False):
                view["quoted_post"] = self.item(quoted, depth=1)
        if env.payload_type == PayloadType.BOOST and "target" in view and depth == 0:
            target = parse_ref(view["target"])
            boosted = self.store.get(target.author, target.seq)
            if boosted is not None:
                view["boosted_post"] = self.item(boosted, depth=1)
        return view

    def _private_item(self, stored: StoredEntry) -> dict[str, Any]:
        """A followers-only or direct post: shown as a post if this node could open it."""
        from .private import Private  # private builds on this module's Plan
        env = stored.envelope
        opened = Private(self.store, lambda n: b"").plaintext(env.author, env.seq)
        if opened is None:
            view = entry_view(stored)
            view["name"] = self.name(env.author)
            view["state"] = "encrypted"  # not for us, a key grant, or not opened yet
            return view
        visibility, payload = opened
        fake = StoredEntry(stored.entry, payload, False)
        view = entry_view(fake, payload_type=PayloadType.POST)  # rendered from the plaintext payload
        view["type"] = "post"
        view["visibility"] = visibility
        view["name"] = self.name(env.author)
        return view

    def items(self, entries: Any) -> list[dict[str, Any]]:
        return [self.item(s) for s in entries if not self.hidden(s)]

    def history(self, ref: str) -> list[dict[str, Any]]:
        """Every version of a post, oldest first: the original, then each edit."""
        target = parse_ref(ref)
        original = self.store.get(target.author, target.seq)
        if original is None:
            raise UsageError(f"no entry {ref}")
        versions = [original] + [e for e in (self.store.get(target.author, s)
                                             for s in self.store.edits(target.author, target.seq)) if e]
        return [{"ref": ref_text(v.envelope.author, v.envelope.seq), "timestamp_ms": v.envelope.timestamp_ms,
                 "text": _str((v.payload or {}).get("text")), "cw": _str((v.payload or {}).get("cw"))}
                for v in versions]

    def thread(self, ref: str, *, limit: int = 50, cursor: str | None = None) -> dict[str, Any]:
        """The conversation a post belongs to, a page at a time: the root first, then replies
        in time order, each with its parent, so a client can draw the tree. `cursor` is the
        previous page's `next_cursor`. Reply counts are those of the replies this node holds."""
        start_entry = _post_entry(self.store, ref)
        root_ref = read_ref(self.content(start_entry).get("root"))
        root_author, root_seq = (root_ref.author, root_ref.seq) if root_ref else (start_entry.envelope.author,
                                                                                   start_entry.envelope.seq)
        offset = 0
        if cursor is not None:
            if not isinstance(cursor, str) or not cursor.isdigit():
                raise UsageError(f"not a thread cursor: {cursor!r}")
            offset = int(cursor)
        refs = self.store.reply_refs(root_author, root_seq)
        page_refs = refs[offset:offset + limit]
        entries = [self.store.get(a, s) for _, a, s in page_refs]
        root = self.store.get(root_author, root_seq)
        shown = ([root] if root is not None and offset == 0 else []) + [e for e in entries if e is not None]
        # Who answers whom, for the counts: the replies' `reply` fields, read from the page and
        # (for the counts only) the index of each reply's own direct replies.
        items = []
        for stored in shown:
            if self.hidden(stored, strict=False) or self.muted_word(stored):
                continue
            view = self.item(stored, count_replies=False)
            parent = read_ref(self.content(stored).get("reply"))
            view["parent"] = ref_text(parent.author, parent.seq) if parent is not None else None
            if view.get("type") == "post":
                env = stored.envelope
                view["replies"] = (self._direct_replies(refs, env.author, env.seq)
                                   if (env.author, env.seq) == (root_author, root_seq)
                                   else self.store.reply_count(env.author, env.seq))
            items.append(view)
        more = offset + limit < len(refs)
        return {"root": ref_text(root_author, root_seq), "root_missing": root is None, "items": items,
                "next_cursor": str(offset + limit) if more else None, "total_replies": len(refs)}

    def _direct_replies(self, refs: list[tuple[int, bytes, int]], author: bytes, seq: int) -> int:
        """Direct replies to the root: all replies under it minus those that answer a reply."""
        nested = sum(self.store.reply_count(a, s) for _, a, s in refs)
        return max(0, len(refs) - nested)

    def notifications(self, *, limit: int, cursor: str | None) -> dict[str, Any]:
        if self.me is None:
            return {"items": [], "next_cursor": None}
        try:
            rows, next_cursor = self.store.notifications(self.me, limit=limit, cursor=cursor)
        except ValueError as e:
            raise UsageError(str(e)) from None
        items = []
        for stored, kinds in rows:
            if (self.hidden(stored, strict=False) or stored.envelope.author in self.muted_users
                    or self.muted_word(stored)):
                continue
            items.append({"kinds": kinds, "entry": self.item(stored)})
        return {"items": items, "next_cursor": next_cursor}

    def profile(self, who: str) -> dict[str, Any]:
        author = decode_id(who)
        profile = self.store.profile(author)
        payload = profile.payload if profile is not None and profile.payload else {}
        pinned_raw, relays_raw = payload.get("pinned"), payload.get("relays")
        pinned = [ref_text(author, s) for s in (pinned_raw if isinstance(pinned_raw, list) else [])
                  if isinstance(s, int) and not isinstance(s, bool) and s >= 1]
        return {
            "id": encode_id(author), "name": self.name(author),
            "bio": payload.get("bio") if isinstance(payload.get("bio"), str) else None,
            "relays": [r for r in (relays_raw if isinstance(relays_raw, list) else []) if isinstance(r, str)],
            "avatar": _avatar(payload.get("avatar")),
            "pinned": pinned,
            "following": [encode_id(a) for a in self.store.follows(author)],
            "followers": [encode_id(a) for a in self.store.followers(author)],
            "blocked": author in self.blocked, "muted": author in self.muted_users,
            "you_follow": self.me is not None and author in self.store.follows(self.me),
        }

    def search(self, query: str, *, limit: int = 20, max_scan: int = 20_000) -> dict[str, Any]:
        """Display names, hashtags and post text (the newest `max_scan` posts)."""
        if not isinstance(query, str):
            raise UsageError("search for some text")
        q = query.strip().casefold()
        if not q:
            raise UsageError("search for something")
        people = []
        for author in self.store.profile_authors():
            name = self.name(author) or ""
            if q in name.casefold() or encode_id(author).startswith(q):
                people.append({"id": encode_id(author), "name": name})
        tags = self.store.tags_with_prefix(normalize_tag(q)) if q.lstrip("#") else []
        posts = []
        for stored in self.store.recent_posts(max_scan):
            text = self.content(stored).get("text")  # opened private posts are searched too
            if isinstance(text, str) and q in text.casefold() and not self.hidden(stored):
                posts.append(self.item(stored))
                if len(posts) >= limit:
                    break
        return {"people": people[:limit], "hashtags": tags, "posts": posts}



def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _avatar(value: Any) -> dict[str, Any] | None:
    if media_item_blob(value) is not None:
        size, mime = value.get("size"), value.get("mime")
        return {"blob": value["blob"].hex(), "size": size if isinstance(size, int) else None,
                "mime": mime if isinstance(mime, str) else "application/octet-stream"}
    return None
