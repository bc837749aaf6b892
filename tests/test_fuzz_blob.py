"""Fuzzing both ends of the blob protocol (/murmurate/blob/1.0.0, docs/protocol.md 14)
with a stream double that plays back arbitrary bytes: the server answers or resets the
stream, never raises; the client returns a size, None, or BlobProtocolError, and keeps
nothing of a blob it did not get whole."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
from pathlib import Path
from typing import Any

import pytest
import trio
from hypothesis import given
from hypothesis import strategies as st

from fuzzing import INTS, message_maps, values
from murmurate.node import media
from murmurate.node.core import framing
from murmurate.node.writer import StoreWriter
from murmurate.store import Store, canonical
from murmurate.store.blobs import CHUNK_SIZE

DATA = bytes(range(256)) * 300  # 76,800 bytes: two chunks
BLOB = hashlib.blake2b(DATA, digest_size=32).digest()


class PlayedStream:
    """Reads give back `incoming` in the pieces given; writes are kept."""

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = list(pieces)
        self.written = bytearray()
        self.remote_peer = "fuzz"
        self.was_reset = False

    async def read(self, max_bytes: int = 65536) -> bytes:
        await trio.lowlevel.checkpoint()
        if not self.pieces:
            return b""
        piece = self.pieces.pop(0)
        if len(piece) > max_bytes:
            self.pieces.insert(0, piece[max_bytes:])
            piece = piece[:max_bytes]
        return piece

    async def write(self, data: bytes) -> None:
        await trio.lowlevel.checkpoint()
        self.written += data

    async def hold(self, nbytes: int) -> None:
        """A stream of no host: nothing to charge (node/p2p.py Stream.hold charges the budget)."""
        await trio.lowlevel.checkpoint()

    async def close(self) -> None:
        await trio.lowlevel.checkpoint()

    async def reset(self) -> None:
        self.was_reset = True
        await trio.lowlevel.checkpoint()

    async def hold(self, buffered: int) -> None:
        # The budget's charge for a partial frame (node/p2p.py Stream.hold): nothing to bound here.
        await trio.lowlevel.checkpoint()


class PlayedHost:
    def __init__(self, stream: PlayedStream) -> None:
        self.stream = stream

    async def open_stream(self, peer_id: str, protocol: str) -> PlayedStream:
        return self.stream


@pytest.fixture(scope="module")
def store():
    """One store for every example (opening one per example costs more than the example):
    it holds DATA as a blob, and nothing a fuzzed exchange may leave behind."""
    # In memory when the machine has a tmpfs: every failed fetch is two commits, and an
    # fsync per commit on a busy disk was most of this suite's time.
    shm = Path("/dev/shm")
    folder = Path(tempfile.mkdtemp(prefix="murfuzz-", dir=shm if shm.is_dir() else None))
    try:
        held = Store(folder / "s", map_size=64 << 20)
        source = folder / "f"
        source.write_bytes(DATA)
        _run(held, lambda writer: media.attach(writer, str(source)))
        yield held
        held.close()
    finally:
        shutil.rmtree(folder)


def _run(store: Store, body: Any) -> Any:
    """Run `body(writer)` in trio with a writer on `store`."""
    async def main() -> Any:
        writer = StoreWriter(store)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            with trio.fail_after(30):
                result = await body(writer)
            nursery.cancel_scope.cancel()
        return result
    return trio.run(main)


def _frames(messages: list[bytes], cut: int) -> list[bytes]:
    """Frame the messages, then cut the byte stream into pieces of `cut` bytes (at most
    64 pieces: a 1-byte cut of two 64 KiB chunks only costs time)."""
    data = b"".join(framing.encode(m) for m in messages)
    cut = max(cut, len(data) // 64)
    return [data[i:i + cut] for i in range(0, len(data), cut)] or [b""]


REQUESTS = st.one_of(
    st.fixed_dictionaries({"t": st.just("get"), "hash": st.one_of(st.just(BLOB), st.binary(max_size=33)),
                           "from": st.one_of(INTS, st.booleans(), values())}),
    message_maps(["get"], ["hash", "from"])).map(canonical.pack)


@given(st.lists(st.one_of(REQUESTS, st.binary(max_size=40)), max_size=3), st.integers(1, 70),
       st.booleans())
def test_the_server_answers_or_resets_whatever_it_is_sent(store: Store, messages: list[bytes], cut: int,
                                                          raw: bool) -> None:
    incoming = [b"".join(messages)] if raw else _frames(messages, cut)

    async def body(writer: StoreWriter) -> None:
        await media.serve_blob(writer, PlayedStream(incoming))  # type: ignore[arg-type]

    _run(store, body)


def _server_messages() -> st.SearchStrategy[list[bytes]]:
    chunk = st.fixed_dictionaries({"t": st.just("chunk"), "i": st.one_of(st.integers(0, 3), INTS, st.booleans()),
                                   "data": st.one_of(st.sampled_from([DATA[:CHUNK_SIZE], DATA[CHUNK_SIZE:]]),
                                                     st.binary(max_size=20))})
    size = st.fixed_dictionaries({"t": st.just("size"), "size": st.one_of(st.just(len(DATA)), INTS, values())})
    other = message_maps(["size", "missing", "chunk", "done"], ["size", "i", "data"])
    honest = [{"t": "size", "size": len(DATA)}, {"t": "chunk", "i": 0, "data": DATA[:CHUNK_SIZE]},
              {"t": "chunk", "i": 1, "data": DATA[CHUNK_SIZE:]}, {"t": "done"}]
    return st.one_of(
        st.lists(st.one_of(size, chunk, other, st.just({"t": "done"})), max_size=6),
        st.tuples(st.integers(0, 3), st.one_of(size, chunk, other)).map(
            lambda edit: honest[:edit[0]] + [edit[1]] + honest[edit[0] + 1:]),
    ).map(lambda ms: [canonical.pack(m) for m in ms])


@given(_server_messages(), st.integers(1, 70_000))
def test_the_client_gets_the_blob_or_a_protocol_error_and_keeps_nothing_partial(store: Store, messages: list[bytes],
                                                                               cut: int) -> None:
    wanted = hashlib.blake2b(b"another blob", digest_size=32).digest()
    # The server plays the DATA blob's chunks while the client asks for another hash:
    # whatever it sends must not be kept under the hash asked for.
    async def body(writer: StoreWriter) -> tuple[Any, Any]:
        stream = PlayedStream(_frames(messages, cut))
        try:
            got = await media.fetch_blob(PlayedHost(stream), writer, "fuzz", wanted)  # type: ignore[arg-type]
        except media.BlobProtocolError:
            got = "refused"
        return got, writer.view.blob_size(wanted)

    got, kept = _run(store, body)
    assert got in (None, "refused"), got  # nothing can hash to `wanted`
    assert kept is None
