"""Media blobs: content-addressed by BLAKE2b-256, stored in chunks so a large one is never
held whole in memory.

    blobs   hash | chunk index u32 -> up to CHUNK_SIZE bytes
            hash | 0xFFFFFFFF      -> u64 size (written last: present = the blob is complete)

A blob is written chunk by chunk under the hash it must have; `finish` checks the hash of
what was written and either marks it complete or removes every chunk.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from typing import Any

CHUNK_SIZE = 64 * 1024
MAX_BLOB_SIZE = 40 * 1024 * 1024
HASH_SIZE = 32
_INDEX = struct.Struct(">I")
_SIZE = struct.Struct(">Q")
_META = b"\xff\xff\xff\xff"


class BlobError(ValueError):
    """A blob is over the size limit, or its bytes do not match its hash."""


def chunk_key(blob_hash: bytes, index: int) -> bytes:
    return blob_hash + _INDEX.pack(index)


def meta_key(blob_hash: bytes) -> bytes:
    return blob_hash + _META


def size_of(txn: Any, db: Any, blob_hash: bytes) -> int | None:
    raw = txn.get(meta_key(blob_hash), db=db)
    return _SIZE.unpack(bytes(raw))[0] if raw is not None else None


def put_chunk(txn: Any, db: Any, blob_hash: bytes, index: int, data: bytes) -> None:
    if len(data) > CHUNK_SIZE or index >= MAX_BLOB_SIZE // CHUNK_SIZE + 1:
        raise BlobError("chunk over the limit")
    txn.put(chunk_key(blob_hash, index), data, db=db)


def finish(txn: Any, db: Any, blob_hash: bytes) -> int:
    """Check the chunks written under `blob_hash`; mark the blob complete and return its size,
    or remove them all and raise BlobError."""
    digest = hashlib.blake2b(digest_size=HASH_SIZE)
    size = 0
    for _, data in _chunks(txn, db, blob_hash):
        digest.update(data)
        size += len(data)
    if digest.digest() != blob_hash or size > MAX_BLOB_SIZE:
        discard(txn, db, blob_hash)
        raise BlobError("blob bytes do not match its hash" if size <= MAX_BLOB_SIZE else "blob over the size limit")
    txn.put(meta_key(blob_hash), _SIZE.pack(size), db=db)
    return size


def discard(txn: Any, db: Any, blob_hash: bytes) -> None:
    for key, _ in list(_chunks(txn, db, blob_hash, with_meta=True)):
        txn.delete(key, db=db)


def read_chunks(txn: Any, db: Any, blob_hash: bytes, start: int = 0) -> Iterator[tuple[int, bytes]]:
    for key, data in _chunks(txn, db, blob_hash, start=start):
        yield _INDEX.unpack(key[HASH_SIZE:])[0], data


def _chunks(txn: Any, db: Any, blob_hash: bytes, *, start: int = 0,
            with_meta: bool = False) -> Iterator[tuple[bytes, bytes]]:
    cur = txn.cursor(db=db)
    if not cur.set_range(chunk_key(blob_hash, start)):
        return
    for key, value in cur:
        key = bytes(key)
        if key[:HASH_SIZE] != blob_hash:
            return
        if key[HASH_SIZE:] == _META and not with_meta:
            return
        yield key, bytes(value)


# -- over the store (read: a StoreEnv; write: the transaction's WriteBatch) ----------------------

def blob_size(env: Any, blob_hash: bytes) -> int | None:
    """Size of a complete blob this store holds, or None."""
    with env.begin() as txn:
        return size_of(txn, env.db["blobs"], blob_hash)


def blob_chunks(env: Any, blob_hash: bytes, start: int = 0, count: int = 16) -> list[tuple[int, bytes]]:
    """Up to `count` chunks of a complete blob from chunk `start` (a short read transaction
    per call, so serving a large blob never pins the database)."""
    db = env.db["blobs"]
    with env.begin() as txn:
        if size_of(txn, db, blob_hash) is None:
            return []
        out = []
        for index, data in read_chunks(txn, db, blob_hash, start):
            out.append((index, data))
            if len(out) >= count:
                break
        return out


def put_chunks(batch: Any, blob_hash: bytes, chunks: list[tuple[int, bytes]]) -> None:
    for index, data in chunks:
        put_chunk(batch.txn, batch.db["blobs"], blob_hash, index, data)


def discard_partial(batch: Any, blob_hash: bytes) -> None:
    """Remove the chunks of a blob whose receiving failed (a complete blob is kept)."""
    if size_of(batch.txn, batch.db["blobs"], blob_hash) is None:
        discard(batch.txn, batch.db["blobs"], blob_hash)
