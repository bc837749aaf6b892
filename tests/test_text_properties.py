"""Properties of post text parsing (murmurate.node.core.text): mentions, hashtags and the
Mastodon character count, checked on generated text against independent expectations."""

from __future__ import annotations

import re

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from murmurate.crypto import encode_id
from murmurate.node.core.text import URL_WEIGHT, count_chars, hashtags, mentions
from murmurate.store import normalize_tag

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
B32 = "abcdefghijklmnopqrstuvwxyz234567"

keys = st.binary(min_size=32, max_size=32)
# Filler words: no '#', '@', no id prefix, no URL scheme, no word chars glued to what follows.
words = st.text(alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="#@_:/&"),
                min_size=0, max_size=12).filter(lambda w: "mur" not in w.casefold() and "http" not in w.casefold())
# Characters after which a mention or a hashtag may start (not word characters, not & or /).
openers = st.sampled_from(["", " ", "\n", "(", "[", ",", ".", "!", "?", "\"", "'", " (", "\t", "—", "«", "¿"])
closers = st.sampled_from(["", " ", "\n", ")", "]", ",", ".", "!", "?", ":", ";", "\"", "'", "…", "»"])


def non_word(text: str) -> bool:
    return text == "" or re.match(r"\W", text[-1]) is not None


# -- mentions -------------------------------------------------------------------------------------

@SETTINGS
@given(st.lists(st.tuples(keys, st.booleans(), openers, closers, words, st.booleans()), min_size=1, max_size=6),
       words)
def test_every_embedded_id_is_found_once_in_order(parts, head) -> None:
    text = head if non_word(head) else head + " "
    for key, at, opener, closer, filler, upper in parts:
        ident = encode_id(key).upper() if upper else encode_id(key)
        text += f"{opener}{'@' if at else ''}{ident}{closer} {filler} "
    expected = list(dict.fromkeys(key for key, *_ in parts))
    assert mentions(text) == expected


@SETTINGS
@given(keys, st.integers(min_value=0, max_value=57), st.sampled_from(B32), st.booleans(), openers)
def test_a_corrupted_id_is_never_found(key, position, char, at, opener) -> None:
    good = encode_id(key)
    body = good[4:]
    assume(body[position] != char)
    bad = "mur_" + body[:position] + char + body[position + 1:]
    text = f"hello {opener}{'@' if at else ''}{bad} and {opener}{good}."
    assert mentions(text) == [key]  # the good one only


@SETTINGS
@given(keys, st.sampled_from(["x", "_", "9", "é"]), st.sampled_from(["a", "2", "_", "ü"]))
def test_an_id_glued_to_word_characters_is_not_a_mention(key, before, after) -> None:
    ident = encode_id(key)
    assert mentions(f"{before}{ident}") == []
    assert mentions(f"{ident}{after}") == []
    assert mentions(f"say {before}{ident.upper()} now") == []


@SETTINGS
@given(keys, st.integers(min_value=1, max_value=57))
def test_a_cut_or_lengthened_id_is_not_found(key, cut) -> None:
    ident = encode_id(key)
    assert mentions(ident[:4 + cut] + " end") == []
    assert mentions(ident + ident[4:6]) == []


# -- hashtags -------------------------------------------------------------------------------------

tag_chars = st.characters(whitelist_categories=("Lu", "Ll", "Lo", "Nd"), whitelist_characters="_")
tags = st.text(alphabet=tag_chars, min_size=1, max_size=100).filter(
    lambda t: not t.isdigit() and re.fullmatch(r"\w+", t) is not None)


@SETTINGS
@given(st.lists(st.tuples(tags, openers, closers, words), min_size=1, max_size=6), words)
def test_hashtags_at_word_starts_are_found_normalized_and_once(parts, head) -> None:
    text = head if non_word(head) else head + " "
    for tag, opener, closer, filler in parts:
        text += f"{opener}#{tag}{closer} {filler} "
    found = hashtags(text)
    assert found == list(dict.fromkeys(normalize_tag(tag) for tag, *_ in parts))
    assert len(found) == len(set(found))


@SETTINGS
@given(tags, st.sampled_from(["a", "Z", "_", "7", "é", "&", "/"]))
def test_a_hashtag_glued_to_a_word_or_entity_or_path_is_not_found(tag, before) -> None:
    assert hashtags(f"x{before}#{tag}") == []


@SETTINGS
@given(st.text(alphabet=st.characters(whitelist_categories=("Nd",)), min_size=1, max_size=99), openers)
def test_all_digit_hashtags_are_never_found(digits, opener) -> None:
    assert hashtags(f"{opener}#{digits} and #{digits}x") == [normalize_tag(f"{digits}x")]


@SETTINGS
@given(st.text(max_size=400))
def test_found_hashtags_are_normalized_unique_and_never_all_digits(text) -> None:
    found = hashtags(text)
    assert len(found) == len(set(found))
    for tag in found:
        assert tag and not tag.isdigit()
        assert tag == normalize_tag(tag)
        assert 0 < len(tag) <= 100 * 3  # casefold may grow a character into up to three


@SETTINGS
@given(st.from_regex(r"[A-Za-z0-9_]{0,99}[A-Za-z_]", fullmatch=True))
def test_hashtags_that_differ_only_by_case_are_one_tag(tag) -> None:
    assert hashtags(f"#{tag} #{tag.upper()} #{tag.lower()}") == [normalize_tag(tag)]
    assert normalize_tag(tag) == tag.casefold()


# -- the character count --------------------------------------------------------------------------

def no_url(text: str) -> bool:
    return "http" not in text.casefold()


plain = st.text(max_size=80).filter(no_url)
url_chars = st.characters(blacklist_categories=("Z", "C"), blacklist_characters="<>\"")
urls = st.builds(lambda scheme, host, rest: f"{scheme}://{host}{rest}",
                 st.sampled_from(["http", "https", "HTTP", "Https"]),
                 st.sampled_from(["a.io", "example.com", "xn--bcher-kva.de", "10.0.0.1:8080"]),
                 st.text(alphabet=url_chars, max_size=120))


@SETTINGS
@given(st.text(max_size=2000).filter(no_url))
def test_count_chars_is_len_without_urls(text) -> None:
    assert count_chars(text) == len(text)


@SETTINGS
@given(st.lists(st.tuples(plain, urls), max_size=6), plain)
def test_each_url_counts_23_however_long(parts, tail) -> None:
    text = ""
    plain_chars = 0
    for before, url in parts:
        # A URL ends at white space: give each one its own.
        segment = (before + " ") if before and not before[-1].isspace() else before
        text += segment + url + " "
        plain_chars += len(segment) + 1
    text += tail
    assert count_chars(text) == plain_chars + len(tail) + URL_WEIGHT * len(parts)


@SETTINGS
@given(st.text(max_size=1000))
def test_random_text_never_raises(text) -> None:
    n = count_chars(text)
    assert 0 <= n <= len(text) + URL_WEIGHT * text.casefold().count("http")
    assert all(isinstance(t, str) for t in hashtags(text))
    assert all(isinstance(m, bytes) and len(m) == 32 for m in mentions(text))


@SETTINGS
@given(st.binary(max_size=500))
def test_decoded_garbage_never_raises(data) -> None:
    text = data.decode("utf-8", errors="surrogateescape")
    count_chars(text)
    hashtags(text)
    mentions(text)
