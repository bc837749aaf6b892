"""Canonical msgpack: one byte form per value, and anything else refused as CanonicalError."""

from __future__ import annotations

from typing import Any

import msgpack
import pytest
from hypothesis import given
from hypothesis import strategies as st

from murmurate.store.canonical import MAX_DEPTH, CanonicalError, pack, unpack, unpack_flat_map

INTS = st.integers(-2**63, 2**64 - 1)  # what msgpack can hold
scalars = st.none() | st.booleans() | INTS | st.text(max_size=40) | st.binary(max_size=40)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=8), inner, max_size=5),
    max_leaves=30)


def same(a: Any, b: Any) -> bool:
    """Equality that tells True from 1 and bytes from str, all the way down."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a == b


def nested(levels: int, inner: bytes = b"") -> bytes:
    """`levels` nested one-element arrays around `inner` (an empty array if not given)."""
    if not inner:
        return b"\x91" * (levels - 1) + b"\x90"
    return b"\x91" * levels + inner


@given(values)
def test_round_trip(value: Any) -> None:
    data = pack(value)
    back = unpack(data)
    assert same(back, _sorted_keys(value))
    assert pack(back) == data


@given(st.dictionaries(st.text(max_size=8), INTS, min_size=2, max_size=8))
def test_key_order_of_the_input_does_not_matter(mapping: dict[str, int]) -> None:
    reversed_order = dict(reversed(list(mapping.items())))
    assert pack(mapping) == pack(reversed_order)
    keys = list(unpack(pack(mapping)))
    assert keys == sorted(keys, key=lambda k: k.encode())


@given(st.binary(max_size=200))
def test_arbitrary_bytes_only_ever_raise_canonical_error(data: bytes) -> None:
    try:
        value = unpack(data)
    except CanonicalError as e:
        assert e.kind in {"malformed", "trailing", "non_canonical"}
        return
    assert pack(value) == data


@given(values, st.data())
def test_damaged_encodings_only_ever_raise_canonical_error(value: Any, data: st.DataObject) -> None:
    raw = bytearray(pack(value))
    i = data.draw(st.integers(0, len(raw) - 1))
    raw[i] = data.draw(st.integers(0, 255))
    try:
        back = unpack(bytes(raw))
    except CanonicalError:
        return
    assert pack(back) == bytes(raw)


# Values msgpack can carry that canonical msgpack refuses. Whether a foreign type is
# reported as "malformed" (refused while decoding) or "non_canonical" (refused on the
# re-encoding check) depends on where msgpack-python stops; both are refusals of form.
FOREIGN = {"malformed", "non_canonical"}


@pytest.mark.parametrize("name,data,kinds", [
    ("float64", msgpack.packb(1.5), FOREIGN),
    ("float32", b"\xca\x3f\xc0\x00\x00", FOREIGN),
    ("float in a list", msgpack.packb([1, 2.0]), FOREIGN),
    ("ext", msgpack.packb(msgpack.ExtType(1, b"x")), FOREIGN),
    ("timestamp ext", msgpack.packb(msgpack.Timestamp(1)), FOREIGN),
    ("int key", msgpack.packb({1: 2}), FOREIGN),
    ("nil key", msgpack.packb({None: 2}), FOREIGN),
    ("bin key", msgpack.packb({b"a": 2}, use_bin_type=True), FOREIGN),
    ("unsorted keys", b"\x82\xa1b\x01\xa1a\x02", {"non_canonical"}),
    ("duplicate keys", b"\x82\xa1a\x01\xa1a\x02", {"non_canonical"}),
    ("duplicate keys same value", b"\x82\xa1a\x01\xa1a\x01", {"non_canonical"}),
    ("uint8 for 1", b"\xcc\x01", {"non_canonical"}),
    ("uint16 for 200", b"\xcd\x00\xc8", {"non_canonical"}),
    ("uint64 for 2**31", b"\xcf" + (2**31).to_bytes(8, "big"), {"non_canonical"}),
    ("int8 for 5", b"\xd0\x05", {"non_canonical"}),
    ("int16 for -1", b"\xd1\xff\xff", {"non_canonical"}),
    ("int64 for -33", b"\xd3" + (-33).to_bytes(8, "big", signed=True), {"non_canonical"}),
    ("str8 for a short text", b"\xd9\x01a", {"non_canonical"}),
    ("bin16 for 1 byte", b"\xc5\x00\x01a", {"non_canonical"}),
    ("array16 for 1 item", b"\xdc\x00\x01\x01", {"non_canonical"}),
    ("map16 for 1 pair", b"\xde\x00\x01\xa1a\x01", {"non_canonical"}),
    ("trailing byte", b"\x01\x02", {"trailing"}),
    ("trailing after a map", b"\x81\xa1a\x01\xc0", {"trailing"}),
    ("33 levels around nil", nested(33, b"\xc0"), {"non_canonical"}),
    ("34 empty levels", nested(34), {"non_canonical", "malformed"}),
    ("5000 levels", nested(5000, b"\xc0"), {"non_canonical", "malformed"}),
    ("invalid utf-8", b"\xa1\xff", {"malformed"}),
    ("truncated array", b"\x92\x01", {"malformed"}),
    ("empty input", b"", {"malformed"}),
    ("never-used byte", b"\xc1", {"malformed"}),
])
def test_refused_with_the_right_kind(name: str, data: bytes, kinds: set[str]) -> None:
    with pytest.raises(CanonicalError) as err:
        unpack(data)
    assert err.value.kind in kinds, f"{name}: {err.value.kind}: {err.value}"
    assert isinstance(err.value, ValueError)


def test_refusals_are_not_vacuous() -> None:
    # The non-canonical inputs above decode to values whose canonical form is different.
    assert msgpack.unpackb(b"\xcc\x01") == 1 and pack(1) == b"\x01"
    assert msgpack.unpackb(b"\x82\xa1b\x01\xa1a\x02") == {"a": 2, "b": 1}
    assert msgpack.unpackb(b"\xd9\x01a", raw=False) == "a" and pack("a") == b"\xa1a"


@pytest.mark.parametrize("levels", [1, 2, MAX_DEPTH])
def test_nesting_up_to_the_limit_accepted(levels: int) -> None:
    for data in (nested(levels), nested(levels, b"\xc0")):
        assert pack(unpack(data)) == data
    deep_map: Any = {}
    for _ in range(levels - 1):
        deep_map = {"k": deep_map}
    assert unpack(pack(deep_map)) == deep_map


def test_nesting_limit_counts_containers_whatever_is_inside() -> None:
    # 33 nested arrays are 33 levels whether the innermost one is empty or holds a nil.
    for data in (nested(MAX_DEPTH + 1), nested(MAX_DEPTH + 1, b"\xc0")):
        with pytest.raises(CanonicalError):
            unpack(data)
    too_deep: Any = []
    for _ in range(MAX_DEPTH):
        too_deep = [too_deep]
    with pytest.raises((TypeError, ValueError)):
        pack(too_deep)


@pytest.mark.parametrize("value", [1.5, float("nan"), {1: 2}, {b"k": 1}, {"a": {2: 3}}, [object()],
                                   {1, 2}])
def test_pack_refuses_what_canonical_msgpack_cannot_hold(value: Any) -> None:
    with pytest.raises((TypeError, ValueError)):
        pack(value)


def test_max_len_bounds_every_length_header() -> None:
    big = pack("x" * 100)
    assert unpack(big, max_len=100) == "x" * 100
    with pytest.raises(CanonicalError, match="exceeds"):
        unpack(big, max_len=99)
    # A header that claims more than the input holds is refused without allocating it.
    with pytest.raises(CanonicalError):
        unpack(b"\xdb\xff\xff\xff\xff")


def _sorted_keys(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _sorted_keys(value[k]) for k in sorted(value, key=lambda k: k.encode())}
    if isinstance(value, list):
        return [_sorted_keys(v) for v in value]
    return value


# unpack_flat_map is the fast path for payloads: it may only accept what unpack accepts,
# decoded the same way, and must not be vacuous.

def assert_flat_agrees(data: bytes) -> None:
    fast = unpack_flat_map(data)
    if fast is not None:
        assert same(fast, unpack(data))


@given(st.dictionaries(st.text(max_size=8), scalars, max_size=6))
def test_flat_maps_take_the_fast_path(mapping: dict[str, Any]) -> None:
    data = pack(mapping)
    fast = unpack_flat_map(data)
    assert fast is not None and same(fast, unpack(data))


@given(st.dictionaries(st.text(max_size=8), values, max_size=5), st.data())
def test_flat_map_fast_path_agrees_on_damaged_bytes(mapping: dict[str, Any], data: st.DataObject) -> None:
    raw = bytearray(pack(mapping))
    assert_flat_agrees(bytes(raw))
    for _ in range(data.draw(st.integers(1, 3))):
        i = data.draw(st.integers(0, len(raw)))
        if data.draw(st.booleans()) and i < len(raw):
            raw[i] = data.draw(st.integers(0, 255))
        else:
            raw.insert(i, data.draw(st.integers(0, 255)))
    assert_flat_agrees(bytes(raw))


@given(st.binary(max_size=100))
def test_flat_map_fast_path_agrees_on_any_bytes(data: bytes) -> None:
    assert_flat_agrees(b"\x82" + data)


@pytest.mark.parametrize("data", [
    msgpack.packb({"b": 1, "a": 2}),                      # keys out of order
    msgpack.packb({"a": 1.5}),                            # a float
    msgpack.packb({b"a": 1}, use_bin_type=True),          # a bin key
    b"\x81\xa1a\xcc\x05",                                 # 5 as a uint8: not the shortest form
    b"\x81\xa1a\xd9\x01b",                                # a str8 for one character
    b"\x82\xa1a\x01\xa1a\x02",                             # a key twice
    b"\x81\xa1a\x01\x00",                                 # a byte left over
])
def test_flat_map_fast_path_leaves_non_canonical_maps_to_unpack(data: bytes) -> None:
    assert unpack_flat_map(data) is None
    with pytest.raises(CanonicalError):
        unpack(data)
