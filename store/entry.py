"""The log entry: a signed envelope and the payload that travels beside it. Pure code.

Envelope bytes (docs/protocol.md, "Entry"):

    envelope = body || signature
    body     = canonical msgpack array of 8:
               [version=1, author bin32, seq uint, prev bin32|nil, timestamp_ms uint,
                payload_type uint, payload_size uint, payload_hash bin32]
    signature = Ed25519(author, "murmurate-entry-v1:" || body)        64 bytes
    entry hash   = BLAKE2b-256(envelope)   (what the next entry's `prev` names)
    payload hash = BLAKE2b-256(payload)

The signature and both hashes cover the exact bytes that are stored and sent; nothing is
re-encoded before it is verified. A node may drop a payload and still verify and serve
the envelope chain: that is how deletes become real.
"""

from __future__ import annotations

import hashlib
from enum import IntEnum
from typing import Any, NamedTuple

import msgpack

from murmurate.crypto import SIGNATURE_SIZE, SigningIdentity, verify_signature

from . import canonical
from .errors import InvalidEntryError, Reason

FORMAT_VERSION = 1
SIGNING_DOMAIN = b"murmurate-entry-v1:"
HASH_SIZE = 32
MAX_ENVELOPE_SIZE = 256
MAX_PAYLOAD_SIZE = 64 * 1024
MAX_SEQ = 2**53 - 1  # stays exact in JSON for the local API
MAX_TIMESTAMP_MS = 2**53 - 1
MAX_CLOCK_SKEW_MS = 10 * 60 * 1000


class PayloadType(IntEnum):
    POST = 1
    BOOST = 2
    FAVOURITE = 3
    FOLLOW = 4
    UNFOLLOW = 5
    BLOCK = 6
    UNBLOCK = 7
    PROFILE = 8
    EDIT = 9
    DELETE = 10
    ENCRYPTED = 11


MAX_PAYLOAD_TYPE = 0xFFFF

# Per-type payload caps, checked on the envelope's declared size before any signature
# work. Types not listed (including unknown ones) may use up to MAX_PAYLOAD_SIZE.
PAYLOAD_LIMITS: dict[int, int] = {
    PayloadType.POST: 8 * 1024,   # 500 characters are at most 2,000 UTF-8 bytes; room for CW, mentions, media refs
    PayloadType.EDIT: 8 * 1024,
    PayloadType.PROFILE: 8 * 1024,
    PayloadType.BOOST: 1024,
    PayloadType.FAVOURITE: 1024,
    PayloadType.FOLLOW: 1024,
    PayloadType.UNFOLLOW: 1024,
    PayloadType.BLOCK: 1024,
    PayloadType.UNBLOCK: 1024,
    PayloadType.DELETE: 1024,
    PayloadType.ENCRYPTED: MAX_PAYLOAD_SIZE,
}


def payload_limit(payload_type: int) -> int:
    return PAYLOAD_LIMITS.get(payload_type, MAX_PAYLOAD_SIZE)


_BLAKE2B_256 = hashlib.blake2b(digest_size=HASH_SIZE)


def blake2b256(data: bytes) -> bytes:
    # Copying a ready hasher costs about half of building one with digest_size each time.
    hasher = _BLAKE2B_256.copy()
    hasher.update(data)
    return hasher.digest()


class Envelope(NamedTuple):
    """A decoded envelope. `raw` is the exact bytes; every other field is read from them,
    and `hash` is BLAKE2b-256 of `raw` (the entry hash).

    A NamedTuple rather than the house's frozen dataclass: every entry from the network is
    decoded into one, and a frozen dataclass of nine fields took 3-4 us to build, a
    NamedTuple under 1 (bench/sync.py). It is as immutable.
    """

    raw: bytes
    author: bytes
    seq: int
    prev: bytes | None
    timestamp_ms: int
    payload_type: int
    payload_size: int
    payload_hash: bytes
    hash: bytes

    @property
    def body(self) -> bytes:
        return self.raw[:-SIGNATURE_SIZE]

    @property
    def signature(self) -> bytes:
        return self.raw[-SIGNATURE_SIZE:]


class Entry(NamedTuple):
    """An envelope and its payload, or None where the payload was dropped or not fetched.
    (A NamedTuple for the speed of building one per entry, as Envelope.)"""

    envelope: Envelope
    payload: bytes | None


def _refuse(reason: Reason, message: str, author: bytes | None = None, seq: int | None = None) -> InvalidEntryError:
    return InvalidEntryError(reason, message, author=author, seq=seq)


def decode_envelope(raw: bytes) -> Envelope:
    """Parse and check the envelope's form and limits. Does not check the signature.

    Raises InvalidEntryError (envelope_too_large, malformed, trailing_bytes, non_canonical,
    unsupported_version, bad_field, payload_too_large).
    """
    if type(raw) is not bytes:
        if not isinstance(raw, (bytes, bytearray)):
            raise _refuse(Reason.MALFORMED, "an envelope must be bytes")
        raw = bytes(raw)
    if len(raw) > MAX_ENVELOPE_SIZE:
        raise _refuse(Reason.ENVELOPE_TOO_LARGE, f"{len(raw)} bytes, the limit is {MAX_ENVELOPE_SIZE}")
    if len(raw) <= SIGNATURE_SIZE:
        raise _refuse(Reason.MALFORMED, "too short to hold a signature")
    fast = _read_common_envelope(raw)
    return fast if fast is not None else _decode_general(raw)


def _decode_general(raw: bytes) -> Envelope:
    """decode_envelope for any bytes (of an allowed length), naming what is wrong."""
    try:
        fields = canonical.unpack(raw[:-SIGNATURE_SIZE])
    except canonical.CanonicalError as e:
        reason = {"trailing": Reason.TRAILING_BYTES, "non_canonical": Reason.NON_CANONICAL}.get(e.kind, Reason.MALFORMED)
        raise _refuse(reason, f"envelope body: {e}") from None
    if not isinstance(fields, list) or not fields:
        raise _refuse(Reason.MALFORMED, "envelope body is not an array")
    if fields[0] != FORMAT_VERSION or isinstance(fields[0], bool):
        raise _refuse(Reason.UNSUPPORTED_VERSION, f"envelope version {fields[0]!r}; this node reads {FORMAT_VERSION}")
    if len(fields) != 8:
        raise _refuse(Reason.MALFORMED, f"a version 1 envelope has 8 fields, not {len(fields)}")
    _, author, seq, prev, ts, ptype, psize, phash = fields
    if (type(author) is bytes and len(author) == HASH_SIZE and type(seq) is int and 1 <= seq <= MAX_SEQ
            and (prev is None if seq == 1 else type(prev) is bytes and len(prev) == HASH_SIZE)
            and type(ts) is int and 0 <= ts <= MAX_TIMESTAMP_MS and type(ptype) is int
            and 1 <= ptype <= MAX_PAYLOAD_TYPE and type(psize) is int and 0 <= psize <= payload_limit(ptype)
            and type(phash) is bytes and len(phash) == HASH_SIZE):
        # The common case, checked in one expression; the checks below name what is wrong.
        return Envelope(raw, author, seq, prev, ts, ptype, psize, phash, blake2b256(raw))
    if not _is_bin(author, HASH_SIZE):
        raise _refuse(Reason.BAD_FIELD, "author must be 32 bytes")
    if not _is_uint(seq) or not 1 <= seq <= MAX_SEQ:
        raise _refuse(Reason.BAD_FIELD, f"seq must be an integer from 1 to {MAX_SEQ}", author)
    if seq == 1 and prev is not None:
        raise _refuse(Reason.BAD_FIELD, "entry 1 must have no prev", author, seq)
    if seq > 1 and not _is_bin(prev, HASH_SIZE):
        raise _refuse(Reason.BAD_FIELD, "prev must be 32 bytes", author, seq)
    if not _is_uint(ts) or ts > MAX_TIMESTAMP_MS:
        raise _refuse(Reason.BAD_FIELD, "timestamp must be milliseconds since 1970 as an unsigned integer", author, seq)
    if not _is_uint(ptype) or not 1 <= ptype <= MAX_PAYLOAD_TYPE:
        raise _refuse(Reason.BAD_FIELD, f"payload type must be 1..{MAX_PAYLOAD_TYPE}", author, seq)
    if not _is_uint(psize):
        raise _refuse(Reason.BAD_FIELD, "payload size must be an unsigned integer", author, seq)
    if psize > payload_limit(ptype):
        raise _refuse(Reason.PAYLOAD_TOO_LARGE,
                      f"payload of {psize} bytes; type {ptype} allows {payload_limit(ptype)}", author, seq)
    if not _is_bin(phash, HASH_SIZE):
        raise _refuse(Reason.BAD_FIELD, "payload hash must be 32 bytes", author, seq)
    return Envelope(raw, author, seq, prev, ts, ptype, psize, phash, blake2b256(raw))


def _read_common_envelope(raw: bytes) -> Envelope | None:
    """A valid envelope, read by msgpack's C unpacker without the canonical hooks. None for
    anything else, valid or not: the general path (canonical.unpack) then decides and
    names what is wrong. Every envelope from the network comes through here, and this
    costs under half of the general path.

    Why it is as strict: every field must be an int (not a bool), bytes or nil, so no map
    (whose key order the hooks check), float or ext can pass; and the C packer's output
    must equal the body, so every value was in its shortest form and every byte string
    was bin, not str. (tests/test_envelope_fast_path.py checks that both paths agree.)"""
    body = raw[:-SIGNATURE_SIZE]
    try:
        # msgpack's defaults: str as str, str keys only, every length bounded by the input's
        # (an ext decodes to an object the type checks below refuse)
        fields = msgpack.unpackb(body)
    except Exception:  # anything msgpack refuses: the general path names it
        return None
    if type(fields) is not list or len(fields) != 8:
        return None
    version, author, seq, prev, ts, ptype, psize, phash = fields
    if not (type(version) is int and version == FORMAT_VERSION
            and type(author) is bytes and len(author) == HASH_SIZE and type(seq) is int and 1 <= seq <= MAX_SEQ
            and (prev is None if seq == 1 else type(prev) is bytes and len(prev) == HASH_SIZE)
            and type(ts) is int and 0 <= ts <= MAX_TIMESTAMP_MS and type(ptype) is int
            and 1 <= ptype <= MAX_PAYLOAD_TYPE and type(psize) is int and 0 <= psize <= payload_limit(ptype)
            and type(phash) is bytes and len(phash) == HASH_SIZE):
        return None
    if canonical.repack(fields) != body:
        return None
    return Envelope(raw, author, seq, prev, ts, ptype, psize, phash, blake2b256(raw))


def check_signature(envelope: Envelope) -> None:
    """Raise InvalidEntryError(bad_signature) unless the author signed this envelope."""
    if not verify_signature(envelope.author, SIGNING_DOMAIN + envelope.body, envelope.signature):
        raise _refuse(Reason.BAD_SIGNATURE, "signature does not verify", envelope.author, envelope.seq)


def check_payload(envelope: Envelope, payload: bytes) -> dict[str, Any]:
    """Check that `payload` is the one the envelope names, and canonical. Return it decoded.

    Raises InvalidEntryError (payload_size_mismatch, payload_hash_mismatch,
    payload_malformed, payload_non_canonical).
    """
    a, s = envelope.author, envelope.seq
    if len(payload) != envelope.payload_size:
        raise _refuse(Reason.PAYLOAD_SIZE_MISMATCH,
                      f"payload has {len(payload)} bytes, the envelope says {envelope.payload_size}", a, s)
    if blake2b256(payload) != envelope.payload_hash:
        raise _refuse(Reason.PAYLOAD_HASH_MISMATCH, "payload does not match the envelope's hash", a, s)
    return decode_payload_bytes(payload, author=a, seq=s)


def decode_payload_bytes(payload: bytes, *, author: bytes | None = None, seq: int | None = None) -> dict[str, Any]:
    flat = canonical.unpack_flat_map(payload)
    if flat is not None:
        return flat
    try:
        value = canonical.unpack(payload)
    except canonical.CanonicalError as e:
        reason = Reason.PAYLOAD_NON_CANONICAL if e.kind == "non_canonical" else Reason.PAYLOAD_MALFORMED
        raise _refuse(reason, f"payload: {e}", author, seq) from None
    if not isinstance(value, dict):
        raise _refuse(Reason.PAYLOAD_MALFORMED, "a payload is a msgpack map", author, seq)
    return value


def check_timestamp(envelope: Envelope, now_ms: int, max_skew_ms: int = MAX_CLOCK_SKEW_MS) -> None:
    if envelope.timestamp_ms > now_ms + max_skew_ms:
        raise _refuse(Reason.TIMESTAMP_IN_FUTURE,
                      f"timestamp is {envelope.timestamp_ms - now_ms} ms ahead of this node's clock "
                      f"(limit {max_skew_ms} ms)", envelope.author, envelope.seq)


def create_entry(identity: SigningIdentity, *, seq: int, prev: bytes | None, timestamp_ms: int,
                 payload_type: int, payload: dict[str, Any]) -> Entry:
    """Sign a new entry. Pure: the caller passes the feed head and the time.

    Raises ValueError if the result would break a limit (the caller's mistake).
    """
    payload_bytes = canonical.pack(payload)
    if len(payload_bytes) > payload_limit(payload_type):
        raise ValueError(f"payload of {len(payload_bytes)} bytes; type {payload_type} allows {payload_limit(payload_type)}")
    body = canonical.pack([FORMAT_VERSION, identity.public_key, seq, prev, timestamp_ms,
                           int(payload_type), len(payload_bytes), blake2b256(payload_bytes)])
    raw = body + identity.sign(SIGNING_DOMAIN + body)
    envelope = decode_envelope(raw)
    return Entry(envelope, payload_bytes)


# Wire/archive frame for one entry: canonical msgpack [envelope bin, payload bin | nil].
def encode_frame(entry: Entry) -> bytes:
    return canonical.pack([entry.envelope.raw, entry.payload])


def _bin_size(length: int) -> int:
    """Bytes of a msgpack bin of `length` bytes, header included."""
    return length + (2 if length < 0x100 else 3 if length < 0x10000 else 5)


def frame_size(envelope_length: int, payload_length: int | None) -> int:
    """len(encode_frame(...)) of an entry with these lengths, without encoding it: the
    array header, the envelope as bin, the payload as bin or nil."""
    return 1 + _bin_size(envelope_length) + (1 if payload_length is None else _bin_size(payload_length))


def entry_frame_size(entry: Entry) -> int:
    return frame_size(len(entry.envelope.raw), None if entry.payload is None else len(entry.payload))


def decode_frame(data: bytes) -> Entry:
    """Split a frame into envelope and payload; check the envelope's form and limits.

    The signature and the payload are checked by `check_signature` and `check_payload`
    (the store does both on ingest).

    Raises InvalidEntryError.
    """
    if len(data) > MAX_ENVELOPE_SIZE + MAX_PAYLOAD_SIZE + 16:
        raise _refuse(Reason.PAYLOAD_TOO_LARGE, f"frame of {len(data)} bytes is over the limit")
    split = _split_frame(data)
    if split is not None:
        return Entry(decode_envelope(split[0]), split[1])
    try:
        value = canonical.unpack(data)
    except canonical.CanonicalError as e:
        reason = {"trailing": Reason.TRAILING_BYTES, "non_canonical": Reason.NON_CANONICAL}.get(e.kind, Reason.MALFORMED)
        raise _refuse(reason, f"entry frame: {e}") from None
    if (not isinstance(value, list) or len(value) != 2 or not isinstance(value[0], bytes)
            or not (value[1] is None or isinstance(value[1], bytes))):
        raise _refuse(Reason.MALFORMED, "an entry frame is [envelope bin, payload bin | nil]")
    return Entry(decode_envelope(value[0]), value[1])


def _split_frame(data: bytes) -> tuple[bytes, bytes | None] | None:
    """The common frame read by hand: array of 2, the envelope as bin8, the payload as
    bin8/bin16 or nil, each header the shortest for its length (so canonical), and nothing
    after. None for anything else, which then takes the general (and slower) path that
    names what is wrong."""
    if len(data) < 3 or data[0] != 0x92 or data[1] != 0xC4:
        return None
    end = 3 + data[2]
    envelope = data[2 + 1:end]
    if end >= len(data):
        return None
    kind = data[end]
    if kind == 0xC0:
        return (envelope, None) if end + 1 == len(data) else None
    if kind == 0xC4:
        start, size = end + 2, data[end + 1] if end + 1 < len(data) else -1
    elif kind == 0xC5 and end + 2 < len(data):
        start, size = end + 3, (data[end + 1] << 8) | data[end + 2]
        if size < 256:
            return None
    else:
        return None
    if size < 0 or start + size != len(data):
        return None
    return envelope, data[start:]


def _is_uint(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0


def _is_bin(v: Any, size: int) -> bool:
    return isinstance(v, bytes) and len(v) == size
