"""decode_envelope reads the common envelope with msgpack's C unpacker and falls back to
the canonical decoder (store/canonical.py) for everything else. The two must agree: the
fast path may only accept what the general path accepts, and decode it the same way."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from murmurate.crypto import SigningIdentity
from murmurate.store import InvalidEntryError, canonical
from murmurate.store import entry as entry_format
from murmurate.store.entry import SIGNATURE_SIZE, _decode_general, _read_common_envelope

IDENTITY = SigningIdentity(b"\x07" * 32)
# Values on either side of each msgpack uint size, and of the envelope's own limits.
EDGES = [0, 1, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32, 2**53 - 1, 2**53, 2**64 - 1]
uints = st.one_of(st.sampled_from(EDGES), st.integers(0, 2**64 - 1))


def general(raw: bytes) -> entry_format.Envelope | str:
    try:
        return _decode_general(raw)
    except InvalidEntryError as e:
        return e.reason.value


def assert_agree(raw: bytes) -> None:
    fast = _read_common_envelope(raw)
    if fast is not None:
        assert fast == general(raw)


@given(seq=uints, ts=uints, ptype=uints, psize=uints, version=st.sampled_from([0, 1, 2, True]),
       prev=st.one_of(st.none(), st.binary(min_size=31, max_size=33)),
       author=st.binary(min_size=31, max_size=33), phash=st.binary(min_size=31, max_size=33),
       extra=st.lists(st.one_of(st.none(), st.integers(0, 3), st.binary(max_size=3)), max_size=1))
@settings(max_examples=400)
def test_fast_and_general_paths_agree_on_any_field_values(seq, ts, ptype, psize, version, prev, author, phash,
                                                          extra) -> None:
    fields = [version, author, seq, prev, ts, ptype, psize, phash, *extra]
    raw = canonical.pack(fields) + b"\x01" * SIGNATURE_SIZE
    assert_agree(raw)


def valid_envelope(seq: int, ts: int, text: str) -> bytes:
    prev = None if seq == 1 else b"\x02" * 32
    return entry_format.create_entry(IDENTITY, seq=seq, prev=prev, timestamp_ms=ts, payload_type=1,
                                     payload={"text": text}).envelope.raw


envelopes = st.builds(valid_envelope, st.sampled_from([1, 2, 127, 128, 300, 70_000, 2**33]),
                      st.sampled_from([0, 200, 1_800_000_000_000]), st.text(max_size=20))


@given(raw=envelopes, data=st.data())
@settings(max_examples=400)
def test_fast_and_general_paths_agree_on_damaged_envelopes(raw: bytes, data: st.DataObject) -> None:
    body = bytearray(raw[:-SIGNATURE_SIZE])
    for _ in range(data.draw(st.integers(1, 3))):
        where = data.draw(st.integers(0, len(body)))
        action = data.draw(st.sampled_from(["flip", "insert", "delete"]))
        if action == "flip" and where < len(body):
            body[where] = data.draw(st.integers(0, 255))
        elif action == "insert":
            body.insert(where, data.draw(st.integers(0, 255)))
        elif where < len(body):
            del body[where]
    assert_agree(bytes(body) + raw[-SIGNATURE_SIZE:])


@given(raw=envelopes)
def test_every_valid_envelope_takes_the_fast_path(raw: bytes) -> None:
    # Not vacuous: the agreement tests above mean something only if valid bytes get here.
    fast = _read_common_envelope(raw)
    assert fast is not None and fast == general(raw)


def test_non_canonical_forms_fall_back_and_are_refused() -> None:
    good = valid_envelope(5, 1_800_000_000_000, "x")
    body = good[:-SIGNATURE_SIZE]
    # seq 5 as a uint8 (0xcc 0x05) instead of a fixint: valid msgpack, not canonical.
    at = body.index(b"\x05", 36)
    padded = body[:at] + b"\xcc\x05" + body[at + 1:] + good[-SIGNATURE_SIZE:]
    assert _read_common_envelope(padded) is None
    assert general(padded) == "non_canonical"
    # The author as str instead of bin.
    as_str = body[:2] + b"\xd9\x20" + body[4:] + good[-SIGNATURE_SIZE:]
    assert _read_common_envelope(as_str) is None
    assert general(as_str) in ("bad_field", "malformed")
