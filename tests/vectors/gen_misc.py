"""Id, key-file and canonical-msgpack vectors."""

from __future__ import annotations

import hashlib
import struct
from typing import Any

from murmurate.crypto import KdfParams, SigningIdentity, encode_id, encode_key_file

from tagged import tag

_B32 = "abcdefghijklmnopqrstuvwxyz234567"


# -- ids ------------------------------------------------------------------------------------

def build_ids() -> dict[str, Any]:
    cases: list[dict[str, Any]] = []

    def ok(comment: str, text: str, key: bytes) -> None:
        cases.append({"comment": comment, "text": text, "expect": "ok", "public_key": key.hex()})

    def bad(comment: str, text: str, expect: str) -> None:
        cases.append({"comment": comment, "text": text, "expect": expect, "public_key": None})

    keys = [SigningIdentity(bytes([n]) * 32).public_key for n in (1, 2, 3)]
    for n, key in zip((1, 2, 3), keys):
        ok(f"valid: id of the key made from seed {n:02x}*32", encode_id(key), key)
    for key in (bytes(32), b"\xff" * 32):
        ok(f"valid: id of the public key {key[:1].hex()}*32 (ids encode any 32 bytes)", encode_id(key), key)
    alice = encode_id(keys[0])
    ok("valid: upper case is accepted (prefix too)", alice.upper(), keys[0])
    ok("valid: surrounding white space is ignored", f"  {alice}\n", keys[0])

    body = alice[4:]
    pos = 20
    swapped = _B32[(_B32.index(body[pos]) + 1) % 32]
    bad("checksum: one character changed", "mur_" + body[:pos] + swapped + body[pos + 1:], "checksum")
    i = next(k for k in range(len(body) - 1) if body[k] != body[k + 1])
    bad("checksum: two neighbouring characters swapped",
        "mur_" + body[:i] + body[i + 1] + body[i] + body[i + 2:], "checksum")
    last = _B32.index(body[-1])
    assert last & 0b11 == 0
    bad("checksum: the last character's two spare bits set to 01 (same key and checksum bytes, but "
        "every id has one text form)", "mur_" + body[:-1] + _B32[last | 1], "checksum")
    bad("prefix: 'mux_' instead of 'mur_'", "mux_" + body, "prefix")
    bad("prefix: no prefix", body, "prefix")
    bad("prefix: 'mur-' instead of 'mur_'", "mur-" + body, "prefix")
    bad("length: one character short", alice[:-1], "length")
    bad("length: one character too many", alice + "a", "length")
    bad("length: nothing after the prefix", "mur_", "length")
    bad("alphabet: '0' is not in the base32 alphabet (a-z, 2-7)", "mur_" + body[:10] + "0" + body[11:], "alphabet")
    bad("alphabet: '8' is not in the base32 alphabet", "mur_" + body[:10] + "8" + body[11:], "alphabet")
    bad("alphabet: a space inside the id", "mur_" + body[:10] + " " + body[11:], "alphabet")
    bad("alphabet: '=' padding is not written", "mur_" + body[:-1] + "=", "alphabet")
    return {
        "description": ("Text ids: 'mur_' + lower-case unpadded base32(public_key || "
                        "BLAKE2b-256('murmurate-id-v1' || public_key)[:4]). expect: ok (with the public "
                        "key) or the refusal: prefix, length, alphabet, checksum. See docs/protocol.md."),
        "cases": cases,
    }


# -- key files ------------------------------------------------------------------------------

PASSPHRASE = "correct horse battery staple"
MIN_KDF = KdfParams(opslimit=1, memlimit=8192)  # libsodium's Argon2id minimums: fast tests


def _recheck(data: bytes) -> bytes:
    """Replace the 8-byte check so that only the planted fault remains."""
    body = data[:-8]
    return body + hashlib.blake2b(body, digest_size=32).digest()[:8]


def build_keyfile() -> dict[str, Any]:
    ident = SigningIdentity(bytes([1]) * 32)
    salt = bytes(range(16))
    nonce = bytes(range(100, 124))
    enc = encode_key_file(ident, PASSPHRASE.encode(), salt=salt, nonce=nonce, kdf=MIN_KDF)
    plain = encode_key_file(ident, None)
    cases: list[dict[str, Any]] = []

    def add(comment: str, data: bytes, passphrase: str | None, expect: str, detail: str | None = None) -> None:
        case: dict[str, Any] = {"comment": comment, "file": data.hex(), "passphrase": passphrase,
                                "expect": expect, "detail": detail}
        if expect == "ok":
            case.update(seed=ident.seed.hex(), public_key=ident.public_key.hex())
        cases.append(case)

    add("valid: encrypted key file (kind 1) with the minimum Argon2id limits, opslimit 1 and memlimit 8192",
        enc, PASSPHRASE, "ok")
    add("valid: unencrypted key file (kind 0, for --no-passphrase)", plain, None, "ok")
    add("valid: a passphrase given for an unencrypted file is not needed and ignored", plain, "anything", "ok")
    add("wrong passphrase: the file is intact, the secretbox does not open", enc, "Correct horse battery staple",
        "WrongPassphraseError")
    add("encrypted file opened without a passphrase", enc, None, "PassphraseRequiredError")
    damaged = bytearray(enc)
    damaged[-20] ^= 0x01
    add("damaged: one bit of the secretbox flipped; the check bytes catch it", bytes(damaged), PASSPHRASE,
        "KeyFileError", "damaged")
    add("tampered: one bit of the secretbox flipped and the check recomputed: the check only tells "
        "accidental damage from a wrong passphrase, the secretbox's MAC refuses the rest",
        _recheck(bytes(damaged)), PASSPHRASE, "WrongPassphraseError")
    add("truncated: the last byte is missing", enc[:-1], PASSPHRASE, "KeyFileError", "damaged")
    add("wrong magic (MURKEY2)", _recheck(b"MURKEY2\n" + enc[8:]), PASSPHRASE, "KeyFileError", "format")
    add("too short to be a key file", enc[:20], PASSPHRASE, "KeyFileError", "format")
    add("unknown kind 2", _recheck(enc[:8] + b"\x02" + enc[9:]), PASSPHRASE, "KeyFileError", "format")
    add("kind 1 with the length of a kind 0 file", _recheck(plain[:8] + b"\x01" + plain[9:]), PASSPHRASE,
        "KeyFileError", "format")
    limits_at = 8 + 1 + 32
    add("opslimit 0, below the minimum 1", _recheck(enc[:limits_at] + struct.pack(">I", 0) + enc[limits_at + 4:]),
        PASSPHRASE, "KeyFileError", "limits")
    add("memlimit 8191, below the minimum 8192",
        _recheck(enc[:limits_at + 4] + struct.pack(">Q", 8191) + enc[limits_at + 12:]),
        PASSPHRASE, "KeyFileError", "limits")
    other = SigningIdentity(bytes([2]) * 32).public_key
    add("inconsistent: unencrypted file whose public key is not the seed's",
        _recheck(plain[:9] + other + plain[41:]), None, "KeyFileError", "inconsistent")
    return {
        "description": ("Key files. Layout: magic 'MURKEY1\\n' | kind u8 | public_key 32 | kind 1: opslimit "
                        "u32be | memlimit u64be | salt 16 | nonce 24 | secretbox(seed) 48 ; kind 0: seed 32 | "
                        "check = BLAKE2b-256(all before)[:8]. Passphrases are UTF-8. expect: ok (with seed "
                        "and public key) or the error class; detail names the KeyFileError's cause."),
        "encrypted": {"passphrase": PASSPHRASE, "seed": ident.seed.hex(), "public_key": ident.public_key.hex(),
                      "salt": salt.hex(), "nonce": nonce.hex(), "opslimit": MIN_KDF.opslimit,
                      "memlimit": MIN_KDF.memlimit, "file": enc.hex()},
        "cases": cases,
    }


# -- canonical msgpack ----------------------------------------------------------------------

def _nest(levels: int, inner: Any) -> Any:
    for _ in range(levels):
        inner = [inner]
    return inner


def build_canonical() -> dict[str, Any]:
    cases: list[dict[str, Any]] = []

    def ok(comment: str, hexed: str, value: Any) -> None:
        cases.append({"comment": comment, "msgpack": hexed, "expect": "canonical", "value": tag(value)})

    def bad(comment: str, hexed: str, kind: str) -> None:
        cases.append({"comment": comment, "msgpack": hexed, "expect": kind, "value": None})

    ok("nil", "c0", None)
    ok("false", "c2", False)
    ok("true", "c3", True)
    for n, h in [(0, "00"), (127, "7f"), (128, "cc80"), (255, "ccff"), (256, "cd0100"), (65535, "cdffff"),
                 (65536, "ce00010000"), (2**32 - 1, "ceffffffff"), (2**32, "cf0000000100000000"),
                 (2**53 - 1, "cf001fffffffffffff"), (2**64 - 1, "cfffffffffffffffff"), (-1, "ff"), (-32, "e0"),
                 (-33, "d0df"), (-128, "d080"), (-129, "d1ff7f"), (-32768, "d18000"), (-32769, "d2ffff7fff"),
                 (-2**31 - 1, "d3ffffffff7fffffff"), (-2**63, "d38000000000000000")]:
        ok(f"int {n}: the shortest form", h, n)
    ok("empty str", "a0", "")
    ok("str 'é' (2 UTF-8 bytes)", "a2c3a9", "é")
    ok("str of 31 bytes: fixstr", "bf" + "61" * 31, "a" * 31)
    ok("str of 32 bytes: str8", "d920" + "61" * 32, "a" * 32)
    ok("str of 256 bytes: str16", "da0100" + "61" * 256, "a" * 256)
    ok("empty bin: bin8", "c400", b"")
    ok("bin of 3 bytes", "c403010203", b"\x01\x02\x03")
    ok("bin of 256 bytes: bin16", "c50100" + "00" * 256, bytes(256))
    ok("empty array", "90", [])
    ok("array of 15: fixarray", "9f" + "00" * 15, [0] * 15)
    ok("array of 16: array16", "dc0010" + "00" * 16, [0] * 16)
    ok("nested arrays", "920192029103", [1, [2, [3]]])
    ok("empty map", "80", {})
    ok("map keys sorted by UTF-8 bytes, not by length: 'Z' < 'aa' < 'b' < 'é'", "84a15a03a2616101a16202a2c3a904",
       {"b": 2, "aa": 1, "é": 4, "Z": 3})
    ok("map of 16: map16", "de0010" + "".join(f"a2{ord('a') + i // 10:02x}{ord('0') + i % 10:02x}00"
                                              for i in range(16)), {f"{chr(97 + i // 10)}{i % 10}": 0
                                                                    for i in range(16)})
    ok("32 nested arrays around an int: 32 levels of containers is the limit",
       "91" * 32 + "01", _nest(32, 1))

    for h, what in [("cc05", "5 as uint8"), ("cc7f", "127 as uint8"), ("cd00ff", "255 as uint16"),
                    ("ce0000ffff", "65535 as uint32"), ("cf00000000ffffffff", "2^32-1 as uint64"),
                    ("d001", "1 as int8 (non-negative ints are written unsigned)"), ("d0ff", "-1 as int8"),
                    ("d1ff80", "-128 as int16"), ("d3ffffffffffffffff", "-1 as int64")]:
        bad(f"non-minimal int: {what}", h, "non_canonical")
    bad("short str as str8", "d90161", "non_canonical")
    bad("str as str16", "da000161", "non_canonical")
    bad("bin as bin16", "c5000161", "non_canonical")
    bad("array of 1 as array16", "dc000101", "non_canonical")
    bad("map of 1 as map16", "de0001a16101", "non_canonical")
    bad("map keys out of order", "82a16202a16101", "non_canonical")
    bad("map key 'b' before 'aa' (length-first order is not ours)", "82a16202a2616101", "non_canonical")
    bad("duplicate map key", "82a16101a16102", "non_canonical")
    bad("float32", "ca3fc00000", "non_canonical")
    bad("float64", "cb3ff8000000000000", "non_canonical")
    bad("float inside an array", "9201ca3fc00000", "non_canonical")
    bad("map key is bin: the decoder accepts str and bin keys, so a bin key is caught by the re-encoding "
        "check (other key types are malformed, below)", "81c4016101", "non_canonical")
    bad("33 nested arrays, the innermost empty: a 33rd level of containers, whatever it holds",
        "91" * 32 + "90", "non_canonical")
    bad("33 nested arrays around an int", "91" * 33 + "01", "non_canonical")
    bad("34 nested arrays", "91" * 33 + "90", "non_canonical")

    bad("empty input", "", "malformed")
    bad("0xc1 is never used", "c1", "malformed")
    bad("str cut short", "a261", "malformed")
    bad("bin declares more bytes than follow", "c4ff00", "malformed")
    bad("array declares 2 items, holds 1", "9201", "malformed")
    bad("str that is not UTF-8", "a1ff", "malformed")
    bad("map key is an int", "810102", "malformed")
    bad("map key is nil", "81c001", "malformed")
    bad("ext type (fixext1)", "d40100", "malformed")
    bad("timestamp ext (type -1)", "d6ff00000000", "malformed")

    bad("two values: nil then nil", "c0c0", "trailing")
    bad("a map followed by a byte", "80c0", "trailing")
    return {
        "description": ("Canonical msgpack. expect: 'canonical' (value in tagged form: bin is {'bin': hex}, "
                        "a map is {'map': [[key, value], ...]}) or the CanonicalError kind: non_canonical, "
                        "malformed, trailing. See docs/protocol.md."),
        "cases": cases,
    }
