"""Private posts: followers-only circles with key rotation, and direct messages. Pure code.

Randomness comes from the caller (`random32`, `nonce`, or `random(n) -> n bytes` such as
os.urandom); nothing here reads a clock or the system's randomness. Every function
returns or takes *containers*: byte strings with a fixed binary layout that the store
layer puts into type-11 payloads (docs/private-posts.md has the layouts to the byte):

    grants chunk     1 | 1 | epoch u32 | nonce 24 | count u16 | wraps (56 each)
    followers post   1 | 2 | epoch u32 | nonce 24 | secretbox(post key, plaintext)
    direct body      1 | 3 | nonce 24 | chunk count u16 | chunk ids 32 each | count u16 | wraps | secretbox
    direct chunk     1 | 4 | nonce 24 | count u16 | wraps

A relay stores and forwards these bytes without being able to open any of them. Readers
raise PrivateBoxError on malformed or tampered bytes and return None when a container
simply is not for them.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import nacl.bindings
import nacl.exceptions

from .signing import SigningIdentity
from .wraps import (HINT_SIZE, KEY_SIZE, MAC_SIZE, NONCE_SIZE, PUBLIC_KEY_SIZE, WRAP_SIZE, PrivateBoxError,
                    find_wrap, seal_wraps, shared_secret, x25519_public, x25519_secret)

__all__ = [
    "PrivateBoxError", "CircleKey", "SealedDirect", "ContainerInfo",
    "KIND_GRANTS", "KIND_FOLLOWERS_POST", "KIND_DIRECT", "KIND_DIRECT_CHUNK",
    "MAX_CONTAINER_SIZE", "MAX_EPOCH", "GRANTS_PER_CHUNK", "WRAP_SIZE", "HINT_SIZE",
    "generate_circle_key", "next_circle_key", "make_grants", "open_grant",
    "seal_followers_post", "open_followers_post",
    "seal_direct", "open_direct", "chunk_id", "read_container",
]

VERSION = 1
KIND_GRANTS = 1
KIND_FOLLOWERS_POST = 2
KIND_DIRECT = 3
KIND_DIRECT_CHUNK = 4
_KIND_NAMES = {KIND_GRANTS: "grants", KIND_FOLLOWERS_POST: "followers_post",
               KIND_DIRECT: "direct", KIND_DIRECT_CHUNK: "direct_chunk"}

# A type-11 payload may hold 65,536 bytes; the container stays at or under 64,000 so the
# store layer's msgpack map around it (keys, a bin16 header, a few small fields) fits in
# the remaining 1,536 bytes. Readers refuse anything larger.
MAX_CONTAINER_SIZE = 64_000
MAX_EPOCH = 2**32 - 1
ID_SIZE = 32  # a direct chunk's id: BLAKE2b-256 of its bytes

_GRANTS_HEAD = struct.Struct(">BBI24sH")      # version, kind, epoch, nonce, count: 32 bytes
_POST_HEAD = struct.Struct(">BBI24s")         # version, kind, epoch, nonce: 30 bytes
_DIRECT_HEAD = struct.Struct(">BB24sH")       # version, kind, nonce, chunk count: 28 bytes
_CHUNK_HEAD = struct.Struct(">BB24sH")        # version, kind, nonce, count: 28 bytes
_COUNT = struct.Struct(">H")

GRANTS_PER_CHUNK = (MAX_CONTAINER_SIZE - _GRANTS_HEAD.size) // WRAP_SIZE  # 1142
_WRAPS_PER_DIRECT_CHUNK = (MAX_CONTAINER_SIZE - _CHUNK_HEAD.size) // WRAP_SIZE  # 1142
_MAX_COUNT = 0xFFFF

_POST_DOMAIN = b"murmurate-circle-post-v1:"
_DIRECT_DOMAIN = b"murmurate-direct-v1:"


@dataclass(frozen=True)
class CircleKey:
    """The author's symmetric key for one epoch of their followers-only circle."""

    epoch: int
    key: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if not isinstance(self.epoch, int) or isinstance(self.epoch, bool) or not 0 <= self.epoch <= MAX_EPOCH:
            raise ValueError(f"an epoch is an integer from 0 to {MAX_EPOCH}")
        if not isinstance(self.key, bytes) or len(self.key) != KEY_SIZE:
            raise ValueError(f"a circle key has {KEY_SIZE} bytes")


class SealedDirect(NamedTuple):
    """A direct message: the body entry and the extra wrap chunks it names (often none)."""

    body: bytes
    chunks: tuple[bytes, ...]


@dataclass(frozen=True)
class ContainerInfo:
    """What anyone, a relay included, can read from a container without a key."""

    kind: str                  # "grants", "followers_post", "direct", "direct_chunk"
    epoch: int | None          # grants and followers posts
    wrap_count: int            # recipients in this container (0 for a followers post)
    chunk_ids: tuple[bytes, ...]  # a direct body's extra chunks, in order
    size: int


# -- followers-only circle ---------------------------------------------------------------

def generate_circle_key(random32: bytes, epoch: int = 1) -> CircleKey:
    """A new circle key for `epoch` from 32 random bytes."""
    return CircleKey(epoch, _need(random32, KEY_SIZE, "random32"))


def next_circle_key(current: CircleKey, random32: bytes) -> CircleKey:
    """The key of the next epoch, used after removing a follower. The old key is not
    derived into the new one: a removed follower who kept epoch n learns nothing of n+1."""
    if current.epoch >= MAX_EPOCH:
        raise ValueError("no epochs left")
    return CircleKey(current.epoch + 1, _need(random32, KEY_SIZE, "random32"))


def make_grants(author: SigningIdentity, circle_key: CircleKey, followers: Iterable[bytes],
                random: Callable[[int], bytes], *, max_chunk_size: int = MAX_CONTAINER_SIZE) -> list[bytes]:
    """Give `circle_key` to each follower (and to the author) as grant chunks.

    The author always gets a grant first, so the author's other devices, or the author
    after restoring the seed, recover their circle keys from their own feed. Repeated keys
    are granted once. Each chunk takes `random(24)` for its nonce, in chunk order, and
    holds up to GRANTS_PER_CHUNK grants (fewer with a smaller `max_chunk_size`).

    Raises ValueError for a follower key that is not an Ed25519 public key.
    """
    people = _unique([author.public_key, *followers])
    per_chunk = _per_container(max_chunk_size, _GRANTS_HEAD.size)
    secret = x25519_secret(author)
    chunks = []
    for start in range(0, len(people), per_chunk):
        group = people[start:start + per_chunk]
        nonce = _need(random(NONCE_SIZE), NONCE_SIZE, "random(24)")
        head = _GRANTS_HEAD.pack(VERSION, KIND_GRANTS, circle_key.epoch, nonce, len(group))
        chunks.append(head + seal_wraps(author, secret, group, head, nonce, circle_key.key))
    return chunks


def open_grant(chunk: bytes, me: SigningIdentity, author: bytes) -> CircleKey | None:
    """Return the circle key `author` granted to `me` in this chunk, or None if none is mine.

    Raises PrivateBoxError if the chunk is malformed or `author` is not a usable key.
    """
    data = _bytes(chunk)
    _, _, epoch, nonce, count = _unpack_head(data, _GRANTS_HEAD, KIND_GRANTS)
    if len(data) != _GRANTS_HEAD.size + count * WRAP_SIZE:
        raise PrivateBoxError(f"a grants chunk with {count} grants has {_GRANTS_HEAD.size + count * WRAP_SIZE} "
                              f"bytes, not {len(data)}")
    shared = _shared_with(me, author)
    key = find_wrap(data[_GRANTS_HEAD.size:], shared, author, me.public_key, data[:_GRANTS_HEAD.size], nonce)
    return None if key is None else CircleKey(epoch, key)


def seal_followers_post(author: bytes, circle_key: CircleKey, plaintext: bytes, nonce: bytes) -> bytes:
    """Encrypt a followers-only post under the circle key of its epoch.

    The box key mixes in the author's public key and the epoch, so the ciphertext opens
    only as this author's post of this epoch.
    """
    _need(author, PUBLIC_KEY_SIZE, "author")
    head = _POST_HEAD.pack(VERSION, KIND_FOLLOWERS_POST, circle_key.epoch, _need(nonce, NONCE_SIZE, "nonce"))
    if len(head) + MAC_SIZE + len(plaintext) > MAX_CONTAINER_SIZE:
        raise ValueError(f"a followers-only post holds at most {MAX_CONTAINER_SIZE - len(head) - MAC_SIZE} bytes")
    key = _post_key(circle_key.key, author, circle_key.epoch)
    return head + nacl.bindings.crypto_secretbox(bytes(plaintext), nonce, key)


def open_followers_post(body: bytes, keys: Mapping[int, bytes], author: bytes) -> bytes | None:
    """Return the plaintext, or None when `keys` (epoch -> circle key) lacks the post's epoch.

    Raises PrivateBoxError if the bytes are malformed or do not open under the epoch's key
    (tampered, or a key that is not really this author's for that epoch).
    """
    data = _bytes(body)
    _, _, epoch, nonce = _unpack_head(data, _POST_HEAD, KIND_FOLLOWERS_POST)
    if len(data) < _POST_HEAD.size + MAC_SIZE:
        raise PrivateBoxError("followers-only post cut short")
    circle_key = keys.get(epoch)
    if circle_key is None:
        return None
    if not isinstance(author, bytes) or len(author) != PUBLIC_KEY_SIZE or len(circle_key) != KEY_SIZE:
        raise PrivateBoxError("author and circle key must have 32 bytes")
    return _open_box(data[_POST_HEAD.size:], nonce, _post_key(circle_key, author, epoch), "followers-only post")


# -- direct messages ---------------------------------------------------------------------

def seal_direct(author: SigningIdentity, recipients: Iterable[bytes], plaintext: bytes,
                random: Callable[[int], bytes], *, max_size: int = MAX_CONTAINER_SIZE) -> SealedDirect:
    """Encrypt a direct message to `recipients` (the author is always added, first).

    Randomness is taken in this order: random(32) for the message key, random(24) for each
    extra chunk's nonce in chunk order, then random(24) for the body's nonce. Wraps fill
    the body first; the rest spill into extra chunks of up to 1,142 wraps each, named by
    id in the body. No fixed cap on recipients: the body's chunk count bounds it at about
    (64,000 / 32) x 1,142, over two million.

    Raises ValueError for an unusable recipient key or a plaintext too large to fit.
    """
    people = _unique([author.public_key, *recipients])
    message_key = _need(random(KEY_SIZE), KEY_SIZE, "random(32)")
    fixed = _DIRECT_HEAD.size + _COUNT.size + MAC_SIZE + len(plaintext)
    per_chunk = _per_container(max_size, _CHUNK_HEAD.size)
    spill = 0
    while True:
        room = (max_size - fixed - spill * ID_SIZE) // WRAP_SIZE
        if room < 1:
            raise ValueError("plaintext too large (or too many recipients) for a direct message body")
        if room + spill * per_chunk >= len(people):
            break
        spill += 1
    in_body = min(room, len(people))
    secret = x25519_secret(author)
    chunks = []
    for start in range(in_body, len(people), per_chunk):
        group = people[start:start + per_chunk]
        nonce = _need(random(NONCE_SIZE), NONCE_SIZE, "random(24)")
        head = _CHUNK_HEAD.pack(VERSION, KIND_DIRECT_CHUNK, nonce, len(group))
        chunks.append(head + seal_wraps(author, secret, group, head, nonce, message_key))
    nonce = _need(random(NONCE_SIZE), NONCE_SIZE, "random(24)")
    head = (_DIRECT_HEAD.pack(VERSION, KIND_DIRECT, nonce, len(chunks)) + b"".join(chunk_id(c) for c in chunks)
            + _COUNT.pack(in_body))
    wraps = seal_wraps(author, secret, people[:in_body], head, nonce, message_key)
    box = nacl.bindings.crypto_secretbox(bytes(plaintext), nonce, _direct_key(message_key, author.public_key))
    return SealedDirect(head + wraps + box, tuple(chunks))


def open_direct(body: bytes, chunks: Iterable[bytes], me: SigningIdentity, author: bytes) -> bytes | None:
    """Return the plaintext of a direct message for `me`, or None if no wrap is for me.

    `chunks` are candidate extra chunks in any order: those the body names (by chunk_id)
    are read, any other is ignored. A wrap for `me` may sit in a chunk the caller has not
    fetched yet, so None means "not for me in what was given"; read_container(body)
    lists the chunk ids to fetch.

    Raises PrivateBoxError for a malformed body or named chunk, an unusable author key, or
    a box that does not open under the unwrapped key.
    """
    data = _bytes(body)
    info, head_size, count, nonce = _parse_direct(data)
    shared = _shared_with(me, author)
    wraps_end = head_size + count * WRAP_SIZE
    key = find_wrap(data[head_size:wraps_end], shared, author, me.public_key, data[:head_size], nonce)
    if key is None and info.chunk_ids:
        given = {chunk_id(c): c for c in map(_bytes, chunks)}
        for wanted in info.chunk_ids:
            chunk = given.get(wanted)
            if chunk is not None:
                key = _find_in_chunk(chunk, shared, author, me.public_key)
                if key is not None:
                    break
    if key is None:
        return None
    return _open_box(data[wraps_end:], nonce, _direct_key(key, author), "direct message")


def chunk_id(chunk: bytes) -> bytes:
    """The id a direct body uses to name an extra chunk: BLAKE2b-256 of its bytes."""
    return hashlib.blake2b(_bytes(chunk), digest_size=ID_SIZE).digest()


def read_container(data: bytes) -> ContainerInfo:
    """Parse a container's clear parts (what a relay sees). Raises PrivateBoxError."""
    data = _bytes(data)
    kind = data[1] if len(data) >= 2 else None
    if kind == KIND_GRANTS:
        _, _, epoch, _, count = _unpack_head(data, _GRANTS_HEAD, KIND_GRANTS)
        if len(data) != _GRANTS_HEAD.size + count * WRAP_SIZE:
            raise PrivateBoxError("grants chunk length does not match its count")
        return ContainerInfo("grants", epoch, count, (), len(data))
    if kind == KIND_FOLLOWERS_POST:
        _, _, epoch, _ = _unpack_head(data, _POST_HEAD, KIND_FOLLOWERS_POST)
        if len(data) < _POST_HEAD.size + MAC_SIZE:
            raise PrivateBoxError("followers-only post cut short")
        return ContainerInfo("followers_post", epoch, 0, (), len(data))
    if kind == KIND_DIRECT_CHUNK:
        count = _check_chunk(data)
        return ContainerInfo("direct_chunk", None, count, (), len(data))
    if kind == KIND_DIRECT:
        return _parse_direct(data)[0]
    _unpack_head(data, _POST_HEAD, -1)  # raises with the right message (short, version or kind)
    raise AssertionError("unreachable")


# -- internals ---------------------------------------------------------------------------

def _parse_direct(data: bytes) -> tuple[ContainerInfo, int, int, bytes]:
    _, _, nonce, n_chunks = _unpack_head(data, _DIRECT_HEAD, KIND_DIRECT)
    count_at = _DIRECT_HEAD.size + n_chunks * ID_SIZE
    if len(data) < count_at + _COUNT.size:
        raise PrivateBoxError(f"direct body names {n_chunks} chunks but is cut short")
    ids = tuple(data[_DIRECT_HEAD.size + i * ID_SIZE:_DIRECT_HEAD.size + (i + 1) * ID_SIZE] for i in range(n_chunks))
    (count,) = _COUNT.unpack_from(data, count_at)
    head_size = count_at + _COUNT.size
    if len(data) < head_size + count * WRAP_SIZE + MAC_SIZE:
        raise PrivateBoxError(f"direct body with {count} wraps is cut short")
    return ContainerInfo("direct", None, count, ids, len(data)), head_size, count, nonce


def _check_chunk(data: bytes) -> int:
    _, _, _, count = _unpack_head(data, _CHUNK_HEAD, KIND_DIRECT_CHUNK)
    if len(data) != _CHUNK_HEAD.size + count * WRAP_SIZE:
        raise PrivateBoxError("direct chunk length does not match its count")
    return count


def _find_in_chunk(chunk: bytes, shared: bytes, author: bytes, me: bytes) -> bytes | None:
    _check_chunk(chunk)
    nonce = chunk[2:2 + NONCE_SIZE]
    return find_wrap(chunk[_CHUNK_HEAD.size:], shared, author, me, chunk[:_CHUNK_HEAD.size], nonce)


def _unpack_head(data: bytes, layout: struct.Struct, kind: int) -> tuple:
    if len(data) > MAX_CONTAINER_SIZE:
        raise PrivateBoxError(f"container of {len(data)} bytes; the limit is {MAX_CONTAINER_SIZE}")
    if len(data) < 2:
        raise PrivateBoxError("container cut short")
    if data[0] != VERSION:
        raise PrivateBoxError(f"private container version {data[0]}; this node reads {VERSION}")
    if data[1] != kind:
        expected = _KIND_NAMES.get(kind, "a known kind")
        raise PrivateBoxError(f"container kind {data[1]}, expected {expected}")
    if len(data) < layout.size:
        raise PrivateBoxError(f"{_KIND_NAMES[kind]} container cut short")
    return layout.unpack_from(data)


def _shared_with(me: SigningIdentity, author: bytes) -> bytes:
    author_x = x25519_public(author) if isinstance(author, bytes) else None
    shared = shared_secret(x25519_secret(me), author_x) if author_x is not None else None
    if shared is None:
        raise PrivateBoxError("the author key is not a usable Ed25519 public key")
    return shared


def _open_box(box: bytes, nonce: bytes, key: bytes, what: str) -> bytes:
    if len(box) < MAC_SIZE:
        raise PrivateBoxError(f"{what} cut short")
    try:
        return nacl.bindings.crypto_secretbox_open(box, nonce, key)
    except nacl.exceptions.CryptoError:
        raise PrivateBoxError(f"{what} does not open: tampered, or not this author's key") from None


def _post_key(circle_key: bytes, author: bytes, epoch: int) -> bytes:
    return hashlib.blake2b(_POST_DOMAIN + author + struct.pack(">I", epoch), key=circle_key, digest_size=32).digest()


def _direct_key(message_key: bytes, author: bytes) -> bytes:
    return hashlib.blake2b(_DIRECT_DOMAIN + author, key=message_key, digest_size=32).digest()


def _per_container(max_size: int, head_size: int) -> int:
    if not head_size + WRAP_SIZE <= max_size <= MAX_CONTAINER_SIZE:
        raise ValueError(f"container size must be {head_size + WRAP_SIZE}..{MAX_CONTAINER_SIZE}")
    return min((max_size - head_size) // WRAP_SIZE, _MAX_COUNT)


def _unique(keys: Sequence[bytes]) -> list[bytes]:
    seen: dict[bytes, None] = {}
    for key in keys:
        seen.setdefault(bytes(key), None)
    return list(seen)


def _need(value: bytes, size: int, name: str) -> bytes:
    if not isinstance(value, (bytes, bytearray)) or len(value) != size:
        raise ValueError(f"{name} must be {size} bytes")
    return bytes(value)


def _bytes(data: object) -> bytes:
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise PrivateBoxError("private-post containers are bytes")
    return bytes(data)
