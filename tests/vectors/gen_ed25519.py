"""Ed25519 edge-case vectors: which signatures our verifier accepts (docs/protocol.md 4.1.1).

Each case is a (public key, message, signature) triple built by hand with plain Ed25519
arithmetic (ed25519_math.py), with the verdict of our verifier and the rule that refuses
it, plus which verification equations the triple satisfies. A must-fail case that
satisfies the cofactorless equation is one a verifier without that rule would accept, so
every rule below is needed to match our nodes byte for byte. Deterministic: no randomness,
every nonce comes from a counter.
"""

from __future__ import annotations

import hashlib
from typing import Any

import ed25519_math as ed

MESSAGE = b"murmurate-entry-v1:edge case"


def secret_scalar(seed: bytes) -> int:
    """RFC 8032 5.1.5: the clamped low half of SHA-512(seed)."""
    h = bytearray(hashlib.sha512(seed).digest()[:32])
    h[0] &= 248
    h[31] &= 127
    h[31] |= 64
    return int.from_bytes(h, "little")


def nonce(label: str, i: int) -> int:
    return int.from_bytes(hashlib.sha512(f"{label}:{i}".encode()).digest(), "little") % ed.L


def scalar_bytes(s: int) -> bytes:
    return s.to_bytes(32, "little")


def sign_with_scalar(a: int, key: bytes, r: int, message: bytes = MESSAGE) -> bytes:
    """A signature with secret scalar `a` under the encoded key `key` (which may carry a
    torsion part a alone does not explain) and nonce r: R = [r]B, S = r + k a."""
    r_enc = ed.encode(ed.mul(r, ed.B))
    k = ed.challenge(r_enc, key, message)
    return r_enc + scalar_bytes((r + k * a) % ed.L)


def build() -> dict[str, Any]:
    cases: list[dict[str, Any]] = []

    def case(comment: str, key: bytes, signature: bytes, expect: str, rule: str | None) -> None:
        assert ed.sodium_refusal(key, MESSAGE, signature) == rule, comment
        assert (rule is None) == (expect == "valid"), comment
        cases.append({
            "comment": comment,
            "public_key": key.hex(),
            "message": MESSAGE.hex(),
            "signature": signature.hex(),
            "expect": expect,
            "refused_by": rule,
            "cofactorless_holds": ed.cofactorless_holds(key, MESSAGE, signature),
            "cofactored_holds": ed.cofactored_holds(key, MESSAGE, signature),
        })

    identity = ed.encode(ed.IDENTITY)
    torsion = ed.torsion_generator()                     # order 8
    alice_seed = bytes([1]) * 32
    alice_a = secret_scalar(alice_seed)
    alice = ed.encode(ed.mul(alice_a, ed.B))
    alice_sig = sign_with_scalar(alice_a, alice, nonce("alice", 0))
    assert ed.cofactorless_holds(alice, MESSAGE, alice_sig)
    case("valid: an ordinary signature", alice, alice_sig, "valid", None)

    # A key with a torsion part: A = [a]B + T. libsodium takes such a key (it is neither small
    # order nor non-canonical); a signature whose R carries -[k]T passes the cofactorless
    # equation and is valid. R = [r]B + [j]T, with j = -k mod 8 found by trying nonces.
    mallory_a = secret_scalar(bytes([4]) * 32)
    mixed = ed.encode(ed.add(ed.mul(mallory_a, ed.B), torsion))
    for i in range(1000):
        r = nonce("mixed", i)
        found = None
        for j in range(1, 8):
            r_enc = ed.encode(ed.add(ed.mul(r, ed.B), ed.mul(j, torsion)))
            if (ed.challenge(r_enc, mixed, MESSAGE) + j) % 8 == 0:
                found = r_enc
                break
        if found is not None:
            k = ed.challenge(found, mixed, MESSAGE)
            sig = found + scalar_bytes((r + k * mallory_a) % ed.L)
            break
    assert ed.cofactorless_holds(mixed, MESSAGE, sig)
    case("valid: a key with a torsion part (not small order) and R with one too, cofactorless equation holds",
         mixed, sig, "valid", None)

    # S >= L: the malleated twin of a valid signature, S + L.
    s = int.from_bytes(alice_sig[32:], "little")
    case("S + L in place of S (S not below the group order L)", alice,
         alice_sig[:32] + scalar_bytes(s + ed.L), "refused", "s_not_below_l")

    # Small-order R: with A = [a]B, R = identity and S = k a satisfy [S]B = R + [k]A.
    k = ed.challenge(identity, alice, MESSAGE)
    case("R is the identity (small order), S = k a: the cofactorless equation holds", alice,
         identity + scalar_bytes(k * alice_a % ed.L), "refused", "r_small_order")
    t_enc = ed.encode(torsion)
    k = ed.challenge(t_enc, alice, MESSAGE)
    case("R is a point of order 8, S = k a: only the cofactored equation holds", alice,
         t_enc + scalar_bytes(k * alice_a % ed.L), "refused", "r_small_order")

    # Non-canonical R: p + 1 encodes the identity with y >= p. A verifier that decodes R and
    # compares points (instead of comparing R's bytes with the canonical encoding) accepts it.
    r_noncanonical = (ed.P + 1).to_bytes(32, "little")
    k = ed.challenge(r_noncanonical, alice, MESSAGE)
    case("R is the identity encoded as y = p + 1 (non-canonical, small order)", alice,
         r_noncanonical + scalar_bytes(k * alice_a % ed.L), "refused", "r_small_order")
    r_negzero = identity[:31] + b"\x80"
    k = ed.challenge(r_negzero, alice, MESSAGE)
    case("R is the identity with the sign bit set (x = 0 'negative': non-canonical, small order)", alice,
         r_negzero + scalar_bytes(k * alice_a % ed.L), "refused", "r_small_order")

    # Small-order A: the identity key with (identity, 0) verifies every message.
    case("A is the identity, signature (identity, 0): verifies any message cofactorless", identity,
         identity + scalar_bytes(0), "refused", "r_small_order")
    # The same key with an R that is not small order, so only the rule on A refuses it:
    # A = T (order 8), R = [r]B + [j]T with j = -k mod 8, S = r.
    for i in range(1000):
        r = nonce("small-a", i)
        found = None
        for j in range(1, 8):
            r_enc = ed.encode(ed.add(ed.mul(r, ed.B), ed.mul(j, torsion)))
            if (ed.challenge(r_enc, t_enc, MESSAGE) + j) % 8 == 0:
                found = r_enc
                break
        if found is not None:
            sig = found + scalar_bytes(r)
            break
    assert ed.cofactorless_holds(t_enc, MESSAGE, sig)
    case("A is a point of order 8, R is not small order, S = r: the cofactorless equation holds",
         t_enc, sig, "refused", "a_small_order")
    r = nonce("negative-zero-a", 0)
    case("A is the identity with the sign bit set (y canonical, small order), R = [r]B, S = r: "
         "verifies any message cofactorless", identity[:31] + b"\x80",
         ed.encode(ed.mul(r, ed.B)) + scalar_bytes(r), "refused", "a_small_order")

    # Non-canonical A: y = p + 1 stands for the identity.
    a_noncanonical = (ed.P + 1).to_bytes(32, "little")
    sig_r = ed.encode(ed.mul(nonce("noncanonical-a", 0), ed.B))
    case("A is the identity encoded as y = p + 1 (non-canonical), R not small order, S = r",
         a_noncanonical, sig_r + scalar_bytes(nonce("noncanonical-a", 0)), "refused", "a_non_canonical")
    # y = p + 2 .. 2^255 - 1 that decode to a point at all
    for y in range(2, 19):
        if ed.x_from_y(y, 0) is not None:
            key = (ed.P + y).to_bytes(32, "little")
            case(f"A is y = p + {y} (non-canonical, a point), any signature", key, alice_sig,
                 "refused", "a_non_canonical")
            break

    # A not on the curve.
    y = next(y for y in range(2, 100) if ed.x_from_y(y, 0) is None)
    case(f"A is y = {y}, which is not on the curve", y.to_bytes(32, "little"), alice_sig, "refused",
         "a_not_a_point")

    # Valid only under the cofactored equation: A = [a]B + T, R = [r]B with k not a multiple
    # of 8, S = r + k a. Then [S]B - [k]A = R - [k]T: off by a small-order point. libsodium
    # 1.0.18-1.0.22 compare R's bytes, so refuse it; a cofactored verifier accepts it.
    for i in range(1000):
        r = nonce("cofactored", i)
        r_enc = ed.encode(ed.mul(r, ed.B))
        k = ed.challenge(r_enc, mixed, MESSAGE)
        if k % 8:
            sig = r_enc + scalar_bytes((r + k * mallory_a) % ed.L)
            break
    assert ed.cofactored_holds(mixed, MESSAGE, sig) and not ed.cofactorless_holds(mixed, MESSAGE, sig)
    case("valid only under the cofactored equation ([8]R = [8]([S]B - [k]A), R differs by a torsion point)",
         mixed, sig, "refused", "equation")

    case("a valid signature of another message", alice,
         sign_with_scalar(alice_a, alice, nonce("alice", 0), b"another message"), "refused", "equation")

    return {
        "description": "Ed25519 edge cases (docs/protocol.md 4.1.1): public_key, message and signature "
                       "hex; expect valid or refused; refused_by names the first rule that refuses it; "
                       "cofactorless_holds / cofactored_holds say which equation the triple satisfies, "
                       "with A and R decoded (y taken mod p) and S as is",
        "cases": cases,
    }
