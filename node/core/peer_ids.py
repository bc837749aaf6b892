"""libp2p peer ids of Ed25519 keys, without libp2p. Pure.

A personal node's peer id is the identity multihash of its libp2p public key protobuf:
base58btc(0x00 0x24 || 0x08 0x01 0x12 0x20 || key). tests/test_p2p_ids.py checks this
against py-libp2p's own derivation.
"""

from __future__ import annotations

_ALPHABET = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_PREFIX = bytes([0x00, 0x24, 0x08, 0x01, 0x12, 0x20])


def _b58encode(data: bytes) -> str:
    n = int.from_bytes(data, "big")
    out = ""
    while n:
        n, r = divmod(n, 58)
        out = _ALPHABET[r] + out
    return "1" * (len(data) - len(data.lstrip(b"\x00"))) + out


def _b58decode(text: str) -> bytes:
    n = 0
    for ch in text:
        n = n * 58 + _ALPHABET.index(ch)
    body = n.to_bytes((n.bit_length() + 7) // 8, "big") if n else b""
    return b"\x00" * (len(text) - len(text.lstrip("1"))) + body


def peer_of_author(public_key: bytes) -> str:
    return _b58encode(_PREFIX + public_key)


def author_of_peer(peer_id: str) -> bytes | None:
    """The Ed25519 key inside an identity-hashed peer id; None for any other id."""
    try:
        raw = _b58decode(peer_id)
    except ValueError:
        return None
    if len(raw) != len(_PREFIX) + 32 or not raw.startswith(_PREFIX):
        return None
    return raw[len(_PREFIX):]
