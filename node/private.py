"""Followers-only and direct posts on the node (the scheme: docs/private-posts.md).

Author side: the circle (accepted followers) lives in this node's local settings; its key
per epoch is granted in type-11 entries; accepting a follower grants the current key,
removing one starts a new epoch granted to the rest. Posts are sealed under the current
epoch's key. Direct posts carry their own key, wrapped per recipient.

Reader side: `absorb` looks at stored type-11 entries with this node's identity: grants
give keys, posts open with them. Opened plaintexts are cached in the local settings so
views can show them without the key, and indexed as posts (replies, notifications:
Store.index_opened); the replicated log only ever holds ciphertext. A delete of an opened
post removes its plaintext and those indexes (`forget`). Keys and plaintexts in the local
settings are as private as the disk they are on.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable
from typing import Any

from murmurate.crypto import (CircleKey, PrivateBoxError, SigningIdentity, decode_id, encode_id,
                              generate_circle_key, make_grants, next_circle_key, open_direct,
                              open_followers_post, open_grant, seal_direct, seal_followers_post)
from murmurate.crypto.private import chunk_id, read_container
from murmurate.store import PayloadType, Store, StoredEntry, StoreView, canonical
from murmurate.store.payloads import target_seq

from .errors import UsageError
from .social import Plan

MEMBER = b"circle-member\x00"     # + follower id                  -> b""
KEY = b"circle-key\x00"           # + author id + epoch u32         -> 32-byte key
PLAIN = b"plain\x00"              # + author id + seq u64           -> kind byte + plaintext payload
CONVERSATION = b"conversation\x00"  # + timestamp u64 + author + seq u64 -> b""
INDEXED = b"plain-indexed"        # -> b"": every kept plaintext is in the store's indexes
_U32, _U64 = struct.Struct(">I"), struct.Struct(">Q")
KIND_FOLLOWERS, KIND_DIRECT = b"f", b"d"
DIRECT_CHUNK_LOOKBACK = 64  # how far back in the author's feed a direct body's chunks may be


class Private:
    """Over a StoreView it only reads (`plaintext`, `members`, ...); what writes local
    settings (planning, `absorb`) needs the writable Store: the daemon runs it as a job of
    its writer."""

    def __init__(self, store: Store | StoreView, random_bytes: Callable[[int], bytes]) -> None:
        self.store = store
        self.random = random_bytes

    def _put(self, key: bytes, value: bytes) -> None:
        self.store.local_put(key, value)  # type: ignore[union-attr]  # a StoreView cannot: see the class

    # -- the circle (author side) ------------------------------------------------------------

    def members(self) -> list[bytes]:
        return [k[len(MEMBER):] for k, _ in self.store.local_scan(MEMBER)]

    def current_key(self, author: bytes) -> CircleKey | None:
        keys = self.keys_of(author)
        if not keys:
            return None
        epoch = max(keys)
        return CircleKey(epoch, keys[epoch])

    def keys_of(self, author: bytes) -> dict[int, bytes]:
        return {_U32.unpack(k[len(KEY) + 32:])[0]: v for k, v in self.store.local_scan(KEY + author)}

    def plan_accept(self, identity: SigningIdentity, who: str) -> list[Plan]:
        follower = decode_id(who)
        if follower == identity.public_key:
            raise UsageError("you are always in your own circle")
        if follower in self.members():
            raise UsageError(f"{encode_id(follower)} is already an accepted follower")
        self._put(MEMBER + follower, b"")
        key = self.current_key(identity.public_key)
        if key is None:
            return self._new_epoch(identity, generate_circle_key(self.random(32), 1))
        return self._grants(identity, key, [follower])

    def plan_remove(self, identity: SigningIdentity, who: str) -> list[Plan]:
        follower = decode_id(who)
        if follower not in self.members():
            raise UsageError(f"{encode_id(follower)} is not an accepted follower")
        self.store.local_delete(MEMBER + follower)  # type: ignore[union-attr]
        current = self.current_key(identity.public_key)
        if current is None:
            return []
        # A new epoch, granted to the others only: the removed follower cannot read what follows.
        return self._new_epoch(identity, next_circle_key(current, self.random(32)))

    def _new_epoch(self, identity: SigningIdentity, key: CircleKey) -> list[Plan]:
        self._put(KEY + identity.public_key + _U32.pack(key.epoch), key.key)
        return self._grants(identity, key, self.members())

    def _grants(self, identity: SigningIdentity, key: CircleKey, followers: list[bytes]) -> list[Plan]:
        chunks = make_grants(identity, key, followers, self.random)
        return [Plan(PayloadType.ENCRYPTED, {"box": chunk}) for chunk in chunks]

    # -- sealing ------------------------------------------------------------------------------

    def plan_followers_post(self, identity: SigningIdentity, payload: dict[str, Any]) -> list[Plan]:
        plans: list[Plan] = []
        key = self.current_key(identity.public_key)
        if key is None:  # the first followers-only post starts the circle
            key = generate_circle_key(self.random(32), 1)
            plans += self._new_epoch(identity, key)
        box = seal_followers_post(identity.public_key, key, canonical.pack(payload), self.random(24))
        return plans + [Plan(PayloadType.ENCRYPTED, {"box": box})]

    def plan_direct(self, identity: SigningIdentity, recipients: Iterable[str], payload: dict[str, Any]) -> list[Plan]:
        keys = [decode_id(r) for r in recipients]
        if not keys:
            raise UsageError("a direct post needs at least one recipient (--to ID)")
        sealed = seal_direct(identity, keys, canonical.pack(payload), self.random)
        return ([Plan(PayloadType.ENCRYPTED, {"box": c}) for c in sealed.chunks]
                + [Plan(PayloadType.ENCRYPTED, {"box": sealed.body})])

    # -- opening (reader side) ------------------------------------------------------------------

    def absorb(self, identity: SigningIdentity, entries: Iterable[StoredEntry]) -> int:
        """Open what `identity` can open among `entries`; cache keys and plaintexts. A delete
        among them removes what this node opened of its target. Returns how many posts became
        readable."""
        opened = 0
        for stored in entries:
            env = stored.envelope
            if env.payload_type == PayloadType.DELETE and stored.payload is not None:
                target = target_seq(stored.payload)
                if target is not None and target < env.seq:
                    self.forget(identity, env.author, target)
                continue
            if env.payload_type != PayloadType.ENCRYPTED or stored.payload is None:
                continue
            box = stored.payload.get("box")
            if not isinstance(box, bytes):
                continue
            try:
                info = read_container(box)
                if info.kind == "grants":
                    key = open_grant(box, identity, env.author)
                    if key is not None and key.epoch not in self.keys_of(env.author):
                        self._put(KEY + env.author + _U32.pack(key.epoch), key.key)
                        opened += self._retry(identity, env.author)
                elif info.kind == "followers_post":
                    opened += self._open_followers(identity, env.author, env.seq, box)
                elif info.kind == "direct":
                    chunks = self._direct_chunks(env.author, env.seq, info.chunk_ids)
                    plain = open_direct(box, chunks, identity, env.author)
                    if plain is not None:
                        opened += self._keep(identity, env.author, env.seq, KIND_DIRECT, plain)
            except PrivateBoxError:
                continue  # hostile or damaged: shown as unreadable, never a crash
        return opened

    def absorb_all(self, identity: SigningIdentity) -> int:
        """Open everything this store holds that `identity` can (at daemon start), and forget
        what was opened of posts deleted since (a delete stored while the daemon was not
        there to hear of it). Only type-11 entries are read: the seq index knows every
        entry's type."""
        # Plaintexts kept before opened posts were indexed (replies, notifications) get their
        # indexes once; the mark says it is done.
        reindex = self.store.local_get(INDEXED) is None
        for author, seq in self.opened_refs():
            stored = self.store.get(author, seq)
            if stored is None or stored.dropped:
                self.forget(identity, author, seq)
            elif reindex:
                raw = self.store.local_get(PLAIN + author + _U64.pack(seq)) or b""
                payload = _payload(raw[1:])
                if payload is not None:
                    self.store.index_opened(author, seq, _indexed(payload, raw[:1], identity.public_key, author))
        if reindex:
            self._put(INDEXED, b"")
        return self.absorb(identity, self.store.of_type(PayloadType.ENCRYPTED))

    def opened_refs(self) -> list[tuple[bytes, int]]:
        """(author, seq) of every private post whose plaintext this node keeps."""
        return [(k[len(PLAIN):len(PLAIN) + 32], _U64.unpack(k[-8:])[0]) for k, _ in self.store.local_scan(PLAIN)]

    def forget(self, identity: SigningIdentity, author: bytes, seq: int) -> bool:
        """Remove the plaintext of a deleted private post and every index it is in (replies,
        notifications, conversations): the author took it back, so this node keeps only the
        envelope, as for a deleted public post. True if there was something to remove."""
        key = PLAIN + author + _U64.pack(seq)
        raw = self.store.local_get(key)
        if raw is None:
            return False
        # The plaintext last: until it is gone, a restart's sweep (absorb_all) finds the post
        # and removes the rest again.
        payload = _payload(raw[1:])
        if payload is not None:
            self.store.index_opened(author, seq, _indexed(payload, raw[:1], identity.public_key, author), remove=True)
        stored = self.store.get(author, seq)
        if raw[:1] == KIND_DIRECT and stored is not None:
            self.store.local_delete(CONVERSATION + _U64.pack(stored.envelope.timestamp_ms) + author + _U64.pack(seq))
        self.store.local_delete(key)
        return True

    def plaintext(self, author: bytes, seq: int) -> tuple[str, dict[str, Any]] | None:
        """(visibility, payload) of an opened private post, or None."""
        raw = self.store.local_get(PLAIN + author + _U64.pack(seq))
        if raw is None:
            return None
        payload = _payload(raw[1:])
        if payload is None:
            return None
        return ("direct" if raw[:1] == KIND_DIRECT else "followers"), payload

    def conversations(self, limit: int = 50) -> list[tuple[bytes, int]]:
        rows = self.store.local_scan(CONVERSATION)
        refs = [(k[len(CONVERSATION) + 8:len(CONVERSATION) + 40], _U64.unpack(k[-8:])[0]) for k, _ in rows]
        return list(reversed(refs))[:limit]

    def _open_followers(self, identity: SigningIdentity, author: bytes, seq: int, box: bytes) -> int:
        if self.store.local_get(PLAIN + author + _U64.pack(seq)) is not None:
            return 0
        plain = open_followers_post(box, self.keys_of(author), author)
        return self._keep(identity, author, seq, KIND_FOLLOWERS, plain) if plain is not None else 0

    def _keep(self, identity: SigningIdentity, author: bytes, seq: int, kind: bytes, plain: bytes) -> int:
        payload = _payload(plain)
        if payload is None:
            return 0
        # Read again here, on the writer: the entries given to absorb may have been read before
        # a delete of this one was stored, and a deleted post is never opened.
        stored = self.store.get(author, seq)
        if stored is None or stored.dropped:
            return 0
        # The plaintext last: once views show the post, its indexes are there; a crash before
        # it leaves indexes that the next opening writes again (the same keys).
        self.store.index_opened(author, seq, _indexed(payload, kind, identity.public_key, author))
        if kind == KIND_DIRECT:
            self._put(CONVERSATION + _U64.pack(stored.envelope.timestamp_ms) + author + _U64.pack(seq), b"")
        self._put(PLAIN + author + _U64.pack(seq), kind + plain)
        return 1

    def _retry(self, identity: SigningIdentity, author: bytes) -> int:
        """A new key arrived: open that author's followers-only posts that waited for it."""
        opened = 0
        for stored in self.store.entries(author):
            if stored.envelope.payload_type != PayloadType.ENCRYPTED or stored.payload is None:
                continue
            box = stored.payload.get("box")
            if isinstance(box, bytes):
                try:
                    if read_container(box).kind == "followers_post":
                        opened += self._open_followers(identity, author, stored.envelope.seq, box)
                except PrivateBoxError:
                    continue
        return opened

    def _direct_chunks(self, author: bytes, seq: int, ids: tuple[bytes, ...]) -> list[bytes]:
        if not ids:
            return []
        wanted, found = set(ids), {}
        for stored in self.store.entries(author, from_seq=max(1, seq - DIRECT_CHUNK_LOOKBACK), to_seq=seq - 1):
            box = (stored.payload or {}).get("box")
            if isinstance(box, bytes) and chunk_id(box) in wanted:
                found[chunk_id(box)] = box
        return [found[i] for i in ids if i in found]


def _payload(plain: bytes) -> dict[str, Any] | None:
    try:
        payload = canonical.unpack(plain)
    except canonical.CanonicalError:
        return None
    return payload if isinstance(payload, dict) else None


def _indexed(payload: dict[str, Any], kind: bytes, me: bytes, author: bytes) -> dict[str, Any]:
    """What the store indexes of an opened post: the post, and for a direct post addressed to
    us, a mention of us (a direct post notifies its recipients, as on Mastodon)."""
    if kind != KIND_DIRECT or author == me:
        return payload
    mentions = payload.get("mentions")
    return {**payload, "mentions": [me] + (mentions if isinstance(mentions, list) else [])}
