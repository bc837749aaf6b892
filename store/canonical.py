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
"""

from __future__ import annotations

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


def unpack(data: bytes, *, max_len: int | None = None) -> Any:
    """Decode canonical msgpack; raise CanonicalError if `data` is anything else."""
    limit = len(data) if max_len is None else max_len
    try:
        value = msgpack.unpackb(
            data, raw=False, use_list=True, strict_map_key=True, timestamp=0,
            max_str_len=limit, max_bin_len=limit, max_array_len=limit, max_map_len=limit,
            max_ext_len=0, ext_hook=_refuse_ext)
    except msgpack.ExtraData:
        raise CanonicalError("trailing", "bytes left over after the value") from None
    except (ValueError, TypeError, msgpack.UnpackException, RecursionError) as e:
        raise CanonicalError("malformed", f"not valid msgpack: {e.__class__.__name__}: {e}") from None
    try:
        again = pack(value)
    except (TypeError, ValueError, RecursionError) as e:
        raise CanonicalError("non_canonical", str(e)) from None
    if again != data:
        raise CanonicalError("non_canonical", "not in canonical msgpack form")
    return value


def _refuse_ext(code: int, data: bytes) -> Any:
    raise TypeError("msgpack ext types are not allowed")


def _sorted(value: Any, depth: int) -> Any:
    # `depth` counts the containers around `value`: a container that would be the 33rd
    # level is refused, whatever it holds (an empty one too).
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
