"""Keys, signatures and key files. Imports only PyNaCl and the standard library."""

from .errors import (BadSignatureError, CryptoError, InvalidIdError, KeyFileError,
                     LocalCryptoError, PassphraseRequiredError, RemoteCryptoError,
                     WrongPassphraseError)
from .ids import ID_PREFIX, decode_id, encode_id, fingerprint
from .keyfile import (KdfParams, decode_key_file, decode_public_key, encode_key_file,
                      is_encrypted, read_key_file, write_key_file)
from .private import (CircleKey, PrivateBoxError, SealedDirect, generate_circle_key, make_grants,
                      next_circle_key, open_direct, open_followers_post, open_grant, seal_direct,
                      seal_followers_post)
from .signing import SEED_SIZE, SIGNATURE_SIZE, SigningIdentity, verify_signature

__all__ = [
    "BadSignatureError", "CryptoError", "InvalidIdError", "KeyFileError", "LocalCryptoError",
    "PassphraseRequiredError", "RemoteCryptoError", "WrongPassphraseError",
    "ID_PREFIX", "decode_id", "encode_id", "fingerprint",
    "KdfParams", "decode_key_file", "decode_public_key", "encode_key_file", "is_encrypted",
    "read_key_file", "write_key_file",
    "CircleKey", "PrivateBoxError", "SealedDirect", "generate_circle_key", "make_grants", "next_circle_key",
    "open_direct", "open_followers_post", "open_grant", "seal_direct", "seal_followers_post",
    "SEED_SIZE", "SIGNATURE_SIZE", "SigningIdentity", "verify_signature",
]
