"""Key wraps: a 32-byte key boxed for one recipient and found by a short hint. Pure code.

Followers-only grants and direct messages both hand a symmetric key to a list of people
this way (docs/private-posts.md, section 3). For an author A and a recipient R (Ed25519
public keys, converted to X25519 with libsodium's ed25519 -> curve25519 maps):

    s        = X25519(A's secret, R's public) = X25519(R's secret, A's public)
    material = BLAKE2b-512(key = s, data = "murmurate-wrap-v1:" || A || R || header)
    hint     = material[0:8]          wrap_key = material[32:64]
    wrap     = hint || crypto_secretbox(key, nonce, wrap_key)          8 + 16 + 32 = 56 bytes

`header` is every byte of the container before its wraps (it holds the container's random
nonce), so hints never repeat across containers: nobody but A and R can tell that two
wraps, in two posts or two epochs, are for the same person. The wrap is authenticated by
the static DH with the author's key, so it opens only under the author the reader names;
putting A and R in that order into the hash stops R from passing A's wraps off as its own
(the DH alone is symmetric).
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable

import nacl.bindings
import nacl.exceptions

from .errors import RemoteCryptoError
from .signing import SigningIdentity

KEY_SIZE = 32
NONCE_SIZE = 24
MAC_SIZE = 16
HINT_SIZE = 8
WRAP_SIZE = HINT_SIZE + MAC_SIZE + KEY_SIZE  # 56
PUBLIC_KEY_SIZE = 32
_WRAP_DOMAIN = b"murmurate-wrap-v1:"


class PrivateBoxError(RemoteCryptoError):
    """Private-post bytes from a remote party are malformed, cut short or fail their MAC."""


def x25519_secret(identity: SigningIdentity) -> bytes:
    """The X25519 secret key libsodium derives from an Ed25519 key pair."""
    return nacl.bindings.crypto_sign_ed25519_sk_to_curve25519(identity.seed + identity.public_key)


@functools.lru_cache(maxsize=8192)
def x25519_public(public_key: bytes) -> bytes | None:
    """The X25519 public key of an Ed25519 public key, or None if it is not a usable point.

    Cached: libsodium's conversion checks the point's subgroup (about 0.2 ms here), and an
    author converts the same follower keys at every rotation. Public data only.
    """
    if not isinstance(public_key, bytes) or len(public_key) != PUBLIC_KEY_SIZE:
        return None
    try:
        return nacl.bindings.crypto_sign_ed25519_pk_to_curve25519(public_key)
    except nacl.exceptions.CryptoError:
        return None


def shared_secret(my_secret: bytes, their_public: bytes) -> bytes | None:
    """Raw X25519, or None when libsodium refuses (a low-order point gives all zeros)."""
    try:
        return nacl.bindings.crypto_scalarmult(my_secret, their_public)
    except nacl.exceptions.CryptoError:
        return None


def wrap_material(shared: bytes, author: bytes, recipient: bytes, header: bytes) -> tuple[bytes, bytes]:
    """Return (hint, wrap_key) for one recipient of the container whose header is `header`."""
    material = hashlib.blake2b(_WRAP_DOMAIN + author + recipient + header, key=shared, digest_size=64).digest()
    return material[:HINT_SIZE], material[32:64]


def seal_wraps(author: SigningIdentity, author_x_secret: bytes, recipients: Iterable[bytes],
               header: bytes, nonce: bytes, key: bytes) -> bytes:
    """Wrap `key` for each recipient; return the wraps joined, sorted by hint.

    Sorting by hint hides the order the caller listed people in. Raises ValueError for a
    recipient key that is not a usable Ed25519 public key (the caller's mistake: accepted
    followers and named recipients have signed entries, so their keys are valid points).
    """
    wraps = []
    for recipient in recipients:
        their_x = x25519_public(recipient)
        shared = shared_secret(author_x_secret, their_x) if their_x is not None else None
        if shared is None:
            raise ValueError(f"not a usable Ed25519 public key: {bytes(recipient).hex()}")
        hint, wrap_key = wrap_material(shared, author.public_key, recipient, header)
        wraps.append(hint + nacl.bindings.crypto_secretbox(key, nonce, wrap_key))
    wraps.sort()
    return b"".join(wraps)


def find_wrap(wraps: bytes, shared: bytes, author: bytes, me: bytes, header: bytes, nonce: bytes) -> bytes | None:
    """Return the key wrapped for `me` among `wraps` (a multiple of WRAP_SIZE), or None.

    Only wraps whose hint matches are opened. A matching hint whose box does not open is
    passed over (with 64-bit hints a chance match is about n / 2^64), so a reader never
    stops on a decoy or a damaged wrap.
    """
    hint, wrap_key = wrap_material(shared, author, me, header)
    for at in range(0, len(wraps), WRAP_SIZE):
        if wraps[at:at + HINT_SIZE] != hint:
            continue
        try:
            return nacl.bindings.crypto_secretbox_open(wraps[at + HINT_SIZE:at + WRAP_SIZE], nonce, wrap_key)
        except nacl.exceptions.CryptoError:
            continue
    return None
