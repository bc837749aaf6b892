"""The blob protocol between real hosts: honest transfer, and peers that lie about a blob."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import trio

from murmurate.node import media
from murmurate.node.core import framing
from murmurate.node.p2p import Stream
from murmurate.store import canonical
from murmurate.store import blobs
from murmurate.store.blobs import CHUNK_SIZE
from test_replication_inprocess import node

pytestmark = pytest.mark.network  # real libp2p hosts or daemons


def send(message: dict) -> bytes:
    return framing.encode(canonical.pack(message))


async def test_a_blob_is_fetched_in_chunks_and_checked(tmp_path: Path) -> None:
    data = bytes(range(256)) * 1000  # 256,000 bytes: 4 chunks
    source = tmp_path / "f.bin"
    source.write_bytes(data)
    async with node(tmp_path, "a", 1) as a, node(tmp_path, "b", 2) as b:
        a.host.serve(media.PROTOCOL, lambda s: media.serve_blob(a.writer, s))
        ref = await media.attach(a.writer, str(source), alt="x")
        blob = bytes.fromhex(ref["blob"])
        assert blob == hashlib.blake2b(data, digest_size=32).digest()
        await b.host.dial(a.host.addrs()[0])
        assert await media.fetch_blob(b.host, b.writer, a.host.peer_id, blob) == len(data)
        await media.save_blob(b.writer, blob, str(tmp_path / "out.bin"))
        assert (tmp_path / "out.bin").read_bytes() == data
        assert await media.fetch_blob(b.host, b.writer, a.host.peer_id, bytes(32)) is None  # a lacks it


@pytest.mark.parametrize("lie", ["wrong_bytes", "too_many_bytes", "out_of_order", "garbage"])
async def test_a_lying_peer_leaves_nothing_behind(tmp_path: Path, lie: str) -> None:
    real = b"the real picture" * 5000
    blob = hashlib.blake2b(real, digest_size=32).digest()

    async def evil(stream: Stream) -> None:
        await stream.read(1 << 16)
        if lie == "garbage":
            await stream.write(b"\x00\x00\x00\x03abc")
        else:
            size = len(real) if lie != "too_many_bytes" else 10
            await stream.write(send({"t": "size", "size": size}))
            fake = b"x" * len(real) if lie == "wrong_bytes" else real
            chunks = [fake[i:i + CHUNK_SIZE] for i in range(0, len(fake), CHUNK_SIZE)]
            for i, chunk in enumerate(chunks):
                index = i if lie != "out_of_order" else len(chunks) - 1 - i
                await stream.write(send({"t": "chunk", "i": index, "data": chunk}))
            await stream.write(send({"t": "done"}))
        await stream.close()

    async with node(tmp_path, "b", 2) as b, node(tmp_path, "evil", 66) as e:
        e.host.serve(media.PROTOCOL, evil)
        await b.host.dial(e.host.addrs()[0])
        with pytest.raises(media.BlobProtocolError):
            with trio.fail_after(20):
                await media.fetch_blob(b.host, b.writer, e.host.peer_id, blob)
        assert b.store.blob_size(blob) is None
        with b.store._env.begin() as txn:  # not one chunk of the lie is left
            assert list(blobs.read_chunks(txn, b.store._env.db["blobs"], blob)) == []
