"""Shared strategies for the fuzz suites (tests/test_fuzz_*.py).

The budget comes from the Hypothesis profile (tests/conftest.py): "murmurate-ci" by
default, a fixed number of examples and derandomized, so CI runs the same cases every
time within its time budget; HYPOTHESIS_PROFILE=murmurate-deep searches far longer.
"""

from __future__ import annotations

from typing import Any

from hypothesis import strategies as st

from murmurate.store import canonical

KEY = st.binary(min_size=32, max_size=32)

# Integers a peer can send: the edges of every msgpack width, and of our own ranges.
EDGE_INTS = st.sampled_from([0, 1, 2, 127, 128, 255, 256, 65535, 65536, 2**31, 2**32 - 1, 2**32, 2**53 - 1,
                             2**53, 2**63 - 1, 2**63, 2**64 - 1, -1, -32, -33, -(2**63)])
INTS = st.one_of(EDGE_INTS, st.integers(min_value=-(2**63), max_value=2**64 - 1))

SCALARS = st.one_of(st.none(), st.booleans(), INTS, st.text(max_size=40), st.binary(max_size=40), KEY)


def values(leaves: st.SearchStrategy[Any] = SCALARS) -> st.SearchStrategy[Any]:
    """Any value canonical msgpack can carry (no floats: they are not canonical)."""
    return st.recursive(leaves, lambda inner: st.one_of(
        st.lists(inner, max_size=5),
        st.dictionaries(st.text(max_size=8), inner, max_size=5)), max_leaves=20)


def message_maps(kinds: list[str], fields: list[str]) -> st.SearchStrategy[dict[str, Any]]:
    """Maps shaped like a protocol's messages: a known (or unknown) `t`, then known field
    names with values of any type, so a decoder's field checks are reached, not only its
    msgpack check."""
    return st.builds(
        lambda t, rest: {**rest, "t": t},
        st.one_of(st.sampled_from(kinds), st.text(max_size=6), st.just(5)),
        st.dictionaries(st.sampled_from(fields), values(), max_size=len(fields)))


def packed(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[bytes]:
    return strategy.map(canonical.pack)


def mutated(seeds: list[bytes]) -> st.SearchStrategy[bytes]:
    """A valid input with a few bytes flipped, cut or inserted: nearer the edge than noise."""
    def mutate(data: bytes, edits: list[tuple[int, int, int]]) -> bytes:
        out = bytearray(data)
        for op, pos, byte in edits:
            if not out:
                out.append(byte)
                continue
            pos %= len(out)
            if op == 0:
                out[pos] = byte
            elif op == 1:
                del out[pos:]
            elif op == 2:
                out.insert(pos, byte)
            else:
                out[pos] ^= 1 << (byte % 8)
        return bytes(out)
    edit = st.tuples(st.integers(0, 3), st.integers(0, 1 << 20), st.integers(0, 255))
    return st.builds(mutate, st.sampled_from(seeds), st.lists(edit, min_size=1, max_size=4))
