"""Ed25519 signing keys and signature checks (PyNaCl)."""

from __future__ import annotations

from dataclasses import dataclass, field

import nacl.bindings
import nacl.exceptions
import nacl.signing

SEED_SIZE = 32
SIGNATURE_SIZE = 64


@dataclass(frozen=True)
class SigningIdentity:
    """A user's key pair. Build it from a 32-byte seed; randomness comes from the caller."""

    seed: bytes = field(repr=False)

    def __post_init__(self) -> None:
        if len(self.seed) != SEED_SIZE:
            raise ValueError(f"a seed has {SEED_SIZE} bytes, not {len(self.seed)}")
        object.__setattr__(self, "_key", nacl.signing.SigningKey(self.seed))

    @property
    def public_key(self) -> bytes:
        return bytes(self._key.verify_key)  # type: ignore[attr-defined]

    def sign(self, message: bytes) -> bytes:
        """Return the 64-byte detached signature of `message`."""
        return self._key.sign(message).signature  # type: ignore[attr-defined]


def verify_signature(public_key: bytes, message: bytes, signature: bytes) -> bool:
    """True if `signature` is `public_key`'s signature of `message`. Never raises on bad input."""
    if len(signature) != SIGNATURE_SIZE or len(public_key) != 32:
        return False
    try:
        nacl.bindings.crypto_sign_open(signature + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError, ValueError):
        return False
    return True
