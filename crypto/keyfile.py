"""The key file: a user's secret seed at rest, encrypted with a passphrase.

Byte layout (all integers big-endian; docs/protocol.md section "Key file"):

    magic       8   b"MURKEY1\\n"
    kind        1   0 = unencrypted (explicit --no-passphrase), 1 = Argon2id + SecretBox
    public_key 32   in the clear, so `whoami` works without the passphrase
    kind 1:  opslimit 4 | memlimit 8 | salt 16 | nonce 24 | secretbox(seed) 48
    kind 0:  seed 32
    check       8   BLAKE2b-256(everything above)[:8], tells damage from a wrong passphrase

Writing is atomic (temporary file, fsync, rename, fsync of the folder) with mode 0600.
Reading never writes: a wrong passphrase leaves the file as it was.
"""

from __future__ import annotations

import hashlib
import os
import struct
from dataclasses import dataclass
from pathlib import Path

import nacl.exceptions
import nacl.pwhash
import nacl.secret

from .errors import KeyFileError, PassphraseRequiredError, WrongPassphraseError
from .signing import SEED_SIZE, SigningIdentity

MAGIC = b"MURKEY1\n"
KIND_PLAIN = 0
KIND_ARGON2ID = 1
SALT_SIZE = nacl.pwhash.argon2id.SALTBYTES  # 16
NONCE_SIZE = nacl.secret.SecretBox.NONCE_SIZE  # 24
_CHECK_SIZE = 8
_BOX_SIZE = SEED_SIZE + nacl.secret.SecretBox.MACBYTES  # 48

# Interactive strength (64 MiB, 2 passes): a few tenths of a second per unlock. The file
# records the figures it was made with, so stronger settings stay readable.
DEFAULT_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_INTERACTIVE
DEFAULT_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_INTERACTIVE
# Guards against a damaged or hostile file asking for absurd work.
_MAX_OPSLIMIT = nacl.pwhash.argon2id.OPSLIMIT_SENSITIVE
_MAX_MEMLIMIT = nacl.pwhash.argon2id.MEMLIMIT_SENSITIVE


@dataclass(frozen=True)
class KdfParams:
    opslimit: int = DEFAULT_OPSLIMIT
    memlimit: int = DEFAULT_MEMLIMIT


def encode_key_file(identity: SigningIdentity, passphrase: bytes | None, *, salt: bytes = b"",
                    nonce: bytes = b"", kdf: KdfParams = KdfParams()) -> bytes:
    """Return the bytes of a key file for `identity`. Pure: salt and nonce come from the caller.

    `passphrase=None` writes the seed unencrypted (only for an explicit --no-passphrase).
    """
    head = MAGIC
    if passphrase is None:
        body = head + bytes([KIND_PLAIN]) + identity.public_key + identity.seed
    else:
        if len(salt) != SALT_SIZE or len(nonce) != NONCE_SIZE:
            raise ValueError("salt must have 16 bytes and nonce 24")
        key = _derive(passphrase, salt, kdf)
        box = nacl.secret.SecretBox(key).encrypt(identity.seed, nonce).ciphertext
        body = (head + bytes([KIND_ARGON2ID]) + identity.public_key
                + struct.pack(">IQ", kdf.opslimit, kdf.memlimit) + salt + nonce + box)
    return body + _check(body)


def decode_public_key(data: bytes) -> bytes:
    """Return the public key recorded in key-file bytes, without the passphrase."""
    _, public_key, _ = _parse(data)
    return public_key


def is_encrypted(data: bytes) -> bool:
    return _parse(data)[0] == KIND_ARGON2ID


def decode_key_file(data: bytes, passphrase: bytes | None) -> SigningIdentity:
    """Open key-file bytes.

    Raises KeyFileError (damaged or unknown format), PassphraseRequiredError,
    WrongPassphraseError.
    """
    kind, public_key, rest = _parse(data)
    if kind == KIND_PLAIN:
        seed = rest
    else:
        if passphrase is None:
            raise PassphraseRequiredError("this key file is encrypted: a passphrase is needed")
        opslimit, memlimit = struct.unpack(">IQ", rest[:12])
        salt = rest[12:12 + SALT_SIZE]
        nonce = rest[12 + SALT_SIZE:12 + SALT_SIZE + NONCE_SIZE]
        box = rest[12 + SALT_SIZE + NONCE_SIZE:]
        kdf = KdfParams(opslimit, memlimit)
        try:
            seed = nacl.secret.SecretBox(_derive(passphrase, salt, kdf)).decrypt(box, nonce)
        except nacl.exceptions.CryptoError:
            raise WrongPassphraseError("wrong passphrase: the key file was not changed") from None
    identity = SigningIdentity(seed)
    if identity.public_key != public_key:
        raise KeyFileError("key file is inconsistent: its secret does not match its public key")
    return identity


def write_key_file(path: Path, data: bytes) -> None:
    """Create `path` atomically with mode 0600. Refuses to replace an existing file."""
    path = Path(path)
    if path.exists():
        raise KeyFileError(f"a key file already exists at {path}; refusing to overwrite it")
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.link(tmp, path)  # fails if path appeared meanwhile: never replaces a key
    except FileExistsError:
        raise KeyFileError(f"a key file already exists at {path}; refusing to overwrite it") from None
    finally:
        tmp.unlink(missing_ok=True)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def read_key_file(path: Path) -> bytes:
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise KeyFileError(f"no key file at {path} (run `murmurate init` first)") from None
    except OSError as e:
        raise KeyFileError(f"cannot read key file {path}: {e.strerror}") from None


def _parse(data: bytes) -> tuple[int, bytes, bytes]:
    if len(data) < len(MAGIC) + 1 + 32 + _CHECK_SIZE or not data.startswith(MAGIC):
        raise KeyFileError("not a Murmurate key file (wrong magic or too short)")
    body, check = data[:-_CHECK_SIZE], data[-_CHECK_SIZE:]
    if _check(body) != check:
        raise KeyFileError("key file is damaged (checksum mismatch); restore it from a backup")
    kind = body[len(MAGIC)]
    public_key = body[len(MAGIC) + 1:len(MAGIC) + 33]
    rest = body[len(MAGIC) + 33:]
    if kind == KIND_PLAIN and len(rest) == SEED_SIZE:
        return kind, public_key, rest
    if kind == KIND_ARGON2ID and len(rest) == 12 + SALT_SIZE + NONCE_SIZE + _BOX_SIZE:
        opslimit, memlimit = struct.unpack(">IQ", rest[:12])
        if not (1 <= opslimit <= _MAX_OPSLIMIT and 8192 <= memlimit <= _MAX_MEMLIMIT):
            raise KeyFileError("key file asks for key-derivation limits out of range")
        return kind, public_key, rest
    raise KeyFileError(f"unknown key file kind {kind} or wrong length")


def _derive(passphrase: bytes, salt: bytes, kdf: KdfParams) -> bytes:
    return nacl.pwhash.argon2id.kdf(nacl.secret.SecretBox.KEY_SIZE, passphrase, salt,
                                    opslimit=kdf.opslimit, memlimit=kdf.memlimit)


def _check(body: bytes) -> bytes:
    return hashlib.blake2b(body, digest_size=32).digest()[:_CHECK_SIZE]
