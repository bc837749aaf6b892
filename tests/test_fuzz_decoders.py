"""Fuzzing every decoder of bytes from outside (issue 11, point 9): any input gives a value
or the decoder's documented error type, never another exception.

Each decoder gets noise, inputs shaped like its format (so the checks past the first are
reached) and mutations of valid inputs. The budget is the Hypothesis profile's
(tests/conftest.py).
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from fuzzing import KEY, INTS, message_maps, mutated, packed, values
from murmurate.crypto import InvalidIdError, SigningIdentity, decode_id, encode_id
from murmurate.crypto.private import PrivateBoxError, read_container
from murmurate.node.core import framing, rpc, sync
from murmurate.node.core.contact import Contact, encode_contact, parse_contact
from murmurate.node.core.media import named_blobs
from murmurate.node.core.views import parse_ref
from murmurate.node.errors import UsageError
from murmurate.node.relay import protocol as relay
from murmurate.store import canonical, post_index, read_ref
from murmurate.store.payloads import target_id, target_seq
from murmurate.store.entry import (PayloadType, create_entry, decode_envelope, decode_frame,
                                   decode_payload_bytes, encode_frame)
from murmurate.store.errors import InvalidEntryError

ALICE = SigningIdentity(bytes([1]) * 32)
T0 = 1_700_000_000_000


def _valid_frames() -> list[bytes]:
    first = create_entry(ALICE, seq=1, prev=None, timestamp_ms=T0, payload_type=PayloadType.POST,
                         payload={"text": "hello", "tags": ["a"], "reply": [bytes(32), 3]})
    second = create_entry(ALICE, seq=2, prev=first.envelope.hash, timestamp_ms=T0 + 1,
                          payload_type=PayloadType.BOOST, payload={"target": [ALICE.public_key, 1]})
    return [encode_frame(first), encode_frame(second), encode_frame(first._replace(payload=None))]


FRAMES = _valid_frames()
ENVELOPES = [decode_frame(f).envelope.raw for f in FRAMES]


# -- canonical msgpack, entries, payloads ---------------------------------------------------

@given(st.one_of(st.binary(max_size=300), mutated([canonical.pack({"a": [1, b"x", None]}), *FRAMES])))
def test_canonical_unpack_gives_a_value_or_a_canonical_error(data: bytes) -> None:
    try:
        value = canonical.unpack(data)
    except canonical.CanonicalError as e:
        assert e.kind in ("malformed", "trailing", "non_canonical")
        return
    assert canonical.pack(value) == data  # what is accepted is exactly canonical


@given(st.one_of(st.binary(max_size=400), mutated(FRAMES), packed(st.lists(values(), max_size=3)),
                 packed(st.tuples(st.one_of(st.binary(max_size=300), *(st.just(e) for e in ENVELOPES)),
                                  st.one_of(st.none(), st.binary(max_size=50), values())).map(list))))
def test_decode_frame_gives_an_entry_or_an_invalid_entry_error(data: bytes) -> None:
    try:
        decode_frame(data)
    except InvalidEntryError:
        pass


def _envelope_bodies() -> st.SearchStrategy[bytes]:
    field = st.one_of(values(), KEY, INTS)
    return st.lists(field, min_size=0, max_size=10).map(lambda fields: canonical.pack(fields) + bytes(64))


@given(st.one_of(st.binary(max_size=300), mutated(ENVELOPES), _envelope_bodies()))
def test_decode_envelope_gives_an_envelope_or_an_invalid_entry_error(data: bytes) -> None:
    try:
        decode_envelope(data)
    except InvalidEntryError:
        pass


PAYLOAD_FIELDS = ["text", "cw", "lang", "reply", "root", "quote", "mentions", "tags", "media", "vis", "target",
                  "id", "name", "bio", "avatar", "relays", "pinned", "blob", "size", "mime", "alt"]
PAYLOADS = st.dictionaries(st.sampled_from(PAYLOAD_FIELDS), st.one_of(
    values(), st.lists(st.tuples(KEY, INTS).map(list), max_size=3), st.tuples(KEY, INTS).map(list),
    st.lists(st.fixed_dictionaries({}, optional={"blob": st.one_of(KEY, values()), "size": INTS,
                                                  "mime": st.text(max_size=5), "alt": st.text(max_size=5)}),
             max_size=3)), max_size=8)


@given(st.one_of(st.binary(max_size=200), packed(values()), packed(PAYLOADS)))
def test_decode_payload_bytes_gives_a_map_or_an_invalid_entry_error(data: bytes) -> None:
    try:
        value = decode_payload_bytes(data)
    except InvalidEntryError:
        return
    assert isinstance(value, dict)


@given(PAYLOADS, st.sampled_from([int(t) for t in PayloadType] + [4000]))
def test_payload_readers_take_any_map(payload: dict[str, Any], ptype: int) -> None:
    """Known types with fields of the wrong shape are read as nothing, never an error."""
    post_index(payload)
    target_id(payload)
    target_seq(payload)
    read_ref(payload.get("target"))
    named_blobs(ptype, payload)


# -- the sync protocol and framing ----------------------------------------------------------

SYNC_MAPS = message_maps(["want", "heads", "entries", "done", "error"], ["feeds", "live", "author", "frames", "message"])


def _sync_feeds() -> st.SearchStrategy[dict[str, Any]]:
    want_feed = st.tuples(st.one_of(KEY, values()), INTS, st.one_of(st.none(), INTS)).map(list)
    return st.one_of(
        st.fixed_dictionaries({"t": st.just("want"), "feeds": st.lists(want_feed, max_size=4)},
                              optional={"live": values()}),
        st.fixed_dictionaries({"t": st.just("heads"), "feeds": st.lists(st.tuples(KEY, INTS).map(list), max_size=4)}),
        st.fixed_dictionaries({"t": st.just("entries"), "author": st.one_of(KEY, st.just(ALICE.public_key)),
                               "frames": st.lists(st.one_of(st.sampled_from(FRAMES), st.binary(max_size=50)),
                                                  max_size=3)}))


@given(st.one_of(st.binary(max_size=200), packed(SYNC_MAPS), packed(_sync_feeds())))
def test_sync_decode_gives_a_message_or_a_protocol_error(data: bytes) -> None:
    try:
        sync.decode(data)
    except sync.SyncProtocolError:
        pass


@given(st.lists(_sync_feeds().map(canonical.pack), min_size=1, max_size=5), st.booleans())
def test_a_client_session_takes_any_messages_or_raises_a_protocol_error(bodies: list[bytes], live: bool) -> None:
    """A server may send anything after our want: the session accepts it or says what is wrong."""
    want = sync.Want((sync.FeedWant(ALICE.public_key, 0, None),), False)
    session: Any = sync.LiveSession({ALICE.public_key: 1}) if live else sync.ClientSession(want)
    for body in [canonical.pack({"t": "heads", "feeds": [[ALICE.public_key, 2]]})] + bodies:
        try:
            session.on_message(sync.decode(body))
        except (sync.SyncProtocolError, sync.SyncRefused):
            return


@given(st.lists(st.binary(max_size=40), max_size=8), st.integers(1, 64))
def test_the_frame_decoder_gives_frames_or_a_frame_error_however_bytes_are_cut(pieces: list[bytes], limit: int) -> None:
    decoder = framing.FrameDecoder(limit)
    try:
        for piece in pieces:
            decoder.feed(piece)
            while (frame := decoder.next_frame()) is not None:
                assert len(frame) <= limit
        assert decoder.buffered <= limit + 4
    except framing.FrameError:
        pass


# -- codes, ids, refs -----------------------------------------------------------------------

CONTACT = encode_contact(Contact(ALICE.public_key, ("/ip4/127.0.0.1/tcp/4001",)))
ID_TEXT = encode_id(ALICE.public_key)


def _texts(seed: str) -> st.SearchStrategy[str]:
    return st.one_of(st.text(max_size=120), mutated([seed.encode()]).map(lambda b: b.decode("latin-1")),
                     st.text(alphabet="abcdefghijklmnopqrstuvwxyz234567_", max_size=120).map(lambda t: "mur" + t))


@given(_texts(ID_TEXT))
def test_decode_id_gives_a_key_or_an_invalid_id_error(text: str) -> None:
    try:
        assert len(decode_id(text)) == 32
    except InvalidIdError:
        pass


@given(st.one_of(_texts(CONTACT), st.builds(lambda body: "murc_" + body, st.text(max_size=200))))
def test_parse_contact_gives_a_contact_or_an_invalid_id_error(text: str) -> None:
    try:
        parse_contact(text)
    except InvalidIdError:
        pass


@given(st.one_of(st.text(max_size=100), st.builds(lambda s: f"{ID_TEXT}/{s}", st.text(max_size=30)),
                 st.builds(lambda n: f"{ID_TEXT}/{n}", st.integers(-5, 2**70)), values()))
def test_parse_ref_gives_a_ref_or_a_usage_error(text: Any) -> None:
    try:
        ref = parse_ref(text)
    except UsageError:
        return
    assert 1 <= ref.seq < 2**64


# -- the relay protocol ---------------------------------------------------------------------

RELAY_CODE = relay.encode_code(relay.RelayCode(ALICE.public_key, ("/ip4/127.0.0.1/tcp/4001",), bytes(16)))


@given(st.one_of(_texts(RELAY_CODE), st.builds(lambda body: "murr_" + body, st.text(max_size=200))))
def test_parse_relay_code_gives_a_code_or_an_invalid_id_error(text: str) -> None:
    try:
        relay.parse_code(text)
    except InvalidIdError:
        pass


@given(st.one_of(st.binary(max_size=200), packed(message_maps(["join", "status", "ok", "refused"],
                                                               ["token", "time", "sig", "user", "code", "message"]))))
def test_relay_decode_gives_a_message_or_a_protocol_error(data: bytes) -> None:
    try:
        relay.decode(data)
    except relay.RelayProtocolError:
        pass


# -- private-post containers ----------------------------------------------------------------

@given(st.one_of(st.binary(max_size=300), st.binary(min_size=2, max_size=300).map(lambda b: b"\x01" + b[1:])))
def test_read_container_gives_info_or_a_private_box_error(data: bytes) -> None:
    try:
        read_container(data)
    except PrivateBoxError:
        pass


# -- local API lines ------------------------------------------------------------------------

JSON = st.recursive(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=10)),
                    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=6), inner,
                                                                                          max_size=4)), max_leaves=15)


@given(st.one_of(st.binary(max_size=200), JSON.map(lambda v: json.dumps(v).encode()),
                 st.fixed_dictionaries({"jsonrpc": st.one_of(st.just("2.0"), JSON), "id": JSON, "method": JSON,
                                        "params": JSON}).map(lambda v: json.dumps(v).encode())))
def test_parse_request_gives_a_request_or_an_rpc_error(line: bytes) -> None:
    try:
        request = rpc.parse_request(line)
    except rpc.RpcError as e:
        assert e.code in (rpc.PARSE_ERROR, rpc.INVALID_REQUEST, rpc.INVALID_PARAMS)
        return
    assert isinstance(request.params, dict) and isinstance(request.method, str)

