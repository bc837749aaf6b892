"""The key file: encrypted at rest, written once and atomically, never changed by a read."""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from pathlib import Path

import pytest

from helpers import identity
from murmurate.crypto import (KdfParams, KeyFileError, PassphraseRequiredError, WrongPassphraseError,
                              decode_key_file, decode_public_key, encode_key_file, is_encrypted,
                              read_key_file, write_key_file)

FAST = KdfParams(opslimit=1, memlimit=8192)
SALT = bytes(range(16))
NONCE = bytes(range(100, 124))
ME = identity(1)
KDF_AT = 8 + 1 + 32  # magic, kind, public key: then opslimit u32, memlimit u64


def encrypted(passphrase: bytes = b"correct horse") -> bytes:
    return encode_key_file(ME, passphrase, salt=SALT, nonce=NONCE, kdf=FAST)


def with_check(body: bytes) -> bytes:
    """Re-seal `body` with a valid trailing check, as a hostile file would."""
    return body + hashlib.blake2b(body, digest_size=32).digest()[:8]


def test_create_and_load_with_passphrase(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "identity.key"
    write_key_file(path, encrypted())
    data = read_key_file(path)
    assert is_encrypted(data)
    assert ME.seed not in data
    loaded = decode_key_file(data, b"correct horse")
    assert loaded.seed == ME.seed and loaded.public_key == ME.public_key


def test_file_mode_is_0600(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    write_key_file(path, encrypted())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_written_atomically_without_leftovers(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    data = encrypted()
    write_key_file(path, data)
    assert os.listdir(tmp_path) == ["identity.key"]
    assert path.read_bytes() == data


def test_existing_file_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    path.write_bytes(b"the old key")
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(path, encrypted())
    assert path.read_bytes() == b"the old key"
    assert os.listdir(tmp_path) == ["identity.key"]


def test_file_appearing_during_write_is_not_replaced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Another process creates the key between the existence check and the final link.
    path = tmp_path / "identity.key"
    real_link = os.link

    def racing_link(src: os.PathLike[str], dst: os.PathLike[str]) -> None:
        Path(dst).write_bytes(b"the other process's key")
        real_link(src, dst)

    monkeypatch.setattr(os, "link", racing_link)
    with pytest.raises(KeyFileError, match="already exists"):
        write_key_file(path, encrypted())
    assert path.read_bytes() == b"the other process's key"
    assert os.listdir(tmp_path) == ["identity.key"]


def test_wrong_passphrase_leaves_file_unchanged(tmp_path: Path) -> None:
    path = tmp_path / "identity.key"
    write_key_file(path, encrypted(b"right"))
    before = path.read_bytes()
    mtime = path.stat().st_mtime_ns
    with pytest.raises(WrongPassphraseError):
        decode_key_file(read_key_file(path), b"wrong")
    assert path.read_bytes() == before
    assert path.stat().st_mtime_ns == mtime


@pytest.mark.parametrize("passphrase", [b"correct horse", None])
def test_truncated_file_is_damage_not_wrong_passphrase(passphrase: bytes | None) -> None:
    data = encrypted() if passphrase else encode_key_file(ME, None)
    for size in range(len(data)):
        with pytest.raises(KeyFileError):
            decode_key_file(data[:size], passphrase)


@pytest.mark.parametrize("passphrase", [b"correct horse", None])
def test_every_bit_flip_is_damage_not_wrong_passphrase(passphrase: bytes | None) -> None:
    data = encrypted() if passphrase else encode_key_file(ME, None)
    for i in range(len(data)):
        for bit in range(8):
            damaged = bytearray(data)
            damaged[i] ^= 1 << bit
            with pytest.raises(KeyFileError):
                decode_key_file(bytes(damaged), passphrase)


def test_unencrypted_loads_without_passphrase() -> None:
    data = encode_key_file(ME, None)
    assert not is_encrypted(data)
    assert decode_key_file(data, None).seed == ME.seed


def test_encrypted_without_passphrase_asks_for_one() -> None:
    with pytest.raises(PassphraseRequiredError):
        decode_key_file(encrypted(), None)


@pytest.mark.parametrize("passphrase", [b"correct horse", None])
def test_public_key_readable_without_passphrase(passphrase: bytes | None) -> None:
    data = encrypted() if passphrase else encode_key_file(ME, None)
    assert decode_public_key(data) == ME.public_key


def test_inconsistent_public_key_refused() -> None:
    data = encode_key_file(ME, None)
    other = identity(2).public_key
    swapped = with_check(data[:9] + other + data[41:-8])
    with pytest.raises(KeyFileError, match="does not match its public key"):
        decode_key_file(swapped, None)


@pytest.mark.parametrize("opslimit,memlimit", [
    (0, 8192), (2**32 - 1, 8192), (1, 0), (1, 8191), (1, 2**63), (2**32 - 1, 2**64 - 1)])
def test_absurd_kdf_limits_refused_before_any_work(opslimit: int, memlimit: int) -> None:
    data = encrypted()
    body = data[:KDF_AT] + struct.pack(">IQ", opslimit, memlimit) + data[KDF_AT + 12:-8]
    hostile = with_check(body)
    with pytest.raises(KeyFileError, match="out of range"):
        decode_key_file(hostile, b"correct horse")
    with pytest.raises(KeyFileError, match="out of range"):
        decode_public_key(hostile)


def test_figures_recorded_in_file_are_used() -> None:
    data = encode_key_file(ME, b"pw", salt=SALT, nonce=NONCE, kdf=KdfParams(opslimit=2, memlimit=16384))
    assert struct.unpack(">IQ", data[KDF_AT:KDF_AT + 12]) == (2, 16384)
    assert decode_key_file(data, b"pw").seed == ME.seed


def test_missing_file_is_a_key_file_error(tmp_path: Path) -> None:
    with pytest.raises(KeyFileError, match="no key file"):
        read_key_file(tmp_path / "absent.key")


@pytest.mark.parametrize("salt,nonce", [(b"", NONCE), (SALT, b""), (SALT + b"x", NONCE)])
def test_encrypting_needs_salt_and_nonce_of_the_right_size(salt: bytes, nonce: bytes) -> None:
    with pytest.raises(ValueError):
        encode_key_file(ME, b"pw", salt=salt, nonce=nonce, kdf=FAST)
