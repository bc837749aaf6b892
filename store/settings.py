"""This node's own data, never replicated: whose node it is, local settings (mutes, lists,
private-post keys, relay accounts), and the peer book.

    meta    b"self" -> author
    local   key -> value
    peers   peer id -> msgpack map (addrs, source)

Read functions take a StoreEnv; write functions take the WriteBatch of the transaction
they are part of.
"""

from __future__ import annotations

from typing import Any

import msgpack

from .env import WriteBatch
from .social import scan_prefix


def self_id(env: Any) -> bytes | None:
    with env.begin() as txn:
        value = txn.get(b"self", db=env.db["meta"])
    return bytes(value) if value is not None else None


def set_self(batch: WriteBatch, author: bytes) -> None:
    batch.txn.put(b"self", author, db=batch.db["meta"])


def local_get(env: Any, key: bytes) -> bytes | None:
    with env.begin() as txn:
        value = txn.get(key, db=env.db["local"])
    return bytes(value) if value is not None else None


def local_scan(env: Any, prefix: bytes) -> list[tuple[bytes, bytes]]:
    with env.begin() as txn:
        return scan_prefix(txn, env.db["local"], prefix)


def local_put(batch: WriteBatch, key: bytes, value: bytes = b"") -> None:
    batch.txn.put(key, value, db=batch.db["local"])


def local_delete(batch: WriteBatch, key: bytes) -> bool:
    return batch.txn.delete(key, db=batch.db["local"])


def peers(env: Any) -> dict[bytes, dict[str, Any]]:
    """The peer book: peer id -> what put_peer recorded."""
    with env.begin() as txn:
        return {bytes(k): msgpack.unpackb(v, raw=False) for k, v in txn.cursor(db=env.db["peers"])}


def put_peer(batch: WriteBatch, peer_id: bytes, info: dict[str, Any]) -> None:
    batch.txn.put(peer_id, msgpack.packb(info, use_bin_type=True), db=batch.db["peers"])
