"""Store methods the network layer uses: raw frames for serving, heads, the peer book."""

from __future__ import annotations

import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from murmurate.crypto import SigningIdentity
from murmurate.store import Entry, Envelope, PayloadType, Store, decode_frame, encode_frame, entry_frame_size
from murmurate.store.entry import frame_size


def test_frames_are_the_stored_entries_byte_for_byte(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    me = SigningIdentity(bytes(range(32)))
    for i in range(10):
        store.append_own(me, PayloadType.POST, {"text": f"post {i}"}, 1_000 + i)
    store.append_own(me, PayloadType.DELETE, {"target": 3}, 2_000)
    frames = store.frames(me.public_key, 2, 5)
    assert [decode_frame(f).envelope.seq for f in frames] == [2, 3, 4, 5]
    for frame in frames:
        seq = decode_frame(frame).envelope.seq
        assert frame == encode_frame(store.get(me.public_key, seq).entry)
    assert decode_frame(frames[1]).payload is None  # entry 3 was deleted: served without payload
    assert store.frames(me.public_key, 11, 20) == [encode_frame(store.get(me.public_key, 11).entry)]
    assert store.frames(me.public_key, 12, 20) == []
    assert store.frames(os.urandom(32), 1, 5) == []


def test_heads_and_peer_book(tmp_path: Path) -> None:
    store = Store(tmp_path / "s")
    a, b = SigningIdentity(bytes([1]) * 32), SigningIdentity(bytes([2]) * 32)
    for i in range(3):
        store.append_own(a, PayloadType.POST, {"text": "x"}, 10 + i)
    store.append_own(b, PayloadType.POST, {"text": "y"}, 10)
    assert store.heads([a.public_key, b.public_key, bytes(32)]) == {a.public_key: 3, b.public_key: 1}
    store.put_peer(b"peer-1", {"addrs": ["/ip4/127.0.0.1/tcp/1"]})
    store.close()
    store = Store(tmp_path / "s")
    assert store.peers() == {b"peer-1": {"addrs": ["/ip4/127.0.0.1/tcp/1"]}}


def test_frame_sizes_match_the_frames_without_building_them(tmp_path: Path) -> None:
    # A relay counts quota from frame_sizes: it must agree with frames() byte for byte,
    # across the bin8/bin16 payload sizes and a dropped payload.
    store = Store(tmp_path / "s")
    me = SigningIdentity(bytes(range(32)))
    for i, size in enumerate([0, 200, 240, 260, 1_000, 2_000]):
        store.append_own(me, PayloadType.POST, {"text": "x" * size or "-"}, 1_000 + i)
    store.append_own(me, PayloadType.DELETE, {"target": 2}, 2_000)
    frames = store.frames(me.public_key, 1, 7)
    assert store.frame_sizes(me.public_key, 1, 7) == [len(f) for f in frames]
    assert store.frame_sizes(me.public_key, 3, 4) == [len(f) for f in frames[2:4]]
    assert store.frame_sizes(me.public_key, 8, 9) == [] and store.frame_sizes(os.urandom(32), 1, 5) == []


@given(envelope=st.integers(65, 256), payload=st.one_of(st.none(), st.integers(0, 70_000)))
def test_frame_size_is_the_encoded_length(envelope: int, payload: int | None) -> None:
    entry = Entry(Envelope(b"e" * envelope, b"", 1, None, 0, 1, 0, b"", b""), None if payload is None else b"p" * payload)
    assert entry_frame_size(entry) == frame_size(envelope, payload) == len(encode_frame(entry))
