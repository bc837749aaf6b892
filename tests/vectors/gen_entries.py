"""Entry vectors: wire frames and the verdict the entry and feed rules give each one.

Alice (seed 01*32) writes a chain of valid entries, one per payload type; the invalid
cases are each built from a valid one with exactly one thing wrong, at the byte level,
and re-signed where the signature would otherwise be a second fault.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from murmurate.crypto import SigningIdentity
from murmurate.store import canonical
from murmurate.store.entry import (FORMAT_VERSION, MAX_CLOCK_SKEW_MS, MAX_ENVELOPE_SIZE, MAX_PAYLOAD_SIZE,
                                   MAX_SEQ, MAX_TIMESTAMP_MS, PAYLOAD_LIMITS, SIGNING_DOMAIN, PayloadType,
                                   blake2b256)

from tagged import tag

ALICE = SigningIdentity(bytes([1]) * 32)
BOB = SigningIdentity(bytes([2]) * 32)
CAROL = SigningIdentity(bytes([3]) * 32)
T0 = 1_700_000_000_000          # Alice's first entry: 2023-11-14T22:13:20Z
STEP = 60_000                   # a minute between entries
NOW = T0 + 86_400_000           # the checking node's clock, a day later, unless a case says otherwise
ED25519_L = 2**252 + 27742317777372353535851937790883648493

# Field positions in the envelope body array.
VERSION, AUTHOR, SEQ, PREV, TS, PTYPE, PSIZE, PHASH = range(8)


@dataclass(frozen=True)
class Made:
    """One signed envelope and the payload bytes it names."""

    raw: bytes
    fields: tuple[Any, ...]
    payload: bytes

    @property
    def hash(self) -> bytes:
        return blake2b256(self.raw)

    @property
    def seq(self) -> int:
        return self.fields[SEQ]

    @property
    def ts(self) -> int:
        return self.fields[TS]


def fields_for(author: bytes, seq: int, prev: bytes | None, ts: int, ptype: int, payload: bytes) -> list[Any]:
    return [FORMAT_VERSION, author, seq, prev, ts, ptype, len(payload), blake2b256(payload)]


def body_of(fields: list[Any], raw: dict[int, bytes] | None = None, extra: bytes = b"") -> bytes:
    """The envelope body: canonical msgpack of `fields`, with some fields swapped for
    hand-written bytes (`raw`) and `extra` bytes appended, so one fault can be planted."""
    raw = raw or {}
    count = len(fields)
    header = bytes([0x90 | count]) if count < 16 else b"\xdc" + count.to_bytes(2, "big")
    return header + b"".join(raw.get(i, canonical.pack(f)) for i, f in enumerate(fields)) + extra


def signed(identity: SigningIdentity, body: bytes) -> bytes:
    return body + identity.sign(SIGNING_DOMAIN + body)


def make(identity: SigningIdentity, seq: int, prev: bytes | None, ts: int, ptype: int, payload: Any) -> Made:
    data = payload if isinstance(payload, bytes) else canonical.pack(payload)
    fields = fields_for(identity.public_key, seq, prev, ts, ptype, data)
    return Made(signed(identity, body_of(fields)), tuple(fields), data)


def frame(envelope: bytes, payload: bytes | None) -> bytes:
    return canonical.pack([envelope, payload])


def head_of(m: Made | None) -> dict[str, Any] | None:
    return None if m is None else {"seq": m.seq, "hash": m.hash.hex(), "timestamp_ms": m.ts}


class Cases:
    def __init__(self) -> None:
        self.items: list[dict[str, Any]] = []

    def add(self, comment: str, frame_bytes: bytes, expect: str, *, head: Made | None = None,
            stored: Made | None = None, now_ms: int = NOW, valid: Made | None = None,
            shipped: bool = True) -> None:
        case: dict[str, Any] = {
            "comment": comment,
            "head": head_of(head),
            "stored_hash": stored.hash.hex() if stored else None,
            "now_ms": now_ms,
            "frame": frame_bytes.hex(),
            "expect": expect,
        }
        if valid is not None:
            f = valid.fields
            case["entry_hash"] = valid.hash.hex()
            case["payload_hash"] = f[PHASH].hex()
            case["envelope"] = {
                "version": f[VERSION], "author": f[AUTHOR].hex(), "seq": f[SEQ],
                "prev": f[PREV].hex() if f[PREV] is not None else None, "timestamp_ms": f[TS],
                "payload_type": f[PTYPE], "payload_size": f[PSIZE], "payload_hash": f[PHASH].hex(),
                "signature": valid.raw[-64:].hex(),
            }
            case["payload"] = tag(canonical.unpack(valid.payload)) if shipped else None
        self.items.append(case)


def build() -> dict[str, Any]:
    c = Cases()
    chain = _valid_chain(c)
    tip = chain[-1]
    _valid_placements(c, chain)
    _invalid_envelopes(c, tip)
    _invalid_signatures(c, tip)
    _invalid_payloads(c, tip)
    _invalid_frames(c, tip)
    _invalid_chain(c, chain)
    return {
        "description": (
            "Entry frames and their verdicts. Apply in order: decode_frame, check_signature, "
            "check_timestamp(now_ms), check_payload (if the frame carries a payload), "
            "place(head, envelope, stored_hash). 'expect' is the first refusal's reason code or, "
            "if nothing refuses, the placement (append, held, duplicate, fork). Valid cases also "
            "give the decoded envelope, the entry hash (BLAKE2b-256 of the envelope bytes), the "
            "payload hash and the payload value (tagged form: see canonical.json). "
            "Keys: Alice seed 01*32, Bob 02*32, Carol 03*32. See docs/protocol.md."),
        "cases": c.items,
    }


def _valid_chain(c: Cases) -> list[Made]:
    """Alice's feed, seq 1..19: every known payload type and the edge values that are valid."""
    bob_post = make(BOB, 1, None, T0 - STEP, PayloadType.POST, {"text": "Bob's first post #p2p", "tags": ["p2p"]})
    c.add("valid: Bob's first entry (seq 1, no prev) on an empty feed", frame(bob_post.raw, bob_post.payload),
          "append", valid=bob_post)
    bob_ref = [BOB.public_key, 1]
    picture = b"\x89PNG tiny image"
    media = {"blob": blake2b256(picture), "size": len(picture), "mime": "image/png", "alt": "a tiny picture"}
    steps: list[tuple[str, int, Any]] = [
        ("valid: first entry of a feed, a post with text and lang", PayloadType.POST,
         {"text": "Hello, Murmurate!", "lang": "en"}),
        ("valid: post using every post field (cw, lang, reply, root, quote, mentions, tags, media, vis)",
         PayloadType.POST,
         {"text": "@bob agreed #murmurate #p2p", "cw": "opinions", "lang": "en", "reply": bob_ref,
          "root": bob_ref, "quote": bob_ref, "mentions": [BOB.public_key], "tags": ["murmurate", "p2p"],
          "media": [media], "vis": "public"}),
        ("valid: boost of Bob's entry 1", PayloadType.BOOST, {"target": bob_ref}),
        ("valid: favourite of Bob's entry 1", PayloadType.FAVOURITE, {"target": bob_ref}),
        ("valid: follow Bob", PayloadType.FOLLOW, {"id": BOB.public_key}),
        ("valid: unfollow Bob", PayloadType.UNFOLLOW, {"id": BOB.public_key}),
        ("valid: block Carol", PayloadType.BLOCK, {"id": CAROL.public_key}),
        ("valid: unblock Carol", PayloadType.UNBLOCK, {"id": CAROL.public_key}),
        ("valid: profile with name, bio, avatar, relays, pinned", PayloadType.PROFILE,
         {"name": "Alice", "bio": "Testing Murmurate.", "avatar": {k: media[k] for k in ("blob", "size", "mime")},
          "relays": ["/dns4/relay.example.org/udp/4001/quic-v1"], "pinned": [1]}),
        ("valid: edit of own entry 1 (new text)", PayloadType.EDIT, {"target": 1, "text": "Hello again, Murmurate!"}),
        ("valid: delete of own entry 2", PayloadType.DELETE, {"target": 2}),
        ("valid: encrypted payload (type 11): an opaque map, kept as it is", PayloadType.ENCRYPTED,
         {"v": 1, "data": bytes(range(48))}),
        ("valid: unknown payload type 4000 is kept and replicated, not refused", 4000,
         {"kind": "poll", "options": ["yes", "no"]}),
    ]
    chain: list[Made] = []
    for comment, ptype, payload in steps:
        prev = chain[-1] if chain else None
        m = make(ALICE, len(chain) + 1, prev.hash if prev else None, T0 + STEP * len(chain), ptype, payload)
        c.add(comment, frame(m.raw, m.payload), "append", head=prev, valid=m)
        chain.append(m)

    def nxt(ptype: int, payload: Any, ts: int | None = None) -> Made:
        tip = chain[-1]
        m = make(ALICE, tip.seq + 1, tip.hash, tip.ts + STEP if ts is None else ts, ptype, payload)
        chain.append(m)
        return m

    m = nxt(PayloadType.POST, {"text": "This payload was dropped by the sender"})
    c.add("valid: entry whose payload was dropped (frame carries nil): the envelope still verifies and chains",
          frame(m.raw, None), "append", head=chain[-2], valid=m, shipped=False)
    m = nxt(PayloadType.POST, {"text": 42})
    c.add("valid: a known type with fields of the wrong shape (post text is an int) is kept, not refused",
          frame(m.raw, m.payload), "append", head=chain[-2], valid=m)
    m = nxt(PayloadType.POST, {"text": "same millisecond as the entry before"}, ts=chain[-1].ts)
    c.add("valid: timestamp equal to the previous entry's (timestamps may not decrease, may repeat)",
          frame(m.raw, m.payload), "append", head=chain[-2], valid=m)
    m = nxt(PayloadType.POST, {"text": "exactly ten minutes ahead"})
    c.add("valid: timestamp exactly 10 minutes (600000 ms) ahead of now_ms, the clock-skew limit",
          frame(m.raw, m.payload), "append", head=chain[-2], now_ms=m.ts - MAX_CLOCK_SKEW_MS, valid=m)
    cap = PAYLOAD_LIMITS[PayloadType.POST]
    m = nxt(PayloadType.POST, {"text": "x" * (cap - 9)})  # 1 map + 5 key + 3 str16 header = 9 bytes
    assert len(m.payload) == cap
    c.add(f"valid: post payload of exactly {cap} bytes, the post type's cap", frame(m.raw, m.payload),
          "append", head=chain[-2], valid=m)
    m = nxt(0xFFFF, {})
    c.add("valid: payload type 65535 (the highest) with an empty map payload", frame(m.raw, m.payload),
          "append", head=chain[-2], valid=m)
    return chain


def _valid_placements(c: Cases, chain: list[Made]) -> None:
    tip = chain[-1]
    one, two = chain[0], chain[1]
    c.add("duplicate: Alice's entry 1 again, the node holds the same hash at seq 1", frame(one.raw, one.payload),
          "duplicate", head=tip, stored=one, valid=one)
    c.add("duplicate: entry 2 without its payload, same hash at seq 2", frame(two.raw, None),
          "duplicate", head=tip, stored=two, valid=two, shipped=False)
    other = make(ALICE, 2, one.hash, two.ts, PayloadType.POST, {"text": "a different second entry"})
    c.add("fork: a second, differently signed entry 2 by Alice; the node holds another hash at seq 2",
          frame(other.raw, other.payload), "fork", head=tip, stored=two, valid=other)
    five = chain[4]
    c.add("held: entry 5 reaches a node that has nothing of this feed; it waits for 1..4",
          frame(five.raw, five.payload), "held", valid=five)
    later = make(ALICE, tip.seq + 2, bytes(32), tip.ts + 2 * STEP, PayloadType.POST, {"text": "after a gap"})
    c.add(f"held: entry {tip.seq + 2} while the head is {tip.seq}; its prev cannot be checked until "
          f"{tip.seq + 1} arrives", frame(later.raw, later.payload), "held", head=tip, valid=later)
    last = make(ALICE, MAX_SEQ, bytes(32), T0, PayloadType.POST, {"text": "the last possible seq"})
    c.add("held: seq 2^53-1, the highest allowed", frame(last.raw, last.payload), "held", valid=last)


def _next(tip: Made, payload: Any = None, *, ptype: int = PayloadType.POST) -> tuple[list[Any], bytes]:
    """Fields and payload bytes of a valid next entry after `tip` (for faults to be planted in)."""
    if payload is None:
        payload = {"text": "next entry"}
    data = payload if isinstance(payload, bytes) else canonical.pack(payload)
    return fields_for(ALICE.public_key, tip.seq + 1, tip.hash, tip.ts + STEP, ptype, data), data


def _invalid_envelopes(c: Cases, tip: Made) -> None:
    fields, data = _next(tip)

    def add(comment: str, expect: str, body: bytes, *, payload: bytes | None = data,
            identity: SigningIdentity = ALICE) -> None:
        c.add(comment, frame(signed(identity, body), payload), expect, head=tip)

    def with_field(i: int, value: Any) -> list[Any]:
        out = list(fields)
        out[i] = value
        return out

    add("non_canonical: seq written as uint16 (cd 00 14) instead of a positive fixint; signed as written",
        "non_canonical", body_of(fields, {SEQ: b"\xcd" + fields[SEQ].to_bytes(2, "big")}))
    add("non_canonical: version 1 written as int8 (d0 01); signed as written", "non_canonical",
        body_of(fields, {VERSION: b"\xd0\x01"}))
    add("non_canonical: author written as bin16 (c5 00 20) instead of bin8", "non_canonical",
        body_of(fields, {AUTHOR: b"\xc5\x00\x20" + fields[AUTHOR]}))
    add("trailing_bytes: one byte (c0) after the body array, inside the signed body", "trailing_bytes",
        body_of(fields, extra=b"\xc0"))
    add("unsupported_version: version 2 with 8 well-formed fields, validly signed", "unsupported_version",
        body_of(with_field(VERSION, 2)))
    add("unsupported_version: version 0", "unsupported_version", body_of(with_field(VERSION, 0)))
    add("unsupported_version: version true (a bool is not the integer 1)", "unsupported_version",
        body_of(with_field(VERSION, True)))
    add("malformed: version 1 body with 7 fields (payload hash missing)", "malformed", body_of(fields[:7]))
    add("malformed: body is a map, not an array", "malformed", canonical.pack({"seq": fields[SEQ]}))
    add("malformed: body is not msgpack (c1 is never used)", "malformed", b"\xc1")
    add("malformed: body declares 8 fields but holds 7 (ends early)", "malformed",
        body_of(fields)[:-len(canonical.pack(fields[PHASH]))])
    c.add("malformed: envelope of 64 bytes, too short to hold a body and a signature",
          frame(bytes(64), data), "malformed", head=tip)
    pad_body = body_of(fields + [b""])
    pad = MAX_ENVELOPE_SIZE + 1 - 64 - len(pad_body)
    big = body_of(fields + [bytes(pad)])
    assert len(big) + 64 == MAX_ENVELOPE_SIZE + 1
    add(f"envelope_too_large: {MAX_ENVELOPE_SIZE + 1}-byte envelope (a 9th field pads it); the size is "
        "checked before the envelope is parsed", "envelope_too_large", big)

    add("bad_field: seq 0 (feeds start at 1)", "bad_field", body_of(with_field(SEQ, 0)))
    add("bad_field: seq 2^53, one over the maximum", "bad_field", body_of(with_field(SEQ, MAX_SEQ + 1)))
    add("bad_field: seq true (a bool is not an integer)", "bad_field", body_of(with_field(SEQ, True)))
    one = list(fields)
    one[SEQ] = 1
    add("bad_field: seq 1 with a prev (entry 1 has none)", "bad_field", body_of(one), payload=data)
    add("bad_field: seq > 1 with prev nil", "bad_field", body_of(with_field(PREV, None)))
    add("bad_field: prev of 31 bytes", "bad_field", body_of(with_field(PREV, fields[PREV][:31])))
    add("bad_field: author of 31 bytes (the signature cannot be checked against it)", "bad_field",
        body_of(with_field(AUTHOR, fields[AUTHOR][:31])))
    add("bad_field: author as str, not bin", "bad_field", body_of(with_field(AUTHOR, "a" * 32)))
    add("bad_field: timestamp -1", "bad_field", body_of(with_field(TS, -1)))
    add("bad_field: timestamp 2^53, one over the maximum", "bad_field", body_of(with_field(TS, MAX_TIMESTAMP_MS + 1)))
    add("bad_field: payload type 0", "bad_field", body_of(with_field(PTYPE, 0)))
    add("bad_field: payload type 65536, one over the maximum", "bad_field", body_of(with_field(PTYPE, 0x10000)))
    add("bad_field: payload size -1", "bad_field", body_of(with_field(PSIZE, -1)), payload=None)
    add("bad_field: payload hash of 31 bytes", "bad_field", body_of(with_field(PHASH, fields[PHASH][:31])))
    add("bad_field: payload hash nil", "bad_field", body_of(with_field(PHASH, None)), payload=None)

    cap = PAYLOAD_LIMITS[PayloadType.POST]
    add(f"payload_too_large: a post declaring {cap + 1} bytes (cap {cap}), signed; refused before any "
        "signature work", "payload_too_large", body_of(with_field(PSIZE, cap + 1)), payload=None)
    boost_fields, boost_data = _next(tip, {"target": [BOB.public_key, 1]}, ptype=PayloadType.BOOST)
    boost_fields[PSIZE] = PAYLOAD_LIMITS[PayloadType.BOOST] + 1
    add("payload_too_large: a boost declaring 1025 bytes (cap 1024)", "payload_too_large",
        body_of(boost_fields), payload=None)
    unknown_fields, _ = _next(tip, {}, ptype=4000)
    unknown_fields[PSIZE] = MAX_PAYLOAD_SIZE + 1
    add(f"payload_too_large: unknown type 4000 declaring {MAX_PAYLOAD_SIZE + 1} bytes (cap for types "
        f"without their own: {MAX_PAYLOAD_SIZE})", "payload_too_large", body_of(unknown_fields), payload=None)


def _invalid_signatures(c: Cases, tip: Made) -> None:
    fields, data = _next(tip)
    body = body_of(fields)
    good = signed(ALICE, body)

    def add(comment: str, envelope: bytes) -> None:
        c.add(comment, frame(envelope, data), "bad_signature", head=tip)

    flipped = bytearray(good)
    flipped[-64] ^= 0x01
    add("bad_signature: the lowest bit of the signature's first byte flipped", bytes(flipped))
    add("bad_signature: signed by Bob's key, author field is Alice", signed(BOB, body))
    add("bad_signature: signed over the body without the 'murmurate-entry-v1:' domain prefix",
        body + ALICE.sign(body))
    changed = list(fields)
    changed[TS] += 1
    add("bad_signature: timestamp changed by 1 ms after signing", body_of(changed) + good[-64:])
    s = int.from_bytes(good[-32:], "little") + ED25519_L
    add("bad_signature: malleated signature (S + L, the group order): S must be below L",
        good[:-32] + s.to_bytes(32, "little"))
    junk = list(fields)
    junk[AUTHOR] = b"\xff" * 32
    add("bad_signature: author is 32 bytes but not a valid Ed25519 public key", signed(ALICE, body_of(junk)))


def _invalid_payloads(c: Cases, tip: Made) -> None:
    def add(comment: str, expect: str, payload: bytes, fields: list[Any] | None = None) -> None:
        f, _ = _next(tip, payload) if fields is None else (fields, payload)
        c.add(comment, frame(signed(ALICE, body_of(f)), payload), expect, head=tip)

    good, data = _next(tip, {"text": "right"})
    longer = list(good)
    longer[PSIZE] += 1
    add("payload_size_mismatch: envelope declares one byte more than the payload has (hash matches)",
        "payload_size_mismatch", data, longer)
    add("payload_hash_mismatch: same length, different text ('wrong' for 'right')", "payload_hash_mismatch",
        canonical.pack({"text": "wrong"}), good)
    add("payload_non_canonical: map keys not sorted (text before lang)", "payload_non_canonical",
        b"\x82\xa4text\xa2hi\xa4lang\xa2en")
    add("payload_non_canonical: a float64 value", "payload_non_canonical",
        b"\x82\xa5score\xcb" + bytes.fromhex("3ff8000000000000") + b"\xa4text\xa2hi")
    add("payload_non_canonical: int 5 written as uint8 (cc 05)", "payload_non_canonical",
        b"\x81\xa6target\xcc\x05")
    add("payload_non_canonical: short str written as str8 (d9 02)", "payload_non_canonical",
        b"\x81\xa4text\xd9\x02hi")
    add("payload_non_canonical: duplicate key", "payload_non_canonical", b"\x82\xa4text\xa1a\xa4text\xa1b")
    add("payload_malformed: payload is an array, not a map", "payload_malformed", canonical.pack(["hi"]))
    add("payload_malformed: map key is an int", "payload_malformed", b"\x81\x01\xa2hi")
    add("payload_malformed: str that is not valid UTF-8", "payload_malformed", b"\x81\xa4text\xa1\xff")
    add("payload_malformed: msgpack that ends early", "payload_malformed", b"\x81\xa4text\xa5hi")
    add("payload_malformed: a byte after the map (trailing data in a payload counts as malformed)",
        "payload_malformed", canonical.pack({"text": "hi"}) + b"\xc0")
    add("payload_malformed: an ext type (d4 01 00)", "payload_malformed", b"\x81\xa4text\xd4\x01\x00")


def _invalid_frames(c: Cases, tip: Made) -> None:
    fields, data = _next(tip)
    env = signed(ALICE, body_of(fields))
    good = frame(env, data)

    def add(comment: str, expect: str, frame_bytes: bytes) -> None:
        c.add(comment, frame_bytes, expect, head=tip)

    add("trailing_bytes: one byte (c0) after a valid frame", "trailing_bytes", good + b"\xc0")
    add("non_canonical: frame array written as array16 (dc 00 02)", "non_canonical", b"\xdc\x00\x02" + good[1:])
    add("non_canonical: envelope written as bin16 instead of bin8", "non_canonical",
        b"\x92\xc5" + len(env).to_bytes(2, "big") + env + canonical.pack(data))
    add("malformed: frame is a map, not an array", "malformed", canonical.pack({"envelope": env}))
    add("malformed: frame is the bare envelope bin, not an array", "malformed", canonical.pack(env))
    add("malformed: frame array of 3 items", "malformed", canonical.pack([env, data, None]))
    add("malformed: frame array of 1 item", "malformed", canonical.pack([env]))
    add("malformed: payload as str, not bin", "malformed", canonical.pack([env, "hi"]))
    add("malformed: envelope as str, not bin", "malformed", canonical.pack([env.hex(), data]))
    add("malformed: empty frame", "malformed", b"")
    add("malformed: frame cut short", "malformed", good[:-1])
    # Every declared size from 65536 to 2^32-1 is a uint32, so the envelope's length does
    # not depend on which one: measure it with a stand-in, then size the payload.
    probe = signed(ALICE, body_of(_next(tip, bytes(MAX_PAYLOAD_SIZE + 1), ptype=4000)[0]))
    limit = MAX_ENVELOPE_SIZE + MAX_PAYLOAD_SIZE + 16
    huge = bytes(limit + 1 - 1 - 2 - len(probe) - 5)  # array fixint, bin8 header, bin32 header
    env2 = signed(ALICE, body_of(_next(tip, huge, ptype=4000)[0]))
    big = frame(env2, huge)
    assert len(big) == MAX_ENVELOPE_SIZE + MAX_PAYLOAD_SIZE + 17
    add(f"payload_too_large: frame of {len(big)} bytes, over 256 + 65536 + 16; refused before parsing "
        "(its envelope also declares more than 65536 bytes)", "payload_too_large", big)


def _invalid_chain(c: Cases, chain: list[Made]) -> None:
    tip = chain[-1]

    def add(comment: str, expect: str, m: Made, now_ms: int = NOW) -> None:
        c.add(comment, frame(m.raw, m.payload), expect, head=tip, now_ms=now_ms)

    add("wrong_prev: next entry names the hash of the entry before the head", "wrong_prev",
        make(ALICE, tip.seq + 1, chain[-2].hash, tip.ts + STEP, PayloadType.POST, {"text": "x"}))
    add("wrong_prev: next entry names 32 zero bytes", "wrong_prev",
        make(ALICE, tip.seq + 1, bytes(32), tip.ts + STEP, PayloadType.POST, {"text": "x"}))
    add("timestamp_before_prev: one ms before the head's timestamp", "timestamp_before_prev",
        make(ALICE, tip.seq + 1, tip.hash, tip.ts - 1, PayloadType.POST, {"text": "x"}))
    ahead = NOW + MAX_CLOCK_SKEW_MS + 1
    add("timestamp_in_future: 600001 ms ahead of now_ms, one over the limit", "timestamp_in_future",
        make(ALICE, tip.seq + 1, tip.hash, ahead, PayloadType.POST, {"text": "x"}))
