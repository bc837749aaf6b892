"""Canonical msgpack: the one encoding Murmurate signs and hashes.

Rules (docs/protocol.md, "Canonical msgpack"):
- types: nil, bool, int, str (valid UTF-8), bin, array, map; no float, no ext.
- every value in its shortest msgpack form (what msgpack-python emits);
- str always as str, bytes always as bin (the 2013 spec's str8 and bin families);
- map keys are str, unique, sorted by their UTF-8 bytes;
- at most 32 levels of nesting.
A decoder checks these by re-encoding the decoded value and comparing with the bytes
it was given. The bytes that were signed are hashed and kept as they came; the re-encoding
is only a check, never what is stored.

Speed (every entry from the network is decoded here, several times): the key order and
key types are checked by a hook msgpack calls once per map while it decodes, so the
decoded value keeps the wire's order and re-encodes straight through msgpack's C packer.
The Python walk (`_sorted`) only runs for a value with more containers than MAX_DEPTH,
the one case where nesting could be too deep.
"""

from __future__ import annotations

import threading
from typing import Any

import msgpack

MAX_DEPTH = 32


class CanonicalError(ValueError):
    """Bytes are not canonical msgpack. `kind` is 'malformed', 'trailing' or 'non_canonical'."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind


def pack(value: Any) -> bytes:
    """Encode `value` canonically (map keys sorted). Raises TypeError on floats and the like."""
    return msgpack.packb(_sorted(value, 0), use_bin_type=True, strict_types=False)


class _Shape:
    """Hooks for one decode: counts containers and checks every map's keys as it is built."""

    __slots__ = ("containers", "bad_keys")

    def __init__(self) -> None:
        self.containers = 0
        self.bad_keys = False

    def on_list(self, items: list) -> list:
        self.containers += 1
        return items

    def on_map(self, pairs: list[tuple[Any, Any]]) -> dict:
        self.containers += 1
        previous = None
        for key, _ in pairs:
            # str keys compare by code point, which is the order of their UTF-8 bytes;
            # strictly increasing also means unique.
            if type(key) is not str or (previous is not None and not previous < key):
                self.bad_keys = True
            previous = key
        return dict(pairs)


def unpack(data: bytes, *, max_len: int | None = None) -> Any:
    """Decode canonical msgpack; raise CanonicalError if `data` is anything else."""
    limit = len(data) if max_len is None else max_len
    shape = _Shape()
    try:
        value = msgpack.unpackb(
            data, raw=False, use_list=True, strict_map_key=True, timestamp=0,
            max_str_len=limit, max_bin_len=limit, max_array_len=limit, max_map_len=limit,
            max_ext_len=0, ext_hook=_refuse_ext, list_hook=shape.on_list, object_pairs_hook=shape.on_map)
    except msgpack.ExtraData:
        raise CanonicalError("trailing", "bytes left over after the value") from None
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as e:
        raise CanonicalError("malformed", f"not valid msgpack: {e.__class__.__name__}: {e}") from None
    if shape.bad_keys:
        raise CanonicalError("non_canonical", "map keys must be str, unique and sorted")
    try:
        if shape.containers > MAX_DEPTH:
            again = pack(value)  # the walk refuses too deep a nesting, and floats
        else:
            # Few containers cannot nest too deep. Floats are not walked for either: packed
            # once as float64 and once as float32, the two encodings differ exactly when the
            # value holds a float (and a float needs a 0xca or 0xcb byte to be there at all).
            packers = _packers()
            again = packers[0].pack(value)
            if again == data and (0xCA in data or 0xCB in data) and packers[1].pack(value) != again:
                raise TypeError("float is not allowed in canonical msgpack")
    except (TypeError, ValueError, OverflowError, RecursionError) as e:  # (a float64 beyond float32 overflows)
        raise CanonicalError("non_canonical", str(e)) from None
    if again != data:
        raise CanonicalError("non_canonical", "not in canonical msgpack form")
    return value


_FLAT_VALUES = frozenset({type(None), bool, int, str, bytes})


def unpack_flat_map(data: bytes) -> dict[str, Any] | None:
    """`data` decoded if it is a canonical map of scalars (the common payload: a plain
    post, a follow, a favourite), read by msgpack's C unpacker without the hooks; None for
    anything else, canonical or not, which `unpack` then decides. Costs about 60% of
    `unpack`. (tests/test_canonical.py checks that the two agree.)"""
    try:
        value = msgpack.unpackb(data)  # defaults: str as str, lengths bounded by the input
    except Exception:  # anything msgpack refuses: `unpack` names it
        return None
    if type(value) is not dict:
        return None
    previous = None
    for key, item in value.items():
        if type(key) is not str or (previous is not None and not previous < key) or type(item) not in _FLAT_VALUES:
            return None
        previous = key
    return value if repack(value) == data else None


def repack(value: Any) -> bytes:
    """msgpack's C packer on a value already in canonical order (for a caller that checked
    its types itself and compares the bytes)."""
    return _packers()[0].pack(value)


_local = threading.local()


def _packers() -> tuple[msgpack.Packer, msgpack.Packer]:
    """This thread's reusable packers (a Packer is not thread-safe; making one per call
    costs more than the packing)."""
    try:
        return _local.packers
    except AttributeError:
        _local.packers = (msgpack.Packer(use_bin_type=True),
                          msgpack.Packer(use_bin_type=True, use_single_float=True))
        return _local.packers


def _refuse_ext(code: int, data: bytes) -> Any:
    raise TypeError("msgpack ext types are not allowed")


_SCALARS = frozenset({type(None), bool, int, str, bytes})


def _sorted(value: Any, depth: int) -> Any:
    # `depth` counts the containers around `value`: a container that would be the 33rd
    # level is refused, whatever it holds (an empty one too).
    if type(value) in _SCALARS:  # the common case first, without isinstance's walk
        return value
    if isinstance(value, (dict, list, tuple)) and depth >= MAX_DEPTH:
        raise ValueError(f"nested deeper than {MAX_DEPTH} levels")
    if isinstance(value, dict):
        out = {}
        for key in sorted(value, key=_key_bytes):
            out[key] = _sorted(value[key], depth + 1)
        return out
    if isinstance(value, (list, tuple)):
        return [_sorted(v, depth + 1) for v in value]
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return value
    raise TypeError(f"{type(value).__name__} is not allowed in canonical msgpack")


def _key_bytes(key: Any) -> bytes:
    if not isinstance(key, str):
        raise TypeError("map keys must be str")
    return key.encode("utf-8")
