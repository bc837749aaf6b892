"""The relay's wire formats. Pure: bytes in, values out (docs/protocol.md section 13).

Relay codes, what `murmurate relay invite` prints and `murmurate relay add` takes:

    "murr_" + base32(canonical msgpack [relay key bin32, [multiaddr, ...], token bin] || checksum4)

checksum = BLAKE2b-256("murmurate-relay-code-v1" || body)[:4]; lower case, no padding. The
token is 16 random bytes (an invite) or empty (for users on the relay's allowlist).

`/murmurate/relay/1.0.0`: one stream, frames of a u32 big-endian length and canonical
msgpack maps with a string `t`, one request and one answer:

    client -> relay   {"t": "join", "token": bin, "time": uint ms, "sig": bin64}
                      {"t": "status"}
    relay -> client   {"t": "ok", "user": {usage and quota, all uints, plus "refusing": str}}
                      {"t": "refused", "code": str, "message": str}

The user is the stream's remote peer (Noise proves it holds the key); the join is also
signed by that key over JOIN_DOMAIN || canonical [relay key, user key, token, time], so
an admission is a statement the user made to that one relay at that time.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

from murmurate.crypto import InvalidIdError, SigningIdentity, verify_signature
from murmurate.store import canonical

PROTOCOL = "/murmurate/relay/1.0.0"
CODE_PREFIX = "murr_"
TOKEN_SIZE = 16
MAX_ADDRS = 8
MAX_ADDR_CHARS = 200
MAX_MESSAGE_BYTES = 16 * 1024
JOIN_DOMAIN = b"murmurate-relay-join-v1:"
MAX_JOIN_SKEW_MS = 10 * 60 * 1000
_CODE_DOMAIN = b"murmurate-relay-code-v1"

# Refusal codes (stable: clients may act on them).
NOT_ADMITTED = "not_admitted"
UNKNOWN_CODE = "unknown_code"
USED_CODE = "used_code"
EXPIRED_CODE = "expired_code"
BAD_SIGNATURE = "bad_signature"
FULL = "full"
BLOCKED = "blocked"
BAD_REQUEST = "bad_request"


class RelayProtocolError(Exception):
    """The other side sent something that is not a relay message."""


@dataclass(frozen=True)
class RelayCode:
    public_key: bytes
    addrs: tuple[str, ...]
    token: bytes = b""


@dataclass(frozen=True)
class Join:
    token: bytes
    time_ms: int
    sig: bytes


@dataclass(frozen=True)
class StatusRequest:
    pass


@dataclass(frozen=True)
class Ok:
    user: dict[str, Any]


@dataclass(frozen=True)
class Refused:
    code: str
    message: str


Message = Join | StatusRequest | Ok | Refused


# -- codes ---------------------------------------------------------------------------------

def encode_code(code: RelayCode) -> str:
    body = canonical.pack([code.public_key, list(code.addrs[:MAX_ADDRS]), code.token])
    return CODE_PREFIX + base64.b32encode(body + _checksum(body)).decode("ascii").rstrip("=").lower()


def parse_code(text: str) -> RelayCode:
    """Raises InvalidIdError saying what is wrong with the code."""
    cleaned = text.strip()
    if not cleaned.lower().startswith(CODE_PREFIX):
        raise InvalidIdError(f"a relay code starts with {CODE_PREFIX} (ask the relay's operator for one)")
    body32 = cleaned[len(CODE_PREFIX):].upper()
    try:
        raw = base64.b32decode(body32 + "=" * (-len(body32) % 8))
    except ValueError:
        raise InvalidIdError("relay code has characters other than a-z and 2-7") from None
    body, check = raw[:-4], raw[-4:]
    if len(raw) < 8 or _checksum(body) != check:
        raise InvalidIdError("relay code checksum does not match (incomplete or mistyped?)")
    try:
        value = canonical.unpack(body)
    except canonical.CanonicalError:
        raise InvalidIdError("relay code is damaged") from None
    if (not isinstance(value, list) or len(value) != 3 or not isinstance(value[0], bytes) or len(value[0]) != 32
            or not isinstance(value[1], list) or not 0 < len(value[1]) <= MAX_ADDRS
            or not all(isinstance(a, str) and 0 < len(a) <= MAX_ADDR_CHARS and a.startswith("/") for a in value[1])
            or not isinstance(value[2], bytes) or len(value[2]) not in (0, TOKEN_SIZE)):
        raise InvalidIdError("relay code does not hold a relay key, addresses and a token")
    return RelayCode(value[0], tuple(value[1]), value[2])


def _checksum(body: bytes) -> bytes:
    return hashlib.blake2b(_CODE_DOMAIN + body, digest_size=32).digest()[:4]


# -- the join signature --------------------------------------------------------------------

def join_bytes(relay_key: bytes, user_key: bytes, token: bytes, time_ms: int) -> bytes:
    return JOIN_DOMAIN + canonical.pack([relay_key, user_key, token, time_ms])


def make_join(identity: SigningIdentity, relay_key: bytes, token: bytes, time_ms: int) -> Join:
    return Join(token, time_ms, identity.sign(join_bytes(relay_key, identity.public_key, token, time_ms)))


def check_join(join: Join, relay_key: bytes, user_key: bytes, now_ms: int) -> Refused | None:
    """None if the join is signed by `user_key` for this relay at about `now_ms`."""
    if abs(join.time_ms - now_ms) > MAX_JOIN_SKEW_MS:
        return Refused(BAD_SIGNATURE, "the join's time is more than 10 minutes off the relay's clock")
    if not verify_signature(user_key, join_bytes(relay_key, user_key, join.token, join.time_ms), join.sig):
        return Refused(BAD_SIGNATURE, "the join is not signed by your key for this relay")
    return None


# -- messages ------------------------------------------------------------------------------

def encode(message: Message) -> bytes:
    if isinstance(message, Join):
        value: dict[str, Any] = {"t": "join", "token": message.token, "time": message.time_ms, "sig": message.sig}
    elif isinstance(message, StatusRequest):
        value = {"t": "status"}
    elif isinstance(message, Ok):
        value = {"t": "ok", "user": message.user}
    else:
        value = {"t": "refused", "code": message.code, "message": message.message[:500]}
    return canonical.pack(value)


def decode(body: bytes) -> Message:
    """Raises RelayProtocolError for anything that is not one of the four messages."""
    try:
        value = canonical.unpack(body)
    except canonical.CanonicalError as e:
        raise RelayProtocolError(f"not canonical msgpack: {e}") from None
    if not isinstance(value, dict) or not isinstance(value.get("t"), str):
        raise RelayProtocolError("a relay message is a map with a string t")
    kind = value["t"]
    if kind == "join":
        token, time_ms, sig = value.get("token"), value.get("time"), value.get("sig")
        if (not isinstance(token, bytes) or len(token) not in (0, TOKEN_SIZE) or not isinstance(time_ms, int)
                or isinstance(time_ms, bool) or time_ms < 0 or not isinstance(sig, bytes) or len(sig) != 64):
            raise RelayProtocolError("join needs token (0 or 16 bytes), time (uint) and sig (64 bytes)")
        return Join(token, time_ms, sig)
    if kind == "status":
        return StatusRequest()
    if kind == "ok":
        user = value.get("user")
        if not isinstance(user, dict):
            raise RelayProtocolError("ok needs a user map")
        return Ok(user)
    if kind == "refused":
        code, message = value.get("code"), value.get("message")
        if not isinstance(code, str) or not isinstance(message, str):
            raise RelayProtocolError("refused needs code and message strings")
        return Refused(code, message)
    raise RelayProtocolError(f"unknown relay message {kind!r}")
