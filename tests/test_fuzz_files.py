"""Fuzzing the readers of files a user may be handed or may damage (issue 11, point 9):
export archives, key files, config.toml and relay.toml. Any bytes give a value or the
documented error, never another exception."""

from __future__ import annotations

import hashlib
import struct
import tempfile
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from fuzzing import mutated
from murmurate.crypto import (KdfParams, KeyFileError, PassphraseRequiredError, SigningIdentity,
                              WrongPassphraseError, decode_key_file, encode_key_file)
from murmurate.node.errors import UsageError
from murmurate.node.home import Home
from murmurate.node.relay.config import RelayConfigError, load_relay_config
from murmurate.store.archive import MAGIC, check_archive
from murmurate.store.entry import PayloadType, create_entry, encode_frame
from murmurate.store.errors import ArchiveError

ME = SigningIdentity(bytes([9]) * 32)
T0 = 1_700_000_000_000


def _archive(frames: list[bytes]) -> bytes:
    body = MAGIC + b"".join(struct.pack(">I", len(f)) + f for f in frames) + struct.pack(">I", 0)
    return body + hashlib.blake2b(body, digest_size=32).digest()


def _frames() -> list[bytes]:
    out, prev = [], None
    for seq in (1, 2, 3):
        entry = create_entry(ME, seq=seq, prev=prev, timestamp_ms=T0 + seq, payload_type=PayloadType.POST,
                             payload={"text": f"{seq}"})
        prev = entry.envelope.hash
        out.append(encode_frame(entry))
    return out


FRAMES = _frames()
ARCHIVE = _archive(FRAMES)


def _in_file(data: bytes, name: str):
    folder = tempfile.TemporaryDirectory()
    path = Path(folder.name) / name
    path.write_bytes(data)
    return folder, path


# Archives whose checksum is right (recomputed), so the checks past it are reached: frames
# repeated, dropped, reordered, cut or changed.
SHUFFLED = st.lists(st.one_of(st.sampled_from(FRAMES), mutated(FRAMES)), max_size=6).map(_archive)


@given(st.one_of(st.binary(max_size=200), mutated([ARCHIVE]), SHUFFLED,
                 st.binary(max_size=100).map(lambda b: MAGIC + b)))
def test_check_archive_gives_counts_or_an_archive_error(data: bytes) -> None:
    folder, path = _in_file(data, "a.murexp")
    with folder:
        try:
            feeds, entries = check_archive(path, T0 + 10_000)
        except ArchiveError:
            return
        assert feeds <= entries


def _key_files() -> st.SearchStrategy[bytes]:
    """Key files with a correct check over changed fields: kind, lengths, limits, box."""
    good = encode_key_file(ME, b"pw", salt=bytes(16), nonce=bytes(24), kdf=KdfParams(1, 8192))

    def rebuild(body: bytes) -> bytes:
        return body + hashlib.blake2b(body, digest_size=32).digest()[:8]

    def with_limits(ops: int, mem: int) -> bytes:
        body = bytearray(good[:-8])
        body[41:53] = struct.pack(">IQ", ops, mem)
        return bytes(body)

    # In-range limits are kept at the minimum, so no example costs a real Argon2id run.
    limits = st.one_of(st.tuples(st.integers(0, 2**32 - 1), st.integers(0, 2**64 - 1)),
                       st.tuples(st.sampled_from([0, 5, 2**32 - 1]), st.just(8192)),
                       st.tuples(st.just(1), st.sampled_from([0, 8191, 2**30 + 1, 2**64 - 1])))
    return st.one_of(
        st.binary(max_size=200),
        mutated([good, good[:-8]]),
        mutated([good[:-8]]).map(rebuild),
        limits.filter(lambda lm: not (1 <= lm[0] <= 4 and 8192 <= lm[1] <= 2**30)).map(
            lambda lm: rebuild(with_limits(*lm))))


@given(_key_files(), st.sampled_from([None, b"pw", b"wrong"]))
def test_decode_key_file_gives_an_identity_or_a_key_file_error(data: bytes, passphrase: bytes | None) -> None:
    try:
        decode_key_file(data, passphrase)
    except (KeyFileError, WrongPassphraseError, PassphraseRequiredError):
        pass


TOML_LINES = st.sampled_from([
    "[post]", "[store]", "[[post]]", "[[store]]", "post = 5", "store = 'x'", "max_chars = 100", "max_chars = true",
    "max_chars = 1e3", "map_size_mb = -1", "map_size_mb = 99999999999999999999", "x = [[[[1]]]]", "[post.max_chars]",
    "data_dir = '/tmp/x'", "unencrypted_key = true", "[admission]", "[limits]", "[quota]", "[metrics]", "[log]",
    "listen = ['/ip4/127.0.0.1/tcp/0']", "format = 'json'", "level = 'nope'", "users = ['mur_x']", "= 1", "'",
])
CONFIGS = st.one_of(st.binary(max_size=200), st.lists(TOML_LINES, max_size=8).map(lambda ls: "\n".join(ls).encode()),
                    st.lists(st.one_of(TOML_LINES, st.text(max_size=20)), max_size=6)
                    .map(lambda ls: "\n".join(ls).encode("utf-8", "surrogatepass")))


@given(CONFIGS)
def test_load_config_gives_a_config_or_a_usage_error(data: bytes) -> None:
    folder, path = _in_file(data, "config.toml")
    with folder:
        try:
            Home(path.parent, path).load_config()
        except UsageError as e:
            assert "config.toml" in str(e)


@given(CONFIGS)
def test_load_relay_config_gives_a_config_or_a_relay_config_error(data: bytes) -> None:
    folder, path = _in_file(data, "relay.toml")
    with folder:
        try:
            load_relay_config(path)
        except RelayConfigError as e:
            assert "relay.toml" in str(e)
