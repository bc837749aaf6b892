"""Errors of the crypto package.

`CryptoError` is the base. `LocalCryptoError` covers mistakes on this side (a wrong
passphrase, a damaged key file, a mistyped id); `RemoteCryptoError` covers what a
remote party sent (a signature that does not verify).
"""


class CryptoError(Exception):
    """Base of every error raised by murmurate.crypto."""


class LocalCryptoError(CryptoError):
    """Something on this side is wrong: input the user typed, or a file on disk."""


class RemoteCryptoError(CryptoError):
    """Something a remote party sent is wrong."""


class InvalidIdError(LocalCryptoError):
    """A typed or pasted id is not a valid Murmurate id (bad prefix, length or checksum)."""


class KeyFileError(LocalCryptoError):
    """A key file is missing, truncated, damaged or of an unknown format."""


class WrongPassphraseError(LocalCryptoError):
    """The passphrase does not open the key file. The file is left untouched."""


class PassphraseRequiredError(LocalCryptoError):
    """The key file is encrypted and no passphrase was given."""


class BadSignatureError(RemoteCryptoError):
    """A signature does not verify against the claimed author's key."""
