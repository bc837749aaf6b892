"""Keys, signatures and key files. Imports only PyNaCl and the standard library."""

from .errors import (BadSignatureError, CryptoError, InvalidIdError, KeyFileError,
                     LocalCryptoError, PassphraseRequiredError, RemoteCryptoError,
                     WrongPassphraseError)
from .ids import ID_PREFIX, decode_id, encode_id, fingerprint
from .keyfile import (KdfParams, decode_key_file, decode_public_key, encode_key_file,
                      is_encrypted, read_key_file, write_key_file)
from .signing import SEED_SIZE, SIGNATURE_SIZE, SigningIdentity, verify_signature

__all__ = [
    "BadSignatureError", "CryptoError", "InvalidIdError", "KeyFileError", "LocalCryptoError",
    "PassphraseRequiredError", "RemoteCryptoError", "WrongPassphraseError",
    "ID_PREFIX", "decode_id", "encode_id", "fingerprint",
    "KdfParams", "decode_key_file", "decode_public_key", "encode_key_file", "is_encrypted",
    "read_key_file", "write_key_file",
    "SEED_SIZE", "SIGNATURE_SIZE", "SigningIdentity", "verify_signature",
]
