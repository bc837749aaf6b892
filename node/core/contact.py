"""Contact codes: an id plus the addresses where its node can be reached. Pure.

    "murc_" + base32(canonical msgpack [public key bin32, [multiaddr str, ...]] || checksum4)

checksum = BLAKE2b-256("murmurate-contact-v1" || body)[:4]; lower case, no padding. People
paste these to follow someone they cannot yet find on the network; a plain id works too.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass

from murmurate.crypto import InvalidIdError, decode_id, encode_id
from murmurate.store import canonical

PREFIX = "murc_"
MAX_ADDRS = 8
MAX_ADDR_CHARS = 200
_DOMAIN = b"murmurate-contact-v1"


@dataclass(frozen=True)
class Contact:
    public_key: bytes
    addrs: tuple[str, ...]

    @property
    def id(self) -> str:
        return encode_id(self.public_key)


def encode_contact(contact: Contact) -> str:
    body = canonical.pack([contact.public_key, list(contact.addrs[:MAX_ADDRS])])
    raw = body + _checksum(body)
    return PREFIX + base64.b32encode(raw).decode("ascii").rstrip("=").lower()


def parse_contact(text: str) -> Contact:
    """Parse a contact code or a plain id. Raises InvalidIdError saying what is wrong."""
    cleaned = text.strip()
    if not cleaned.lower().startswith(PREFIX):
        return Contact(decode_id(cleaned), ())
    body32 = cleaned[len(PREFIX):].upper()
    try:
        raw = base64.b32decode(body32 + "=" * (-len(body32) % 8))
    except ValueError:
        raise InvalidIdError("contact code has characters other than a-z and 2-7") from None
    body, check = raw[:-4], raw[-4:]
    if len(raw) < 8 or _checksum(body) != check:
        raise InvalidIdError("contact code checksum does not match (incomplete or mistyped?)")
    try:
        value = canonical.unpack(body)
    except canonical.CanonicalError:
        raise InvalidIdError("contact code is damaged") from None
    if (not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], bytes)
            or len(value[0]) != 32 or not isinstance(value[1], list) or len(value[1]) > MAX_ADDRS
            or not all(isinstance(a, str) and 0 < len(a) <= MAX_ADDR_CHARS and a.startswith("/")
                       for a in value[1])):
        raise InvalidIdError("contact code does not hold an id and addresses")
    return Contact(value[0], tuple(value[1]))


def _checksum(body: bytes) -> bytes:
    return hashlib.blake2b(_DOMAIN + body, digest_size=32).digest()[:4]
