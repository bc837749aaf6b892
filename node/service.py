"""The node's verbs over its own store: what the command line (and later the local API) calls.

Every method returns plain JSON-ready data. The clock and the source of randomness are
given to the constructor, so tests can fix both.

Without a daemon the node owns its writable Store and is its own single writer. A daemon
takes the store over (`hand_over_store`) for its writer; from then on the node reads
through a StoreView (no write methods: a stray write fails at once), and its writing verbs
run as writer jobs on a node bound to the writer's store (`writing_to`).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from murmurate.crypto import (KdfParams, SigningIdentity, decode_id, decode_key_file, decode_public_key,
                              encode_id, encode_key_file, fingerprint, is_encrypted, read_key_file,
                              write_key_file)
from murmurate.crypto.keyfile import NONCE_SIZE, SALT_SIZE
from murmurate.store import PayloadType, Store, StoredEntry, StoreView, normalize_tag, ref_value
from murmurate.store.archive import export_archive, import_archive

from . import social
from .core import text as post_text
from .core.contact import Contact, parse_contact
from .core.media import media_payload
from .core.views import entry_view, parse_ref
from .errors import AlreadyInitializedError, NotInitializedError, UsageError
from .home import Config, Home

MAX_CW_CHARS = 500


@dataclass(frozen=True)
class FollowPlan:
    contact: Contact
    payload: dict[str, Any]


class LocalNode:
    """A node's identity and store, used in-process."""

    def __init__(self, home: Home, *, now_ms: Callable[[], int], random_bytes: Callable[[int], bytes],
                 config: Config | None = None) -> None:
        self.home = home
        self._now_ms = now_ms
        self._random = random_bytes
        self.config = config or home.load_config()
        self._store: Store | None = None     # the writable store, while this node owns it
        self._view: StoreView | None = None  # what it reads once a daemon's writer took it

    # -- identity --------------------------------------------------------------------------

    def init(self, passphrase: bytes | None, *, kdf: KdfParams = KdfParams()) -> dict[str, Any]:
        """Create this home's identity. Raises AlreadyInitializedError if there is one."""
        if self.home.key_file.exists():
            raise AlreadyInitializedError(
                f"{self.home.key_file} already holds an identity ({self.whoami()['id']}); it is never replaced")
        identity = SigningIdentity(self._random(32))
        data = encode_key_file(identity, passphrase, salt=self._random(SALT_SIZE),
                               nonce=self._random(NONCE_SIZE), kdf=kdf)
        write_key_file(self.home.key_file, data)
        self.store.set_self(identity.public_key)
        return self._who(identity.public_key, encrypted=passphrase is not None)

    def whoami(self) -> dict[str, Any]:
        data = self._key_bytes()
        return self._who(decode_public_key(data), encrypted=is_encrypted(data))

    def needs_passphrase(self) -> bool:
        return is_encrypted(self._key_bytes())

    def unlock(self, passphrase: bytes | None) -> SigningIdentity:
        """Open the key file. Raises WrongPassphraseError, PassphraseRequiredError, KeyFileError."""
        identity = decode_key_file(self._key_bytes(), passphrase)
        if self.store.self_id != identity.public_key:
            self.store.set_self(identity.public_key)
        return identity

    # -- writing ---------------------------------------------------------------------------

    def post(self, identity: SigningIdentity, text: str, *, cw: str | None = None,
             reply_to: str | None = None, lang: str | None = None) -> dict[str, Any]:
        """Append a post. Raises UsageError (too long, empty, unknown parent)."""
        return self._append(identity, PayloadType.POST, self.prepare_post(text, cw=cw, reply_to=reply_to, lang=lang))

    def prepare_post(self, text: str, *, cw: str | None = None, reply_to: str | None = None,
                     lang: str | None = None, visibility: str = "public",
                     media: list[dict[str, Any]] | None = None, quote: str | None = None) -> dict[str, Any]:
        """The payload of a post, checked against this node's limits. Raises UsageError."""
        if not isinstance(text, str) or (cw is not None and not isinstance(cw, str)):
            raise UsageError("text and cw must be strings")
        length = post_text.count_chars(text)
        if not text.strip():
            raise UsageError("a post needs some text")
        if length > self.config.max_post_chars:
            raise UsageError(f"post is {length} characters; this node allows {self.config.max_post_chars} "
                             "(links count as 23)")
        payload: dict[str, Any] = {"text": text}
        if visibility not in ("public", "unlisted", "followers", "direct"):
            raise UsageError("visibility is public, unlisted, followers or direct")
        if visibility == "unlisted":
            payload["vis"] = "unlisted"
        if cw:
            if len(cw) > MAX_CW_CHARS:
                raise UsageError(f"content warning is {len(cw)} characters; the limit is {MAX_CW_CHARS}")
            payload["cw"] = cw
        if lang:
            payload["lang"] = lang[:35]
        if reply_to:
            payload.update(self._reply_fields(reply_to, visibility))
        if quote:
            quoted_ref = parse_ref(quote)
            quoted = self.store.get(quoted_ref.author, quoted_ref.seq)
            if quoted is not None and quoted.envelope.payload_type == PayloadType.ENCRYPTED:
                # Even inside a private post: it would show a private post to another audience.
                raise UsageError(f"only public and unlisted posts can be quoted: {quote} is private")
            if quoted is None or quoted.dropped or quoted.envelope.payload_type != PayloadType.POST:
                raise UsageError(f"{quote} is not a post on this node that can be quoted")
            if (quoted.payload or {}).get("vis") not in (None, "public", "unlisted"):
                raise UsageError("only public and unlisted posts can be quoted")
            payload["quote"] = ref_value(quoted_ref)
        if media:
            if not isinstance(media, list) or not all(isinstance(m, dict) for m in media):
                raise UsageError("media is a list of {blob, alt, mime} from `attach`")
            payload["media"] = media_payload(media, self.store.blob_size)
        tags = post_text.hashtags(text)
        if tags:
            payload["tags"] = tags
        mentioned = post_text.mentions(text)
        if mentioned:
            payload["mentions"] = mentioned
        return payload

    def _reply_fields(self, reply_to: str, visibility: str) -> dict[str, Any]:
        """The `reply` and `root` fields of a reply. A reply to a private post must be private
        itself: a public one would name the private post in the clear (docs/private-posts.md 13)."""
        parent_ref = parse_ref(reply_to)
        parent = self.store.get(parent_ref.author, parent_ref.seq)
        if parent is None:
            raise UsageError(f"no post {reply_to} in this node's store (follow its author first)")
        public = visibility in ("public", "unlisted")
        refused = (f"a reply to a private post must be private too (followers or direct): a {visibility} "
                   f"reply would name {reply_to} in public")
        if parent.envelope.payload_type == PayloadType.ENCRYPTED and not parent.dropped:
            if public:
                raise UsageError(refused)
            opened = self.private.plaintext(parent_ref.author, parent_ref.seq)
            if opened is None:
                raise UsageError(f"this node cannot open {reply_to}: a private post not addressed to you")
            view = entry_view(StoredEntry(parent.entry, opened[1], False), payload_type=PayloadType.POST)
            if view["state"] != "ok":
                raise UsageError(f"{reply_to} is not a readable post")
        else:
            view = entry_view(parent)
            if view.get("type") != "post":
                raise UsageError(f"{reply_to} is a {view.get('type')}, not a post")
        root = parse_ref(view["root"]) if "root" in view else parent_ref
        if public and root != parent_ref:
            root_entry = self.store.get(root.author, root.seq)
            if root_entry is not None and root_entry.envelope.payload_type == PayloadType.ENCRYPTED:
                raise UsageError(refused)
        return {"reply": ref_value(parent_ref), "root": ref_value(root)}

    def follow(self, identity: SigningIdentity, who: str) -> dict[str, Any]:
        return self._append(identity, PayloadType.FOLLOW, self.prepare_follow(identity.public_key, who).payload)

    def unfollow(self, identity: SigningIdentity, who: str) -> dict[str, Any]:
        return self._append(identity, PayloadType.UNFOLLOW, self.prepare_unfollow(identity.public_key, who))

    def prepare_follow(self, me: bytes, who: str) -> "FollowPlan":
        """Check a follow by id or contact code. Raises UsageError, InvalidIdError."""
        contact = parse_contact(who)
        if contact.public_key == me:
            raise UsageError("you cannot follow yourself")
        if contact.public_key in self.store.follows(me):
            raise UsageError(f"already following {contact.id}")
        return FollowPlan(contact, {"id": contact.public_key})

    def prepare_unfollow(self, me: bytes, who: str) -> dict[str, Any]:
        target = parse_contact(who).public_key
        if target not in self.store.follows(me):
            raise UsageError(f"not following {encode_id(target)}")
        return {"id": target}

    WRITE_VERBS = ("post", "boost", "unboost", "favourite", "unfavourite", "delete", "edit", "set_profile",
                   "block", "unblock", "follow", "unfollow", "accept_follower", "remove_follower")

    def plan(self, verb: str, identity: SigningIdentity, params: dict[str, Any]) -> list[social.Plan]:
        """The entries a write verb appends, in order, checked against the store. Raises
        UsageError. (Most verbs append one entry; private posts may first grant keys.)"""
        if verb == "post":
            visibility = params.get("visibility", "public")
            payload = self.prepare_post(params["text"], cw=params.get("cw"), reply_to=params.get("reply_to"),
                                        lang=params.get("lang"), visibility=visibility, media=params.get("media"),
                                        quote=params.get("quote"))
            if visibility == "followers":
                return self.private.plan_followers_post(identity, payload)
            if visibility == "direct":
                return self.private.plan_direct(identity, params.get("to") or [], payload)
            return [social.Plan(PayloadType.POST, payload)]
        if verb == "accept_follower":
            return self.private.plan_accept(identity, params["id"])
        if verb == "remove_follower":
            return self.private.plan_remove(identity, params["id"])
        return [self._plan_one(verb, identity.public_key, params)]

    def _plan_one(self, verb: str, me: bytes, params: dict[str, Any]) -> social.Plan:
        s = self.store
        if verb == "boost":
            return social.plan_boost(s, me, params["ref"])
        if verb == "unboost":
            return social.plan_undo(s, me, params["ref"], "boost")
        if verb == "favourite":
            return social.plan_favourite(s, me, params["ref"])
        if verb == "unfavourite":
            return social.plan_undo(s, me, params["ref"], "favourite")
        if verb == "delete":
            return social.plan_delete(s, me, params["ref"])
        if verb == "edit":
            payload = self.prepare_post(params["text"], cw=params.get("cw"))
            return social.plan_edit(s, me, params["ref"], payload)
        if verb == "set_profile":
            return social.plan_profile(s, me, name=params.get("name"), bio=params.get("bio"),
                                       relays=params.get("relays"), pinned=params.get("pinned"),
                                       avatar=params.get("avatar"))
        if verb in ("block", "unblock"):
            return social.plan_block(s, me, params["id"], block=verb == "block")
        if verb == "follow":
            return social.Plan(PayloadType.FOLLOW, self.prepare_follow(me, params["id"]).payload)
        if verb == "unfollow":
            return social.Plan(PayloadType.UNFOLLOW, self.prepare_unfollow(me, params["id"]))
        raise UsageError(f"unknown verb {verb}")

    def act(self, identity: SigningIdentity, verb: str, params: dict[str, Any]) -> dict[str, Any] | None:
        item = None
        for plan in self.plan(verb, identity, params):
            item = self._append(identity, plan.payload_type, plan.payload)
        self.private.absorb(identity, [self.store.get(identity.public_key, s) for s in self._recent(identity)])
        return item

    def _recent(self, identity: SigningIdentity, n: int = 8) -> list[int]:
        head = self.store.head(identity.public_key)
        return list(range(max(1, head.seq - n + 1), head.seq + 1)) if head else []

    @property
    def private(self) -> "Private":
        from .private import Private
        return Private(self.store, self._random)

    def views(self) -> social.Views:
        return social.Views(self.store, self._self_key())

    READ_VERBS = ("timeline", "thread", "history", "notifications", "profile", "search", "mute", "unmute",
                  "mutes", "list_add", "list_remove", "lists", "log", "following", "whoami", "verify",
                  "circle", "conversations")

    def read(self, verb: str, params: dict[str, Any]) -> Any:
        """Read verbs and local settings (which never need the key)."""
        s = self.store
        limit = params.get("limit", 20)
        if verb == "timeline":
            return self.feed_view(params.get("which", "home"), limit=limit, cursor=params.get("cursor"),
                                  tag=params.get("tag"), list_name=params.get("list"))
        if verb == "thread":
            return self.views().thread(params["ref"], limit=limit if "limit" in params else 50,
                                       cursor=params.get("cursor"))
        if verb == "history":
            return self.views().history(params["ref"])
        if verb == "notifications":
            return self.views().notifications(limit=limit, cursor=params.get("cursor"))
        if verb == "profile":
            return self.views().profile(params.get("id") or encode_id(self._self_key()))
        if verb == "search":
            return self.views().search(params["query"], limit=limit)
        if verb in ("mute", "unmute"):
            return social.mute(s, params["kind"], params["value"], on=verb == "mute")
        if verb == "mutes":
            return social.mutes(s)
        if verb in ("list_add", "list_remove"):
            return social.list_change(s, params["name"], params["id"], add=verb == "list_add")
        if verb == "lists":
            return social.lists(s)
        if verb == "circle":
            return [encode_id(k) for k in self.private.members()]
        if verb == "conversations":
            views = self.views()
            items = [s.get(a, q) for a, q in self.private.conversations(limit)]
            return {"items": views.items(i for i in items if i is not None), "next_cursor": None}
        if verb == "log":
            return self.log(params.get("author"), limit=limit)
        if verb == "following":
            return self.following()
        if verb == "whoami":
            return self.whoami()
        if verb == "verify":
            return self.verify()
        raise UsageError(f"unknown verb {verb}")

    def _append(self, identity: SigningIdentity, ptype: PayloadType, payload: dict[str, Any]) -> dict[str, Any]:
        entry = self.store.append_own(identity, ptype, payload, self._now_ms())
        stored = self.store.get(identity.public_key, entry.envelope.seq)
        assert stored is not None
        return social.Views(self.store, identity.public_key).item(stored)

    # -- reading ---------------------------------------------------------------------------

    def log(self, author: str | None = None, *, limit: int = 20, before_seq: int | None = None) -> list[dict[str, Any]]:
        key = decode_id(author) if author else self._self_key()
        to_seq = before_seq - 1 if before_seq else None
        views = self.views()
        return [views.item(s) for s in self.store.entries(key, to_seq=to_seq, newest_first=True, limit=limit)]

    def timeline(self, *, limit: int = 20, cursor: str | None = None) -> dict[str, Any]:
        if not 1 <= limit <= 500:
            raise UsageError("limit must be from 1 to 500")
        return self.feed_view("home", limit=limit, cursor=cursor)

    def feed_view(self, which: str, *, limit: int = 20, cursor: str | None = None, tag: str | None = None,
                  list_name: str | None = None) -> dict[str, Any]:
        """A timeline: home, federated, hashtag (with `tag`) or list (with `list_name`)."""
        if not 1 <= limit <= 500:
            raise UsageError("limit must be from 1 to 500")
        me = self._self_key()
        try:
            if which == "home":
                page = self.store.home_timeline(limit=limit, cursor=cursor)
            elif which == "federated":
                page = self.store.federated(limit=limit, cursor=cursor)
            elif which == "hashtag":
                if not tag or not isinstance(tag, str):
                    raise UsageError("which hashtag?")
                page = self.store.hashtag(normalize_tag(tag), limit=limit, cursor=cursor)
            elif which == "local":
                page = self.store.timeline(self.local_authors(me), limit=limit, cursor=cursor)
            elif which == "list":
                members = social.list_members(self.store, list_name or "")
                if not members:
                    raise UsageError(f"no list {list_name!r} (or it is empty)")
                page = self.store.timeline(members, limit=limit, cursor=cursor)
            else:
                raise UsageError(f"unknown timeline {which!r}")
        except ValueError as e:
            raise UsageError(str(e)) from None
        views = social.Views(self.store, me)
        return {"items": views.items(page.items), "next_cursor": page.next_cursor}

    def local_authors(self, me: bytes) -> list[bytes]:
        """Mastodon's "local": people near this node. Here: authors whose nodes were found on
        the LAN (mDNS), and authors whose profile names a relay this node's profile names too."""
        from .core.peer_ids import author_of_peer
        authors = {me}
        for peer_id, info in self.store.peers().items():
            author = author_of_peer(peer_id.decode(errors="replace"))
            if info.get("source") == "lan" and author is not None:
                authors.add(author)
        mine = self.store.profile(me)
        my_relays = set((mine.payload or {}).get("relays", [])) if mine is not None else set()
        if my_relays:
            for author in self.store.profile_authors():
                profile = self.store.profile(author)
                relays = (profile.payload or {}).get("relays", []) if profile is not None else []
                if isinstance(relays, list) and my_relays & {r for r in relays if isinstance(r, str)}:
                    authors.add(author)
        return sorted(authors)

    def following(self) -> list[str]:
        return [encode_id(k) for k in self.store.follows(self._self_key())]

    # -- archive and checks ----------------------------------------------------------------

    def export(self, path: str | Path) -> dict[str, Any]:
        report = export_archive(self.store, path)
        return {"file": str(path), "feeds": report.feeds, "entries": report.entries, "bytes": report.bytes}

    def import_(self, path: str | Path) -> dict[str, Any]:
        report = import_archive(self.store, path, self._now_ms())
        return {"file": str(path), "feeds": report.feeds, "entries": report.entries,
                "new": report.appended, "already_had": report.duplicates, "refused": report.refused,
                "forks": report.forks}

    def verify(self) -> dict[str, Any]:
        problems = self.store.verify()
        return {"entries": self.store.count_entries(), "feeds": len(self.store.feeds()), "problems": problems}

    # -- plumbing --------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The writable store while this node owns it; a read view after `hand_over_store`
        (typed Store for the verbs' sake: a write through a view is an AttributeError)."""
        if self._view is not None:
            return self._view  # type: ignore[return-value]
        if self._store is None:
            self._store = Store(self.home.store_dir, map_size=self.config.store_map_size_mb << 20)
        return self._store

    def hand_over_store(self) -> Store:
        """Give the writable store to the daemon's writer, its only holder from now on; this
        node keeps a read view. The writer closes the store."""
        store = self.store
        if self._view is not None:
            raise RuntimeError("the store was handed over already")
        self._store = None
        self._view = store.view()
        return store

    def writing_to(self, store: Store) -> "LocalNode":
        """This node over the writer's store, for one writer job (`writer.call(lambda store:
        node.writing_to(store).plan(...))`): its writing verbs write through `store`."""
        bound = copy.copy(self)
        bound._store, bound._view = store, None
        return bound

    def close(self) -> None:
        if self._store is not None:
            self._store.close()
            self._store = None

    def _key_bytes(self) -> bytes:
        if not self.home.key_file.exists():
            raise NotInitializedError(f"no identity in {self.home.data_dir}: run `murmurate init` first")
        return read_key_file(self.home.key_file)

    def _self_key(self) -> bytes:
        return decode_public_key(self._key_bytes())

    def _who(self, public_key: bytes, *, encrypted: bool) -> dict[str, Any]:
        return {"id": encode_id(public_key), "fingerprint": fingerprint(public_key),
                "home": str(self.home.data_dir), "key_encrypted": encrypted}
