"""The tagged JSON form of a canonical msgpack value, used in the vectors.

JSON cannot tell str from bytes or keep a map's key order, so: nil, bool, int, str and
array map to their JSON counterparts; bin is {"bin": hex}; a map is {"map": [[key,
value], ...]} in canonical key order. Every JSON object in this form is a tag.
"""

from __future__ import annotations

from typing import Any


def tag(value: Any) -> Any:
    if isinstance(value, bytes):
        return {"bin": value.hex()}
    if isinstance(value, list):
        return [tag(v) for v in value]
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-8"))
        return {"map": [[k, tag(value[k])] for k in keys]}
    if value is None or isinstance(value, (bool, int, str)):
        return value
    raise TypeError(f"{type(value).__name__} has no tagged form")
