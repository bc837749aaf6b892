"""Private posts (murmurate.crypto.private): followers-only circles and direct messages.

Covers round trips, who can and cannot read, key rotation on removing a follower,
chunking at 1,000+ recipients, hostile bytes (only PrivateBoxError or None), and the
vectors in tests/vectors/private.json. Timings are printed, not asserted.
"""

from __future__ import annotations

import hashlib
import json
import random as random_module
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from murmurate.crypto import CryptoError, RemoteCryptoError, SigningIdentity
from murmurate.crypto.private import (GRANTS_PER_CHUNK, HINT_SIZE, MAX_CONTAINER_SIZE, WRAP_SIZE, CircleKey,
                                      PrivateBoxError, chunk_id, generate_circle_key, make_grants,
                                      next_circle_key, open_direct, open_followers_post, open_grant,
                                      read_container, seal_direct, seal_followers_post)

VECTORS = Path(__file__).resolve().parent / "vectors"
PAYLOAD_CAP = 65536  # a type-11 payload (docs/protocol.md section 6)


def _ident(n: int) -> SigningIdentity:
    return SigningIdentity(hashlib.blake2b(b"test-private-%d" % n, digest_size=32).digest())


AUTHOR = _ident(0)
POOL = [_ident(n) for n in range(1, 61)]
OUTSIDER = _ident(9999)
RELAY = _ident(8888)


def _stream(seed: int) -> Callable[[int], bytes]:
    """Deterministic randomness for the pure functions (never os.urandom in tests)."""
    rng = random_module.Random(seed)
    return lambda n: rng.randbytes(n)


def _hostile(call: Callable[[], Any]) -> Any:
    """Run an opener on hostile bytes: it may return, or raise PrivateBoxError; nothing else."""
    try:
        return call()
    except PrivateBoxError:
        return "refused"


# -- followers-only ----------------------------------------------------------------------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plaintext=st.binary(max_size=3000), n=st.integers(1, 60), seed=st.integers(0, 2**32))
def test_followers_round_trip(plaintext: bytes, n: int, seed: int) -> None:
    rnd = _stream(seed)
    key = generate_circle_key(rnd(32), epoch=seed % 1000)
    followers = POOL[:n]
    chunks = make_grants(AUTHOR, key, [f.public_key for f in followers], rnd)
    post = seal_followers_post(AUTHOR.public_key, key, plaintext, rnd(24))
    for reader in [AUTHOR, *followers]:
        got = [g for g in (open_grant(c, reader, AUTHOR.public_key) for c in chunks) if g is not None]
        assert got == [key]
        assert open_followers_post(post, {got[0].epoch: got[0].key}, AUTHOR.public_key) == plaintext
    assert read_container(chunks[0]).wrap_count == n + 1  # the author's own grant included


def test_non_follower_and_relay_cannot_open_grants_or_posts() -> None:
    rnd = _stream(1)
    key = generate_circle_key(rnd(32))
    chunks = make_grants(AUTHOR, key, [f.public_key for f in POOL[:10]], rnd)
    post = seal_followers_post(AUTHOR.public_key, key, b"circle only", rnd(24))
    for stranger in (OUTSIDER, RELAY):
        assert all(open_grant(c, stranger, AUTHOR.public_key) is None for c in chunks)
        assert open_followers_post(post, {}, AUTHOR.public_key) is None
        guessed = {1: stranger.seed}  # any key that is not the circle key's
        with pytest.raises(PrivateBoxError):
            open_followers_post(post, guessed, AUTHOR.public_key)
    # The plaintext appears nowhere in what a relay stores.
    assert b"circle only" not in post and all(key.key not in c for c in chunks)


def test_removed_follower_reads_old_epoch_but_not_the_new_one() -> None:
    rnd = _stream(2)
    stays, removed = POOL[0], POOL[1]
    k1 = generate_circle_key(rnd(32), epoch=1)
    g1 = make_grants(AUTHOR, k1, [stays.public_key, removed.public_key], rnd)
    old_post = seal_followers_post(AUTHOR.public_key, k1, b"before", rnd(24))
    k2 = next_circle_key(k1, rnd(32))
    g2 = make_grants(AUTHOR, k2, [stays.public_key], rnd)
    new_post = seal_followers_post(AUTHOR.public_key, k2, b"after", rnd(24))
    assert k2.epoch == 2 and k2.key != k1.key

    removed_keys = {g.epoch: g.key for g in (open_grant(c, removed, AUTHOR.public_key) for c in g1 + g2) if g}
    assert removed_keys == {1: k1.key}
    assert open_followers_post(old_post, removed_keys, AUTHOR.public_key) == b"before"  # old posts stay readable
    assert open_followers_post(new_post, removed_keys, AUTHOR.public_key) is None
    with pytest.raises(PrivateBoxError):  # the old key does not open the new epoch either
        open_followers_post(new_post, {2: k1.key}, AUTHOR.public_key)

    stays_keys = {g.epoch: g.key for g in (open_grant(c, stays, AUTHOR.public_key) for c in g1 + g2) if g}
    assert open_followers_post(new_post, stays_keys, AUTHOR.public_key) == b"after"
    assert open_followers_post(old_post, stays_keys, AUTHOR.public_key) == b"before"


def test_grants_and_posts_are_bound_to_their_author() -> None:
    rnd = _stream(3)
    other = POOL[5]
    key = generate_circle_key(rnd(32))
    chunk = make_grants(AUTHOR, key, [POOL[0].public_key], rnd)[0]
    post = seal_followers_post(AUTHOR.public_key, key, b"mine", rnd(24))
    # Copied into another author's feed, the grant does not open and the post refuses.
    assert open_grant(chunk, POOL[0], other.public_key) is None
    with pytest.raises(PrivateBoxError):
        open_followers_post(post, {1: key.key}, other.public_key)
    # The DH is symmetric, but the hash orders author then recipient: the follower cannot
    # pass the author's grant off as one the follower made for the author.
    assert open_grant(chunk, AUTHOR, POOL[0].public_key) is None


def test_hints_are_unlinkable_across_chunks_and_sorted() -> None:
    key = generate_circle_key(bytes(32))
    people = [f.public_key for f in POOL[:20]]
    a = make_grants(AUTHOR, key, people, _stream(4))[0]
    b = make_grants(AUTHOR, key, people, _stream(5))[0]
    hints = [[c[at:at + HINT_SIZE] for at in range(32, len(c), WRAP_SIZE)] for c in (a, b)]
    assert not set(hints[0]) & set(hints[1])  # same people, same key, fresh nonce: no common hint
    assert hints[0] == sorted(hints[0])
    info = read_container(a)
    assert (info.kind, info.epoch, info.wrap_count, info.size) == ("grants", 1, 21, 32 + 21 * WRAP_SIZE)


def test_1000_followers_fit_one_chunk_and_each_opens_its_grant(capsys: pytest.CaptureFixture[str]) -> None:
    followers = [_ident(n) for n in range(1000, 2000)]
    rnd = _stream(6)
    key = generate_circle_key(rnd(32), epoch=7)
    started = time.perf_counter()
    chunks = make_grants(AUTHOR, key, [f.public_key for f in followers], rnd)
    post = seal_followers_post(AUTHOR.public_key, key, "a followers-only post ".encode() * 20, rnd(24))
    write_s = time.perf_counter() - started
    started = time.perf_counter()  # a rotation: same followers, their X25519 keys now cached
    make_grants(AUTHOR, next_circle_key(key, rnd(32)), [f.public_key for f in followers], rnd)
    rotate_s = time.perf_counter() - started
    assert GRANTS_PER_CHUNK == 1142
    assert len(chunks) == 1 and len(chunks[0]) == 32 + 1001 * WRAP_SIZE <= MAX_CONTAINER_SIZE < PAYLOAD_CAP

    opened = [open_grant(chunks[0], f, AUTHOR.public_key) for f in followers]
    assert all(g == key for g in opened)
    started = time.perf_counter()
    grant = open_grant(chunks[0], followers[-1], AUTHOR.public_key)
    assert grant is not None and open_followers_post(post, {7: grant.key}, AUTHOR.public_key) is not None
    read_s = time.perf_counter() - started
    with capsys.disabled():
        print(f"\n[private] followers-only post + grants for 1,000 followers: {write_s * 1000:.0f} ms "
              f"({len(chunks[0])} bytes of grants); a rotation's grants: {rotate_s * 1000:.0f} ms; "
              f"a follower finds its grant and reads: {read_s * 1000:.2f} ms")


def test_many_followers_split_into_chunks_under_the_cap() -> None:
    followers = [_ident(n) for n in range(3000, 5300)]  # 2,300 + the author = 2,301 grants
    rnd = _stream(7)
    key = generate_circle_key(rnd(32))
    chunks = make_grants(AUTHOR, key, [f.public_key for f in followers], rnd)
    assert [read_container(c).wrap_count for c in chunks] == [1142, 1142, 17]
    assert all(len(c) <= MAX_CONTAINER_SIZE for c in chunks)
    for f in followers[::97] + [followers[-1]]:
        found = [g for g in (open_grant(c, f, AUTHOR.public_key) for c in chunks) if g is not None]
        assert found == [key]


def test_small_chunks_every_follower_finds_its_grant() -> None:
    followers = [_ident(n) for n in range(1000, 2000)]
    rnd = _stream(8)
    key = generate_circle_key(rnd(32))
    chunks = make_grants(AUTHOR, key, [f.public_key for f in followers], rnd, max_chunk_size=10_000)
    assert len(chunks) == 6 and all(len(c) <= 10_000 for c in chunks)
    for f in followers:
        assert [g for g in (open_grant(c, f, AUTHOR.public_key) for c in chunks) if g] == [key]


def test_make_grants_takes_one_nonce_per_chunk_and_is_deterministic() -> None:
    calls: list[int] = []
    base = _stream(9)

    def counting(n: int) -> bytes:
        calls.append(n)
        return base(n)

    key = generate_circle_key(bytes(range(32)))
    people = [f.public_key for f in POOL[:40]]
    chunks = make_grants(AUTHOR, key, people, counting, max_chunk_size=1000)
    assert calls == [24] * len(chunks) and len(chunks) == 3
    assert make_grants(AUTHOR, key, people, _stream(9), max_chunk_size=1000) == chunks


def test_caller_mistakes_raise_value_error() -> None:
    key = generate_circle_key(bytes(32))
    with pytest.raises(ValueError):
        make_grants(AUTHOR, key, [bytes(31)], _stream(0))
    with pytest.raises(ValueError):
        make_grants(AUTHOR, key, [b"\xff" * 32], _stream(0))  # not a curve point
    with pytest.raises(ValueError):
        seal_followers_post(AUTHOR.public_key, key, b"x", bytes(23))
    with pytest.raises(ValueError):
        seal_followers_post(AUTHOR.public_key, key, bytes(MAX_CONTAINER_SIZE), bytes(24))
    with pytest.raises(ValueError):
        CircleKey(2**32, bytes(32))
    with pytest.raises(ValueError):
        make_grants(AUTHOR, key, [], lambda n: bytes(n - 1))


# -- direct ------------------------------------------------------------------------------

@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(plaintext=st.binary(max_size=3000), n=st.integers(1, 60), seed=st.integers(0, 2**32),
       max_size=st.sampled_from([MAX_CONTAINER_SIZE, 4000]))
def test_direct_round_trip(plaintext: bytes, n: int, seed: int, max_size: int) -> None:
    recipients = POOL[:n]
    sealed = seal_direct(AUTHOR, [r.public_key for r in recipients], plaintext, _stream(seed), max_size=max_size)
    assert len(sealed.body) <= max_size and all(len(c) <= max_size for c in sealed.chunks)
    for reader in [AUTHOR, *recipients]:
        assert open_direct(sealed.body, sealed.chunks, reader, AUTHOR.public_key) == plaintext
    assert open_direct(sealed.body, sealed.chunks, OUTSIDER, AUTHOR.public_key) is None


def test_direct_to_50(capsys: pytest.CaptureFixture[str]) -> None:
    recipients = POOL[:50]
    started = time.perf_counter()
    sealed = seal_direct(AUTHOR, [r.public_key for r in recipients], b"to fifty people", _stream(10))
    write_s = time.perf_counter() - started
    assert sealed.chunks == () and read_container(sealed.body).wrap_count == 51
    started = time.perf_counter()
    assert open_direct(sealed.body, (), recipients[-1], AUTHOR.public_key) == b"to fifty people"
    read_s = time.perf_counter() - started
    for reader in [AUTHOR, *recipients]:
        assert open_direct(sealed.body, (), reader, AUTHOR.public_key) == b"to fifty people"
    for stranger in (OUTSIDER, RELAY):
        assert open_direct(sealed.body, (), stranger, AUTHOR.public_key) is None
    assert open_direct(sealed.body, (), recipients[0], POOL[55].public_key) is None  # copied to another feed
    with capsys.disabled():
        print(f"\n[private] direct post to 50: write {write_s * 1000:.1f} ms ({len(sealed.body)} bytes), "
              f"read {read_s * 1000:.2f} ms")


def test_direct_spills_into_chunks_named_by_the_body() -> None:
    recipients = [_ident(n) for n in range(6000, 6300)]
    sealed = seal_direct(AUTHOR, [r.public_key for r in recipients], b"hello crowd", _stream(11), max_size=2000)
    info = read_container(sealed.body)
    assert info.chunk_ids == tuple(chunk_id(c) for c in sealed.chunks) and len(sealed.chunks) >= 2
    assert info.wrap_count + sum(read_container(c).wrap_count for c in sealed.chunks) == 301
    shuffled = list(reversed(sealed.chunks)) + [b"unrelated", b"\x01\x04" + bytes(26)]  # unnamed: ignored
    for r in recipients:
        assert open_direct(sealed.body, shuffled, r, AUTHOR.public_key) == b"hello crowd"
    # The author's own wrap is always in the body: no chunk needed to read one's sent message.
    assert open_direct(sealed.body, (), AUTHOR, AUTHOR.public_key) == b"hello crowd"
    # A recipient whose wrap is in a missing chunk gets None until it arrives.
    assert open_direct(sealed.body, (), recipients[-1], AUTHOR.public_key) is None


def test_direct_randomness_order_and_determinism() -> None:
    calls: list[int] = []
    base = _stream(12)

    def counting(n: int) -> bytes:
        calls.append(n)
        return base(n)

    people = [r.public_key for r in POOL[:30]]
    sealed = seal_direct(AUTHOR, people, b"x", counting, max_size=600)
    assert calls == [32] + [24] * len(sealed.chunks) + [24] and sealed.chunks
    assert seal_direct(AUTHOR, people, b"x", _stream(12), max_size=600) == sealed


def test_direct_to_1000_recipients_at_full_size() -> None:
    recipients = [_ident(n) for n in range(1000, 2000)]
    sealed = seal_direct(AUTHOR, [r.public_key for r in recipients], b"everyone", _stream(13))
    assert sealed.chunks == () and len(sealed.body) <= MAX_CONTAINER_SIZE
    crowd = [_ident(n) for n in range(1000, 3400)]
    big = seal_direct(AUTHOR, [r.public_key for r in crowd], b"everyone", _stream(14))
    assert len(big.chunks) == 2 and all(len(c) <= MAX_CONTAINER_SIZE for c in (big.body, *big.chunks))
    for r in crowd[::151] + [crowd[-1]]:
        assert open_direct(big.body, big.chunks, r, AUTHOR.public_key) == b"everyone"


# -- hostile input -----------------------------------------------------------------------

def _samples() -> dict[str, bytes]:
    rnd = _stream(20)
    key = generate_circle_key(rnd(32))
    grant = make_grants(AUTHOR, key, [POOL[0].public_key, POOL[1].public_key], rnd)[0]
    post = seal_followers_post(AUTHOR.public_key, key, b"circle", rnd(24))
    small = seal_direct(AUTHOR, [POOL[0].public_key, POOL[2].public_key], b"direct", rnd)
    return {"grant": grant, "post": post, "direct": small.body, "key": key.key}


SAMPLES = _samples()
READER = POOL[0]


def _open_all(data: bytes, chunks: list[bytes] | tuple[bytes, ...] = ()) -> list[Any]:
    keys = {1: SAMPLES["key"]}
    return [_hostile(lambda: open_grant(data, READER, AUTHOR.public_key)),
            _hostile(lambda: open_followers_post(data, keys, AUTHOR.public_key)),
            _hostile(lambda: open_direct(data, chunks, READER, AUTHOR.public_key)),
            _hostile(lambda: read_container(data))]


@settings(max_examples=300, deadline=None)
@given(data=st.binary(max_size=400), chunks=st.lists(st.binary(max_size=200), max_size=3))
def test_random_bytes_only_refuse_or_return_none(data: bytes, chunks: list[bytes]) -> None:
    results = _open_all(data, chunks)
    assert all(r in ("refused", None) for r in results[:3])


@settings(max_examples=200, deadline=None)
@given(kind=st.sampled_from([1, 2, 3, 4]), rest=st.binary(max_size=300))
def test_random_bytes_with_a_valid_prefix_only_refuse_or_return_none(kind: int, rest: bytes) -> None:
    results = _open_all(bytes([1, kind]) + rest)
    assert all(r in ("refused", None) for r in results[:3])


@pytest.mark.parametrize("name", ["grant", "post", "direct"])
def test_truncations_and_bit_flips_never_yield_anything_else(name: str) -> None:
    data = SAMPLES[name]
    good = {"grant": generate_circle_key(SAMPLES["key"]), "post": b"circle", "direct": b"direct"}[name]
    opener = {
        "grant": lambda d: open_grant(d, READER, AUTHOR.public_key),
        "post": lambda d: open_followers_post(d, {1: SAMPLES["key"]}, AUTHOR.public_key),
        "direct": lambda d: open_direct(d, (), READER, AUTHOR.public_key),
    }[name]
    assert opener(data) == good
    for cut in range(len(data)):
        assert _hostile(lambda: opener(data[:cut])) in ("refused", None)
    unnoticed = set()
    for at in range(len(data)):
        for bit in (0, 7):
            flipped = data[:at] + bytes([data[at] ^ (1 << bit)]) + data[at + 1:]
            got = _hostile(lambda: opener(flipped))
            assert got in ("refused", None, good)
            if got == good:
                unnoticed.add(at)
    # Only a flip inside another reader's wrap leaves mine intact: the unnoticed positions
    # are exactly the other wraps, whole; every header, own-wrap and content flip is seen.
    info = read_container(data)
    start = {"grant": 32, "post": 0, "direct": 30}[name]
    others = {w for w in range(info.wrap_count) if start + w * WRAP_SIZE in unnoticed}
    assert len(others) == max(info.wrap_count - 1, 0)
    assert unnoticed == {start + w * WRAP_SIZE + i for w in others for i in range(WRAP_SIZE)}


def test_absurd_counts_and_sizes_are_refused() -> None:
    grant, body = SAMPLES["grant"], SAMPLES["direct"]
    for bad in (grant[:30] + b"\xff\xff" + grant[32:], grant + bytes(WRAP_SIZE), grant[:-WRAP_SIZE],
                bytes(MAX_CONTAINER_SIZE + 1)):
        with pytest.raises(PrivateBoxError):
            open_grant(bad, READER, AUTHOR.public_key)
    for bad in (body[:26] + b"\xff\xff" + body[28:], body[:28] + bytes(2), body + bytes(MAX_CONTAINER_SIZE)):
        with pytest.raises(PrivateBoxError):
            open_direct(bad, (), READER, AUTHOR.public_key)
    with pytest.raises(PrivateBoxError):
        read_container(b"\x01\x09" + bytes(40))  # unknown kind


@pytest.mark.parametrize("author", [bytes(32), b"\xff" * 32, b"short", "text", None])
def test_unusable_author_keys_are_refused(author: Any) -> None:
    for call in (lambda: open_grant(SAMPLES["grant"], READER, author),
                 lambda: open_direct(SAMPLES["direct"], (), READER, author),
                 lambda: open_followers_post(SAMPLES["post"], {1: SAMPLES["key"]}, author)):
        with pytest.raises(PrivateBoxError):
            call()


def test_non_bytes_containers_are_refused() -> None:
    for value in (None, "text", 5, [1, 2]):
        assert _open_all(value)[:3] == ["refused"] * 3  # type: ignore[arg-type]


def test_error_class_sits_under_remote_crypto_errors() -> None:
    assert issubclass(PrivateBoxError, RemoteCryptoError) and issubclass(PrivateBoxError, CryptoError)


# -- vectors -----------------------------------------------------------------------------

def _vector() -> dict[str, Any]:
    return json.loads((VECTORS / "private.json").read_text())


def _people() -> dict[str, SigningIdentity]:
    people = {k["name"]: SigningIdentity(bytes.fromhex(k["seed"])) for k in _vector()["keys"]}
    people.update({f"seed {n:02x}*32": SigningIdentity(bytes([n]) * 32) for n in range(5, 13)})
    return people


class _Replay:
    """Feeds the random bytes a vector case recorded, in order, and checks the sizes asked."""

    def __init__(self, used: list[str]) -> None:
        self.left = [bytes.fromhex(u) for u in used]

    def __call__(self, n: int) -> bytes:
        value = self.left.pop(0)
        assert len(value) == n
        return value


def test_vectors_circle_grants_and_posts() -> None:
    v, people = _vector(), _people()
    alice = people["alice"]
    for key in v["keys"]:
        assert people[key["name"]].public_key.hex() == key["ed25519_public"]
    for case in v["circle"]:
        rnd = _Replay(case["random"])
        key = CircleKey(case["epoch"], rnd(32))
        assert key.key.hex() == case["circle_key"]
        chunks = make_grants(alice, key, [people[n].public_key for n in case["followers"]], rnd)
        assert [c.hex() for c in chunks] == case["chunks"] and not rnd.left
        for r in case["open_grant"]:
            got = open_grant(bytes.fromhex(case["chunks"][0]), people[r["reader"]], alice.public_key)
            assert (got.key.hex() if got else None) == r["expect"], r
    for case in v["followers_posts"]:
        nonce = bytes.fromhex(case["random"][0])
        key = CircleKey(case["epoch"], bytes.fromhex(next(c["circle_key"] for c in v["circle"]
                                                          if c["epoch"] == case["epoch"])))
        assert seal_followers_post(alice.public_key, key, bytes.fromhex(case["plaintext"]), nonce).hex() == case["body"]
        keys = {int(e): bytes.fromhex(k) for e, k in case["open_with_epoch_keys"].items()}
        got = open_followers_post(bytes.fromhex(case["body"]), keys, alice.public_key)
        assert (got.hex() if got is not None else None) == case["expect"]


def test_vectors_direct() -> None:
    v, people = _vector(), _people()
    alice = people["alice"]
    for case in v["direct"]:
        rnd = _Replay(case["random"])
        sealed = seal_direct(alice, [people[n].public_key for n in case["recipients"]],
                             bytes.fromhex(case["plaintext"]), rnd, max_size=case["max_size"])
        assert sealed.body.hex() == case["body"] and [c.hex() for c in sealed.chunks] == case["chunks"]
        for r in case["open_direct"]:
            got = open_direct(sealed.body, sealed.chunks, people[r["reader"]], alice.public_key)
            assert (got.hex() if got is not None else None) == r["expect"], r


def test_vectors_invalid() -> None:
    v, people = _vector(), _people()
    keys = {int(e): bytes.fromhex(k) for e, k in v["followers_posts"][0]["open_with_epoch_keys"].items()}
    for case in v["invalid"]:
        data, reader = bytes.fromhex(case["data"]), people[case["reader"]]
        author = people[case["author"]].public_key
        chunks = [bytes.fromhex(c) for c in case["chunks"]]
        call = {"open_grant": lambda: open_grant(data, reader, author),
                "open_followers_post": lambda: open_followers_post(data, keys, author),
                "open_direct": lambda: open_direct(data, chunks, reader, author)}[case["op"]]
        got = _hostile(call)
        assert {"refused": "error", None: "none"}.get(got, got) == case["expect"], case["comment"]


def test_private_generator_reproduces_the_committed_vector(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-B", str(VECTORS / "gen_private.py"), str(tmp_path)], check=True, timeout=120)
    assert (tmp_path / "private.json").read_bytes() == (VECTORS / "private.json").read_bytes()
