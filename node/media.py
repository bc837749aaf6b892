"""Media: attaching files as blobs, and the blob protocol `/murmurate/blob/1.0.0`.

Over one stream, frames (node/core/framing.py) of canonical msgpack maps:

    client -> server   {"t": "get", "hash": bin32, "from": uint}      chunk index to start at
    server -> client   {"t": "size", "size": uint}   or   {"t": "missing"}
                       {"t": "chunk", "i": uint, "data": bin}  ...  (64 KiB chunks, in order)
                       {"t": "done"}

The client stores chunks as they come (a few at a time, never the whole blob in memory),
then checks the blob's BLAKE2b-256 against the hash it asked for: a mismatch, a size over
the limit or chunks out of order drop what was received and cut the peer off.
"""

from __future__ import annotations

import hashlib
import logging
import mimetypes
import os
import stat
from pathlib import Path
from typing import Any

import trio

from murmurate.store import canonical
from murmurate.store.blobs import CHUNK_SIZE, HASH_SIZE, MAX_BLOB_SIZE, BlobError

from .core import framing
from .core.media import MAX_ALT_CHARS
from .errors import UsageError
from .p2p import P2PError, P2PHost, Stream
from .writer import StoreWriter

PROTOCOL = "/murmurate/blob/1.0.0"
MAX_MESSAGE = CHUNK_SIZE + 1024
FIRST_MESSAGE_TIMEOUT_S = 10.0  # a blob stream must bring its request this soon (budget)
_WRITE_GROUP = 16  # chunks per write transaction: at most 1 MiB held while receiving

log = logging.getLogger("murmurate.media")


class BlobProtocolError(Exception):
    """A peer broke the blob protocol or sent bytes that are not the blob asked for."""


async def attach(writer: StoreWriter, path: str, *, alt: str = "", mime: str | None = None) -> dict[str, Any]:
    """Store a file as a blob (two streaming passes: hash, then chunks). Returns its media ref."""
    file = Path(path)
    try:
        st = file.stat()
    except OSError as e:
        raise UsageError(f"cannot read {path}: {e.strerror}") from None
    # Only regular files: a device (/dev/zero) or a pipe has no size and may never end.
    if not stat.S_ISREG(st.st_mode):
        raise UsageError(f"{path} is not a regular file")
    if st.st_size > MAX_BLOB_SIZE:
        raise UsageError(f"{path} is {st.st_size} bytes; media may be at most {MAX_BLOB_SIZE} bytes")
    if len(alt) > MAX_ALT_CHARS:
        raise UsageError(f"alt text is at most {MAX_ALT_CHARS} characters")
    digest, size = await trio.to_thread.run_sync(_hash_file, file, MAX_BLOB_SIZE)
    if writer.view.blob_size(digest) is None:
        with open(file, "rb") as f:
            index = 0
            while True:
                group = []
                for _ in range(_WRITE_GROUP):
                    # A file that grew since it was hashed is cut at the hashed size, and then
                    # does not match its hash: finish_blob refuses it and drops the chunks.
                    data = f.read(max(0, min(CHUNK_SIZE, size - index * CHUNK_SIZE)))
                    if not data:
                        break
                    group.append((index, data))
                    index += 1
                if not group:
                    break
                await writer.call(lambda store, g=group: store.put_blob_chunks(digest, g))
        await writer.call(lambda store: store.finish_blob(digest))
    kind = mime or mimetypes.guess_type(file.name)[0] or "application/octet-stream"
    return {"blob": digest.hex(), "size": size, "mime": kind[:100], "alt": alt}


async def save_blob(writer: StoreWriter, blob: bytes, out: str) -> int:
    """Write a stored blob to a file, chunk by chunk. Returns its size."""
    if Path(out).exists() and not Path(out).is_file():  # never rename over /dev/null or a FIFO
        raise UsageError(f"{out} exists and is not a regular file")
    store = writer.view
    size = store.blob_size(blob)
    if size is None:
        raise UsageError("that blob is not stored here")
    tmp = Path(out).with_name(f".{Path(out).name}.part")
    with open(tmp, "wb") as f:
        index = 0
        while True:
            chunks = await trio.to_thread.run_sync(store.blob_chunks, blob, index, 16)
            if not chunks:
                break
            for i, data in chunks:
                f.write(data)
                index = i + 1
    os.replace(tmp, out)
    return size


# -- the protocol ---------------------------------------------------------------------------------

async def serve_blob(writer: StoreWriter, stream: Stream) -> None:
    channel = _Channel(stream)
    try:
        with trio.fail_after(FIRST_MESSAGE_TIMEOUT_S):
            request = await channel.receive()
        blob, start = request.get("hash"), request.get("from", 0)
        # `from` is a chunk index: at most the chunks of the largest blob (a larger one
        # overflowed the store's u32 chunk keys and raised out of the handler).
        if request.get("t") != "get" or not isinstance(blob, bytes) or len(blob) != HASH_SIZE \
                or type(start) is not int or not 0 <= start <= MAX_BLOB_SIZE // CHUNK_SIZE + 1:
            raise BlobProtocolError("bad request")
        size = writer.view.blob_size(blob)
        if size is None:
            await channel.send({"t": "missing"})
            return
        await channel.send({"t": "size", "size": size})
        index = start
        while True:
            chunks = await trio.to_thread.run_sync(writer.view.blob_chunks, blob, index, 16)
            if not chunks:
                break
            for i, data in chunks:
                await channel.send({"t": "chunk", "i": i, "data": data})
                index = i + 1
        await channel.send({"t": "done"})
        await stream.close()
    except (BlobProtocolError, framing.FrameError) as e:
        log.info("blob request from %s refused: %s", stream.remote_peer, e)
        await stream.reset()
    except P2PError as e:
        log.info("serving a blob to %s ended: %s", stream.remote_peer, e)
    except trio.TooSlowError:
        log.info("blob stream from %s sent no request in time", stream.remote_peer)
        await stream.reset()


async def fetch_blob(host: P2PHost, writer: StoreWriter, peer_id: str, blob: bytes) -> int | None:
    """Fetch a blob from one peer. Returns its size, None if the peer lacks it.

    Raises BlobProtocolError (nothing kept) or P2PError.
    """
    stream = await host.open_stream(peer_id, PROTOCOL)
    channel = _Channel(stream)
    try:
        await channel.send({"t": "get", "hash": blob, "from": 0})
        with trio.fail_after(30):
            first = await channel.receive()
        if first.get("t") == "missing":
            return None
        size = first.get("size")
        if first.get("t") != "size" or not isinstance(size, int) or not 0 <= size <= MAX_BLOB_SIZE:
            raise BlobProtocolError("bad size announcement")
        expected, group, received = 0, [], 0
        while True:
            with trio.fail_after(30):
                message = await channel.receive()
            if message.get("t") == "done":
                break
            data = message.get("data")
            if message.get("t") != "chunk" or type(message.get("i")) is not int or message.get("i") != expected \
                    or not isinstance(data, bytes):  # (type: True == 1, but is not a chunk index)
                raise BlobProtocolError("chunks out of order or malformed")
            received += len(data)
            if received > size:
                raise BlobProtocolError("more bytes than announced")
            group.append((expected, data))
            expected += 1
            if len(group) >= _WRITE_GROUP:
                await writer.call(lambda store, g=group: store.put_blob_chunks(blob, g))
                group = []
        if group:
            await writer.call(lambda store, g=group: store.put_blob_chunks(blob, g))
        try:
            return await writer.call(lambda store: store.finish_blob(blob))
        except BlobError as e:
            raise BlobProtocolError(str(e)) from None
    except BaseException:
        with trio.CancelScope(shield=True):
            await writer.call(lambda store: store.discard_partial_blob(blob))
            with trio.move_on_after(1):  # a stuck reset must not hold the task forever
                await stream.reset()
        raise
    finally:
        await stream.close()


def _hash_file(path: Path, cap: int) -> tuple[bytes, int]:
    """The file's hash and size, reading at most `cap` bytes: a file that grows past the
    cap while it is read (its stat said less) is refused, not read forever."""
    digest = hashlib.blake2b(digest_size=HASH_SIZE)
    size = 0
    with open(path, "rb") as f:
        while data := f.read(min(1 << 20, cap + 1 - size)):
            size += len(data)
            if size > cap:
                raise UsageError(f"{path} grew while it was read; media may be at most {cap} bytes")
            digest.update(data)
    return digest.digest(), size


class _Channel:
    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.decoder = framing.FrameDecoder(MAX_MESSAGE)

    async def send(self, message: dict[str, Any]) -> None:
        await self.stream.write(framing.encode(canonical.pack(message)))

    async def receive(self) -> dict[str, Any]:
        while True:
            frame = self.decoder.next_frame()
            if frame is not None:
                await self.stream.hold(self.decoder.buffered)
                try:
                    value = canonical.unpack(frame)
                except canonical.CanonicalError as e:
                    raise BlobProtocolError(f"not canonical msgpack: {e}") from None
                if not isinstance(value, dict):
                    raise BlobProtocolError("a message is a map")
                return value
            data = await self.stream.read(MAX_MESSAGE)
            if not data:
                raise BlobProtocolError("stream ended early")
            try:
                self.decoder.feed(data)
            except framing.FrameError as e:
                raise BlobProtocolError(str(e)) from None
            await self.stream.hold(self.decoder.buffered)  # a partial frame is charged to the budget
