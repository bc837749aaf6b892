"""Pure cores of the node: framing, the sync protocol's messages and checks, JSON-RPC lines,
contact codes, bootstrap lists. In-memory only: no sockets, no clocks."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from murmurate.crypto import InvalidIdError, SigningIdentity, encode_id
from murmurate.node.core import framing, rpc, sync
from murmurate.node.core.bootstrap import parse_bootstrap
from murmurate.node.core.contact import Contact, encode_contact, parse_contact
from murmurate.node.core.sync import ClientSession, Done, Entries, FeedWant, Heads, SyncProtocolError, Want
from murmurate.store import PayloadType, canonical, create_entry, encode_frame

ALICE = SigningIdentity(bytes([7]) * 32)


def chain(n: int, identity: SigningIdentity = ALICE) -> list[bytes]:
    frames, prev = [], None
    for seq in range(1, n + 1):
        entry = create_entry(identity, seq=seq, prev=prev, timestamp_ms=1_000 + seq,
                             payload_type=PayloadType.POST, payload={"text": f"post {seq}"})
        prev = entry.envelope.hash
        frames.append(encode_frame(entry))
    return frames


# -- framing ----------------------------------------------------------------------------------

@given(st.lists(st.binary(max_size=300), max_size=20), st.data())
def test_frames_survive_any_slicing(bodies: list[bytes], data: st.DataObject) -> None:
    wire = b"".join(framing.encode(b) for b in bodies)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=10)))
    decoder = framing.FrameDecoder(max_frame=300)
    out, last = [], 0
    for cut in [*cuts, len(wire)]:
        decoder.feed(wire[last:cut])
        last = cut
        while (frame := decoder.next_frame()) is not None:
            out.append(frame)
    assert out == bodies and decoder.at_boundary()


def test_oversized_frame_is_refused_before_its_body_arrives() -> None:
    decoder = framing.FrameDecoder(max_frame=1000)
    with pytest.raises(framing.FrameError):
        decoder.feed((1001).to_bytes(4, "big"))
    assert decoder.buffered == 4  # nothing of the body was waited for or kept


# -- sync messages ----------------------------------------------------------------------------

def test_messages_round_trip() -> None:
    messages = [Want((FeedWant(ALICE.public_key, 3, None), FeedWant(bytes(32), 0, 9))),
                Want((FeedWant(ALICE.public_key, 3, None),), live=True),
                Heads(((ALICE.public_key, 5),)), Entries(ALICE.public_key, tuple(chain(2))), Done(),
                sync.Error("no")]
    for message in messages:
        assert sync.decode(sync.encode(message)) == message


def test_want_frames_match_the_protocol_document() -> None:
    # docs/protocol.md 12.2, the two examples: a plain want is byte for byte what it was
    # before live wants existed; a live one adds "live": true in key order.
    feed = (FeedWant(bytes(32), 0),)
    zeros = "c4 20 " + "00 " * 32
    assert framing.encode(sync.encode(Want(feed))).hex(" ") == (
        "00 00 00 34 82 a5 66 65 65 64 73 91 93 " + zeros + "00 c0 a1 74 a4 77 61 6e 74")
    assert framing.encode(sync.encode(Want(feed, live=True))).hex(" ") == (
        "00 00 00 3a 83 a5 66 65 65 64 73 91 93 " + zeros + "00 c0 a4 6c 69 76 65 c3 a1 74 a4 77 61 6e 74")


def test_live_entries_follow_on_in_order_and_only_for_wanted_feeds() -> None:
    frames = chain(4)
    live = sync.LiveSession({ALICE.public_key: 3})
    assert [e.envelope.seq for e in live.on_message(Entries(ALICE.public_key, tuple(frames[2:4])))] == [3, 4]
    with pytest.raises(SyncProtocolError):
        live.on_message(Entries(ALICE.public_key, (frames[0],)))     # goes back
    with pytest.raises(SyncProtocolError):
        live.on_message(Entries(bytes(32), (frames[0],)))            # a feed not wanted
    with pytest.raises(SyncProtocolError):
        live.on_message(Done())                                      # only entries on a live stream
    assert sync.live_ranges({ALICE.public_key: 4}, {ALICE.public_key: 6, bytes(32): 9}) == [(ALICE.public_key, 5, 6)]


@pytest.mark.parametrize("value", [
    [], {"t": 1}, {"t": "nope"}, {"t": "want"}, {"t": "want", "feeds": [[b"x", 0, None]]},
    {"t": "want", "feeds": [[bytes(32), -1, None]]}, {"t": "want", "feeds": [[bytes(32), 5, 5]]},
    {"t": "entries", "author": bytes(32), "frames": []}, {"t": "entries", "author": bytes(32), "frames": ["s"]},
    {"t": "heads", "feeds": [[bytes(32)]]}, {"t": "want", "feeds": [[bytes(32), 0, None]], "live": 1},
    {"t": "want", "feeds": [[bytes(32), 0, 5]], "live": True},
])
def test_malformed_messages_are_protocol_errors(value: object) -> None:
    with pytest.raises(SyncProtocolError):
        sync.decode(canonical.pack(value))


@given(st.binary(max_size=200))
def test_garbage_never_raises_anything_but_a_protocol_error(data: bytes) -> None:
    try:
        sync.decode(data)
    except SyncProtocolError:
        pass


def test_plan_serve_sends_only_what_is_missing() -> None:
    a, b, c = bytes([1]) * 32, bytes([2]) * 32, bytes([3]) * 32
    want = Want((FeedWant(a, 3), FeedWant(b, 0, 4), FeedWant(c, 0)))
    heads, ranges = sync.plan_serve(want, {a: 10, b: 10})
    assert heads == Heads(((a, 10), (b, 10)))
    assert ranges == [(a, 4, 10), (b, 1, 4)]
    assert sync.plan_serve(Want((FeedWant(a, 10),)), {a: 10})[1] == []


def test_client_session_accepts_what_was_asked_in_order() -> None:
    frames = chain(5)
    session = ClientSession(Want((FeedWant(ALICE.public_key, 2),)))
    assert session.on_message(Heads(((ALICE.public_key, 5),))) == []
    got = session.on_message(Entries(ALICE.public_key, tuple(frames[2:4])))
    got += session.on_message(Entries(ALICE.public_key, (frames[4],)))
    assert [e.envelope.seq for e in got] == [3, 4, 5]
    session.on_message(Done())
    assert session.done


@pytest.mark.parametrize("case", ["out_of_order", "not_asked", "beyond_head", "before_heads", "garbage_frame",
                                  "after_done", "beyond_upto"])
def test_client_session_refuses_what_was_not_asked(case: str) -> None:
    frames = chain(5)
    other = SigningIdentity(bytes([8]) * 32)
    upto = 3 if case == "beyond_upto" else None
    session = ClientSession(Want((FeedWant(ALICE.public_key, 0, upto),)))
    if case != "before_heads":
        session.on_message(Heads(((ALICE.public_key, 4),)))
    bad = {
        "out_of_order": Entries(ALICE.public_key, (frames[1],)),
        "not_asked": Entries(other.public_key, tuple(chain(1, other))),
        "beyond_head": Entries(ALICE.public_key, tuple(frames[:5])),
        "before_heads": Entries(ALICE.public_key, (frames[0],)),
        "garbage_frame": Entries(ALICE.public_key, (b"\x93garbage",)),
        "after_done": None,
        "beyond_upto": Entries(ALICE.public_key, tuple(frames[:4])),
    }[case]
    if case == "after_done":
        session.on_message(Done())
        bad = Done()
    with pytest.raises(SyncProtocolError):
        session.on_message(bad)


def test_batches_respect_both_limits() -> None:
    frames = [bytes(2000)] * 1200
    out = sync.batches(ALICE.public_key, frames)
    assert sum(len(b.frames) for b in out) == 1200
    assert all(len(b.frames) <= sync.MAX_BATCH_ENTRIES for b in out)
    assert all(sum(map(len, b.frames)) <= sync.MAX_BATCH_BYTES for b in out)
    assert all(len(sync.encode(b)) <= sync.MAX_MESSAGE_BYTES for b in out)


# -- JSON-RPC ---------------------------------------------------------------------------------

def test_rpc_parse_and_encode() -> None:
    request = rpc.parse_request(b'{"jsonrpc":"2.0","id":7,"method":"post","params":{"text":"hi"}}')
    assert (request.id, request.method, request.params) == (7, "post", {"text": "hi"})
    assert json.loads(rpc.encode_result(7, {"ok": True})) == {"jsonrpc": "2.0", "id": 7, "result": {"ok": True}}
    assert rpc.encode_notification("event", {}).endswith(b"\n")


@pytest.mark.parametrize("line, code", [
    (b"{not json", rpc.PARSE_ERROR), (b"[1,2]", rpc.INVALID_REQUEST),
    (b'{"jsonrpc":"1.0","id":1,"method":"x"}', rpc.INVALID_REQUEST),
    (b'{"jsonrpc":"2.0","id":1,"method":""}', rpc.INVALID_REQUEST),
    (b'{"jsonrpc":"2.0","id":1,"method":"x","params":[1]}', rpc.INVALID_PARAMS),
    (b'{"jsonrpc":"2.0","id":true,"method":"x"}', rpc.INVALID_REQUEST),
    (b"\xff\xfe", rpc.PARSE_ERROR),
])
def test_rpc_refuses_bad_requests_with_the_right_code(line: bytes, code: int) -> None:
    with pytest.raises(rpc.RpcError) as info:
        rpc.parse_request(line)
    assert info.value.code == code


# -- contact codes and bootstrap lists --------------------------------------------------------

@settings(max_examples=50)
@given(st.binary(min_size=32, max_size=32),
       st.lists(st.from_regex(r"/ip4/1\.2\.3\.[0-9]{1,3}/tcp/[0-9]{1,5}", fullmatch=True), max_size=4))
def test_contact_codes_round_trip(key: bytes, addrs: list[str]) -> None:
    contact = Contact(key, tuple(addrs))
    assert parse_contact(encode_contact(contact)) == contact


def test_contact_code_typo_is_refused_and_plain_ids_work() -> None:
    code = encode_contact(Contact(ALICE.public_key, ("/ip4/127.0.0.1/tcp/4001",)))
    typo = code[:20] + ("a" if code[20] != "a" else "b") + code[21:]
    with pytest.raises(InvalidIdError):
        parse_contact(typo)
    assert parse_contact(encode_id(ALICE.public_key)) == Contact(ALICE.public_key, ())


def test_bootstrap_list_skips_bad_entries_and_says_why() -> None:
    text = """
[[peer]]
name = "good"
addrs = ["/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWabc"]
relay = true
[[peer]]
addrs = ["/ip4/127.0.0.1/tcp/4002"]
[[peer]]
addrs = ["/ip4/127.0.0.1/tcp/1/p2p/A", "/ip4/127.0.0.1/tcp/2/p2p/B"]
"""
    parsed = parse_bootstrap(text)
    assert [p.name for p in parsed.peers] == ["good"] and parsed.peers[0].relay
    assert parsed.peers[0].peer_id == "12D3KooWabc"
    assert len(parsed.problems) == 2
    assert parse_bootstrap("peer = [").peers == () and parse_bootstrap("peer = [").problems
