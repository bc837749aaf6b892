"""Text ids: one text form per key, and every typo refused with a message that says why."""

from __future__ import annotations

import base64

import pytest
from hypothesis import given
from hypothesis import strategies as st

from murmurate.crypto import ID_PREFIX, InvalidIdError, decode_id, encode_id, fingerprint

ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
BODY_CHARS = 58
keys = st.binary(min_size=32, max_size=32)
KEY = bytes(range(32))
GOOD = encode_id(KEY)


@given(keys)
def test_round_trip(key: bytes) -> None:
    text = encode_id(key)
    assert text.startswith(ID_PREFIX)
    assert len(text) == len(ID_PREFIX) + BODY_CHARS
    assert set(text[len(ID_PREFIX):]) <= set(ALPHABET)
    assert decode_id(text) == key


@given(keys)
def test_upper_case_and_surrounding_space_accepted(key: bytes) -> None:
    text = encode_id(key)
    assert decode_id(text.upper()) == key
    assert decode_id(f"  {text}\n") == key


@given(keys, st.integers(0, BODY_CHARS - 1), st.sampled_from(ALPHABET))
def test_every_single_character_change_is_refused(key: bytes, position: int, char: str) -> None:
    text = encode_id(key)
    at = len(ID_PREFIX) + position
    if text[at] == char:
        char = ALPHABET[(ALPHABET.index(char) + 1) % len(ALPHABET)]
    typo = text[:at] + char + text[at + 1:]
    with pytest.raises(InvalidIdError, match="checksum does not match"):
        decode_id(typo)


@given(keys, st.integers(1, 3))
def test_non_zero_padding_bits_refused(key: bytes, spare: int) -> None:
    # 36 bytes are 288 bits; 58 characters carry 290: the last character's two low bits
    # are spare and must be zero, or one key would have four text forms.
    text = encode_id(key)
    last = ALPHABET.index(text[-1])
    assert last & 0b11 == 0
    other = text[:-1] + ALPHABET[last | spare]
    with pytest.raises(InvalidIdError, match="mistyped"):
        decode_id(other)


def test_padding_bits_do_not_change_the_decoded_bytes() -> None:
    # The refusal above is not vacuous: base32 alone would decode both forms to one key.
    body = GOOD[len(ID_PREFIX):]
    other = body[:-1] + ALPHABET[ALPHABET.index(body[-1]) | 1]
    assert base64.b32decode(other.upper() + "======") == base64.b32decode(body.upper() + "======")


@pytest.mark.parametrize("text", ["", "mur", "mux_" + GOOD[4:], "MUX_" + GOOD[4:], GOOD[4:],
                                  "murmurate_" + GOOD[4:], "@" + GOOD])
def test_wrong_prefix(text: str) -> None:
    with pytest.raises(InvalidIdError, match="start with 'mur_'"):
        decode_id(text)


@pytest.mark.parametrize("length", [0, 1, 57, 59, 64, 200])
def test_wrong_length(length: int) -> None:
    body = (GOOD[len(ID_PREFIX):] * 4)[:length]
    with pytest.raises(InvalidIdError, match=f"58 characters .* this one has {length}"):
        decode_id(ID_PREFIX + body)


@pytest.mark.parametrize("bad", ["0", "1", "8", "9", "=", "-", "_", "é", " "])
def test_bad_characters_named(bad: str) -> None:
    text = GOOD[:20] + bad + GOOD[21:]
    with pytest.raises(InvalidIdError, match="only a-z and 2-7") as err:
        decode_id(text)
    assert repr(bad)[1:-1] in str(err.value)


def test_long_input_shortened_in_message() -> None:
    with pytest.raises(InvalidIdError) as err:
        decode_id(GOOD + "a" * 1000)
    assert len(str(err.value)) < 300


@pytest.mark.parametrize("value", [None, 5, KEY, GOOD.encode()])
def test_non_text_refused(value: object) -> None:
    with pytest.raises(InvalidIdError, match="must be text"):
        decode_id(value)  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 31, 33])
def test_encode_refuses_wrong_key_size(size: int) -> None:
    with pytest.raises(ValueError):
        encode_id(bytes(size))


@given(keys)
def test_fingerprint_is_the_start_of_the_id(key: bytes) -> None:
    assert fingerprint(key) == encode_id(key)[len(ID_PREFIX):len(ID_PREFIX) + 8]
