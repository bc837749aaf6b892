"""The text form of user ids: what people copy, paste and type.

An id is an Ed25519 public key (32 bytes). Its text form is

    "mur_" + base32(pubkey || checksum)   lower case, no padding: 58 characters after "mur_"

where checksum = BLAKE2b-256("murmurate-id-v1" || pubkey)[:4]. A mistyped character
changes the checksum, so it is refused instead of naming another user (a random typo
slips through with odds of 1 in 4 billion). Decoding accepts upper case and surrounding
white space but nothing else: the two spare bits of the last character must be zero, so
every id has exactly one text form.
"""

from __future__ import annotations

import base64
import functools
import hashlib

from .errors import InvalidIdError

ID_PREFIX = "mur_"
PUBLIC_KEY_SIZE = 32
_CHECKSUM_SIZE = 4
_CHECKSUM_DOMAIN = b"murmurate-id-v1"
_BODY_CHARS = 58  # ceil((32 + 4) * 8 / 5)
_B32_ALPHABET = set("abcdefghijklmnopqrstuvwxyz234567")


def _checksum(public_key: bytes) -> bytes:
    return hashlib.blake2b(_CHECKSUM_DOMAIN + public_key, digest_size=32).digest()[:_CHECKSUM_SIZE]


@functools.lru_cache(maxsize=65_536)
def encode_id(public_key: bytes) -> str:
    """Return the text form of a 32-byte public key. (Cached: views name the same authors
    over and over, and base32 with a checksum is a fifth of a thread view's time.)"""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise ValueError(f"a public key has {PUBLIC_KEY_SIZE} bytes, not {len(public_key)}")
    raw = public_key + _checksum(public_key)
    return ID_PREFIX + base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def decode_id(text: str) -> bytes:
    """Return the public key named by `text`.

    Raises InvalidIdError with a message that says what is wrong.
    """
    if not isinstance(text, str):
        raise InvalidIdError("an id must be text")
    cleaned = text.strip().lower()
    if not cleaned.startswith(ID_PREFIX):
        raise InvalidIdError(f"not a Murmurate id (ids start with {ID_PREFIX!r}): {_show(text)}")
    body = cleaned[len(ID_PREFIX):]
    if len(body) != _BODY_CHARS:
        raise InvalidIdError(
            f"an id has {_BODY_CHARS} characters after {ID_PREFIX!r}, this one has {len(body)}: "
            f"{_show(text)}")
    bad = sorted(set(body) - _B32_ALPHABET)
    if bad:
        raise InvalidIdError(f"an id uses only a-z and 2-7; found {''.join(bad)!r}: {_show(text)}")
    padded = body.upper() + "=" * (-len(body) % 8)
    raw = base64.b32decode(padded)
    if encode_id(raw[:PUBLIC_KEY_SIZE]) != cleaned or raw[PUBLIC_KEY_SIZE:] != _checksum(raw[:PUBLIC_KEY_SIZE]):
        raise InvalidIdError(f"id checksum does not match (a character is mistyped?): {_show(text)}")
    return raw[:PUBLIC_KEY_SIZE]


def fingerprint(public_key: bytes) -> str:
    """A short tag shown beside display names so two people with one name are told apart.

    It is the first 8 characters of the id's text form after the prefix: people can
    check it against the full id by eye. It is a hint, not an identity.
    """
    return encode_id(public_key)[len(ID_PREFIX):len(ID_PREFIX) + 8]


def _show(text: str) -> str:
    return repr(text if len(text) <= 80 else text[:77] + "...")
