"""Store methods the network layer uses: raw frames for serving, heads, the peer book."""

from __future__ import annotations

import os
from pathlib import Path

from murmurate.crypto import SigningIdentity
from murmurate.store import PayloadType, Store, decode_frame, encode_frame


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
