"""What a relay admits, hosts and refuses. Pure decisions over the store's local settings.

Nothing here reads the clock or a random source: `now_ms` and tokens are passed in. The
functions that write (`create_invite`, `admit`, `account`) take the Store and must run on
the node's one writer (`StoreWriter.call`).

Local-setting keys (never replicated):

    relay/invite/<BLAKE2b-256(token)>  -> [created_ms, expires_ms]   an open invite
    relay/used/<BLAKE2b-256(token)>    -> [when_ms, user key, why]   a spent or expired one
    relay/user/<user key>              -> [since_ms, via]            an admitted user
    usage/feed/<author key>            -> [counted up to seq, bytes] a feed as stored (node/feed_usage.py)
    relay/blobs/<user key>             -> [count, bytes]             media the relay holds for them
    relay/blob/<user key><blob hash>   -> size                       one counted blob of theirs
    relay/want/<user key><blob hash>   -> size                       one to fetch when a peer has it
    relay/scanned/<user key>           -> seq                        their feed looked at for media up to

Only a hash of each token is kept, so a copy of the store lets no one join.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from murmurate.crypto import encode_id
from murmurate.store import Entry, canonical, entry_frame_size

from ..core.caps import Usage
from ..feed_usage import USAGE, account
from . import protocol as p
from .config import Quota, RelayConfig

INVITE = b"relay/invite/"
USED = b"relay/used/"
USER = b"relay/user/"
BLOB_USAGE = b"relay/blobs/"
BLOB = b"relay/blob/"
WANT = b"relay/want/"
SCANNED = b"relay/scanned/"


class Settings(Protocol):
    def local_get(self, key: bytes) -> bytes | None: ...
    def local_put(self, key: bytes, value: bytes = b"") -> None: ...
    def local_delete(self, key: bytes) -> bool: ...
    def local_scan(self, prefix: bytes) -> list[tuple[bytes, bytes]]: ...


@dataclass(frozen=True)
class Invite:
    token: bytes
    expires_ms: int


@dataclass(frozen=True)
class Admitted:
    user: bytes
    new: bool   # False: the user was already admitted (a second join changes nothing)
    via: str    # "invite" or "allowlist"


@dataclass(frozen=True)
class BlobUsage:
    count: int = 0
    bytes: int = 0


def token_hash(token: bytes) -> bytes:
    return hashlib.blake2b(token, digest_size=32).digest()


# -- invites and admission -----------------------------------------------------------------

def create_invite(settings: Settings, token: bytes, now_ms: int, ttl_s: int) -> Invite:
    """Record a single-use invite. `token` is 16 random bytes from the caller."""
    if len(token) != p.TOKEN_SIZE:
        raise ValueError(f"an invite token has {p.TOKEN_SIZE} bytes")
    sweep_expired(settings, now_ms)
    expires = now_ms + ttl_s * 1000
    settings.local_put(INVITE + token_hash(token), canonical.pack([now_ms, expires]))
    return Invite(token, expires)


def sweep_expired(settings: Settings, now_ms: int) -> int:
    """Turn expired invites into "expired" records (so using one says so). Returns how many."""
    swept = 0
    for key, value in settings.local_scan(INVITE):
        _created, expires = canonical.unpack(value)
        if expires <= now_ms:
            digest = key[len(INVITE):]
            settings.local_delete(key)
            settings.local_put(USED + digest, canonical.pack([expires, b"", "expired"]))
            swept += 1
    return swept


def open_invites(settings: Settings, now_ms: int) -> list[int]:
    """Expiry times of the invites that can still be used."""
    return sorted(e for _, v in settings.local_scan(INVITE) if (e := canonical.unpack(v)[1]) > now_ms)


def admit(settings: Settings, config: RelayConfig, user: bytes, token: bytes, now_ms: int) -> Admitted | p.Refused:
    """Decide a join by `user` with `token` (empty: no code). Spends the invite on success."""
    if user in config.blocked:
        return p.Refused(p.BLOCKED, "this relay's operator has blocked you")
    if settings.local_get(USER + user) is not None:
        return Admitted(user, False, _via(settings, user))
    if user in config.allow:
        if count_users(settings) >= config.max_users:
            return p.Refused(p.FULL, f"this relay hosts its maximum of {config.max_users} users")
        settings.local_put(USER + user, canonical.pack([now_ms, "allowlist"]))
        return Admitted(user, True, "allowlist")
    if not token:
        return p.Refused(p.NOT_ADMITTED, "you are not admitted to this relay: ask its operator for an invite code")
    digest = token_hash(token)
    raw = settings.local_get(INVITE + digest)
    if raw is None:
        used = settings.local_get(USED + digest)
        if used is None:
            return p.Refused(p.UNKNOWN_CODE, "this relay never issued that invite code")
        when, _by, why = canonical.unpack(used)
        if why == "expired":
            return p.Refused(p.EXPIRED_CODE, "that invite code has expired: ask the relay's operator for a new one")
        return p.Refused(p.USED_CODE, "that invite code was already used (each code admits one user once)")
    _created, expires = canonical.unpack(raw)
    if expires <= now_ms:
        settings.local_delete(INVITE + digest)
        settings.local_put(USED + digest, canonical.pack([expires, b"", "expired"]))
        return p.Refused(p.EXPIRED_CODE, "that invite code has expired: ask the relay's operator for a new one")
    if count_users(settings) >= config.max_users:
        return p.Refused(p.FULL, f"this relay hosts its maximum of {config.max_users} users")
    settings.local_delete(INVITE + digest)
    settings.local_put(USED + digest, canonical.pack([now_ms, user, "used"]))
    settings.local_put(USER + user, canonical.pack([now_ms, "invite"]))
    return Admitted(user, True, "invite")


def _via(settings: Settings, user: bytes) -> str:
    raw = settings.local_get(USER + user)
    return canonical.unpack(raw)[1] if raw is not None else ""


def users(settings: Settings) -> dict[bytes, tuple[int, str]]:
    """Admitted users: key -> (since_ms, via)."""
    return {k[len(USER):]: tuple(canonical.unpack(v)) for k, v in settings.local_scan(USER)}  # type: ignore[misc]


def count_users(settings: Settings) -> int:
    return len(settings.local_scan(USER))


def is_admitted(settings: Settings, config: RelayConfig, user: bytes) -> bool:
    return user not in config.blocked and (user in config.allow or settings.local_get(USER + user) is not None)


# -- what to host --------------------------------------------------------------------------

def hosted_feeds(users_: Sequence[bytes], follows: dict[bytes, list[bytes]], config: RelayConfig,
                 over_quota: Iterable[bytes] = ()) -> list[bytes]:
    """The feeds to fetch: each user's own (unless over quota), then up to quota.max_follows
    of the feeds each user under quota follows, in the order given; never a blocked one, at
    most max_feeds. (A feed followed by users over quota and under it is still fetched: the
    users under quota carry it, `sharers`.)"""
    blocked, full = set(config.blocked), set(over_quota)
    out: dict[bytes, None] = {}
    for user in users_:
        if user not in blocked and user not in full:
            out[user] = None
    for user in users_:
        if user in blocked or user in full:
            continue
        for author in follows.get(user, [])[:config.quota.max_follows]:
            if author not in blocked and author not in full:
                out[author] = None
    return list(out)[:config.max_feeds]


def sharers(users_: Sequence[bytes], follows: dict[bytes, list[bytes]], config: RelayConfig) -> dict[bytes, tuple[bytes, ...]]:
    """Who pays for each followed feed: the users that follow it (within quota.max_follows),
    over quota or not. A user's own feed is theirs alone, so it is not listed here even when
    other users follow it."""
    own, blocked = set(users_), set(config.blocked)
    out: dict[bytes, list[bytes]] = {}
    for user in users_:
        if user in blocked:
            continue
        for author in follows.get(user, [])[:config.quota.max_follows]:
            if author not in own and author not in blocked and author != user:
                out.setdefault(author, []).append(user)
    return {author: tuple(users) for author, users in out.items()}


def share(usage: Usage, payers: int) -> Usage:
    """One payer's part of a feed's size: split evenly, rounded up (the parts never add up
    to less than the feed)."""
    return Usage(-(-usage.entries // payers), -(-usage.bytes // payers))


def charges(users_: Iterable[bytes], feeds: dict[bytes, Usage],
            sharers_: dict[bytes, tuple[bytes, ...]]) -> dict[bytes, Usage]:
    """What each user's quota counts: their own feed plus their share of each feed they follow
    that the relay holds (`feeds`: stored size per author)."""
    out = {user: feeds.get(user, Usage()) for user in users_}
    for author, payers in sharers_.items():
        part = share(feeds.get(author, Usage()), len(payers))
        for user in payers:
            if user in out:
                now = out[user]
                out[user] = Usage(now.entries + part.entries, now.bytes + part.bytes)
    return out


# -- quotas --------------------------------------------------------------------------------

def quota_refusal(usage: Usage, quota: Quota, cut: bool = False) -> str:
    """Why a user's feed (and the feeds they follow) take no more entries ("" if they do).
    `cut`: the relay refused an entry that did not fit, though the counts are not at the
    limits yet."""
    if usage.entries >= quota.max_entries:
        return f"over quota: {usage.entries} of {quota.max_entries} entries stored; later entries are refused"
    if usage.bytes >= quota.max_bytes:
        return f"over quota: {usage.bytes} of {quota.max_bytes} bytes stored; later entries are refused"
    if cut:
        return (f"over quota: {usage.entries} of {quota.max_entries} entries and {usage.bytes} of {quota.max_bytes} "
                "bytes stored (your feed and your share of the feeds you follow) and the next entry does not fit; "
                "later entries are refused")
    return ""


def cut_refusal(usage: Usage, quota: Quota) -> str:
    """Why a user's entries were cut, from their usage once the entries that fit are stored.
    The same words as quota_refusal when the quota is full, so the relay says one thing
    whether it notices on the cut or on the recount after the commit (which comes first
    depends on how the entries arrived)."""
    return quota_refusal(usage, quota) or (f"over quota: the next entry does not fit in the "
                                           f"{quota.max_bytes - usage.bytes} bytes left; later entries are refused")


def trim(entries: Sequence[Entry], usage: dict[bytes, Usage], quota: Quota, users_: set[bytes],
         sharers_: dict[bytes, tuple[bytes, ...]] | None = None,
         charged: dict[bytes, Usage] | None = None) -> tuple[list[Entry], dict[bytes, Usage], set[bytes]]:
    """Keep the entries that fit the quotas of the users who pay for them (authors no user
    pays for pass untouched).

    `usage`: `account`'s count of each paid-for feed in the batch (entries = the feed's
    contiguous head), so entries at or below it are duplicates and pass uncounted. A user's
    own feed is paid by that user; a followed feed by its `sharers_`, each a share
    (`share`); `charged`: each payer's total so far (default: their own feed). A followed
    feed's entry is kept while one of its payers has room. Returns (kept, feed usage after
    the kept ones, authors whose entries were cut).
    """
    sharers_ = sharers_ or {}
    kept: list[Entry] = []
    after = dict(usage)
    charge = dict(charged) if charged is not None else {u: usage.get(u, Usage()) for u in users_}
    cut: set[bytes] = set()
    for item in entries:
        author = item.envelope.author
        payers = (author,) if author in users_ else sharers_.get(author, ())
        if not payers:
            kept.append(item)
            continue
        now = after.get(author, Usage())
        if item.envelope.seq <= now.entries and author not in cut:
            kept.append(item)  # already stored (a duplicate, or a fork the store will refuse): costs nothing
            continue
        if author in cut:
            continue  # a feed is a chain: nothing after the first refused entry fits either
        grown = Usage(now.entries + 1, now.bytes + entry_frame_size(item))
        old, new = share(now, len(payers)), share(grown, len(payers))
        delta = Usage(new.entries - old.entries, new.bytes - old.bytes)
        if not any(_fits(charge.get(p, Usage()), delta, quota) for p in payers):
            cut.add(author)
            continue
        for p in payers:
            was = charge.get(p, Usage())
            charge[p] = Usage(was.entries + delta.entries, was.bytes + delta.bytes)
        after[author] = grown
        kept.append(item)
    return kept, after, cut


def _fits(charge: Usage, delta: Usage, quota: Quota) -> bool:
    return charge.entries + delta.entries <= quota.max_entries and charge.bytes + delta.bytes <= quota.max_bytes


# -- media blobs ---------------------------------------------------------------------------

def blob_usage(settings: Settings, user: bytes) -> BlobUsage:
    raw = settings.local_get(BLOB_USAGE + user)
    return BlobUsage(*canonical.unpack(raw)) if raw is not None else BlobUsage()


def blob_refusal(usage: BlobUsage, quota: Quota, size: int) -> str:
    """Why a blob of `size` bytes does not fit the user's media quota ("" if it does)."""
    if usage.count + 1 > quota.max_blobs:
        return f"over the media quota: {usage.count} of {quota.max_blobs} files held"
    if usage.bytes + size > quota.max_blob_bytes:
        return f"over the media quota: {usage.bytes} of {quota.max_blob_bytes} bytes held, a file of {size} does not fit"
    return ""


def want_blob(settings: Settings, user: bytes, blob: bytes, size: int) -> bool:
    """Note a blob of the user's to fetch, unless it is counted for them already. True if new."""
    if settings.local_get(BLOB + user + blob) is not None or settings.local_get(WANT + user + blob) is not None:
        return False
    settings.local_put(WANT + user + blob, canonical.pack(size))
    return True


def wanted_blobs(settings: Settings) -> list[tuple[bytes, bytes]]:
    """(user, blob) of every blob waiting to be fetched."""
    return [(key[len(WANT):len(WANT) + 32], key[len(WANT) + 32:]) for key, _ in settings.local_scan(WANT)]


def wanted_size(settings: Settings, user: bytes, blob: bytes) -> int:
    """The size the user's entry declared for a wanted blob (0 if it is not wanted)."""
    raw = settings.local_get(WANT + user + blob)
    return canonical.unpack(raw) if raw is not None else 0


def scanned_to(settings: Settings, user: bytes) -> int:
    raw = settings.local_get(SCANNED + user)
    return canonical.unpack(raw) if raw is not None else 0


def set_scanned_to(settings: Settings, user: bytes, seq: int) -> None:
    settings.local_put(SCANNED + user, canonical.pack(seq))


def count_blob(settings: Settings, user: bytes, blob: bytes, size: int) -> BlobUsage:
    """The blob is held now: count it against the user (once) and stop wanting it."""
    settings.local_delete(WANT + user + blob)
    usage = blob_usage(settings, user)
    if settings.local_get(BLOB + user + blob) is None:
        settings.local_put(BLOB + user + blob, canonical.pack(size))
        usage = BlobUsage(usage.count + 1, usage.bytes + size)
        settings.local_put(BLOB_USAGE + user, canonical.pack([usage.count, usage.bytes]))
    return usage


def drop_want(settings: Settings, user: bytes, blob: bytes) -> None:
    settings.local_delete(WANT + user + blob)


def user_view(user: bytes, usage: Usage, config: RelayConfig, hosted_follows: int, via: str,
              blobs: BlobUsage = BlobUsage(), cut: bool = False) -> dict:
    """What the relay tells a user about their account (the `ok` answer's map). `usage` is
    what their quota counts: their feed and their share of the feeds they follow."""
    return {"id": encode_id(user), "via": via, "entries": usage.entries, "bytes": usage.bytes,
            "max_entries": config.quota.max_entries, "max_bytes": config.quota.max_bytes,
            "max_follows": config.quota.max_follows, "hosted_follows": hosted_follows,
            "blobs": blobs.count, "blob_bytes": blobs.bytes, "max_blobs": config.quota.max_blobs,
            "max_blob_bytes": config.quota.max_blob_bytes,
            "refusing": quota_refusal(usage, config.quota, cut)}
