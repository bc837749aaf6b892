"""Plain Ed25519 arithmetic (RFC 8032 section 5.1), slow and readable, for building the
signature edge-case vectors by hand and for checking what each one is.

Our verifier is libsodium's (crypto/signing.py); this module is never used by the node.
It lets the vectors say of each case which equation it satisfies, so a test can check
that a must-fail vector really would pass a laxer verifier.
"""

from __future__ import annotations

import hashlib

P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)

Point = tuple[int, int, int, int]        # extended coordinates (X, Y, Z, T), x = X/Z, y = Y/Z, xy = T/Z
IDENTITY: Point = (0, 1, 1, 0)


def add(a: Point, b: Point) -> Point:
    x1, y1, z1, t1 = a
    x2, y2, z2, t2 = b
    aa = (y1 - x1) * (y2 - x2) % P
    bb = (y1 + x1) * (y2 + x2) % P
    cc = 2 * t1 * t2 * D % P
    dd = 2 * z1 * z2 % P
    e, f, g, h = bb - aa, dd - cc, dd + cc, bb + aa
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def neg(a: Point) -> Point:
    x, y, z, t = a
    return (-x % P, y, z, -t % P)


def mul(k: int, a: Point) -> Point:
    out = IDENTITY
    while k > 0:
        if k & 1:
            out = add(out, a)
        a = add(a, a)
        k >>= 1
    return out


def equal(a: Point, b: Point) -> bool:
    return (a[0] * b[2] - b[0] * a[2]) % P == 0 and (a[1] * b[2] - b[1] * a[2]) % P == 0


def x_from_y(y: int, sign: int) -> int | None:
    """The x with this sign (low bit) on the curve at y, or None if there is none."""
    u, v = (y * y - 1) % P, (D * y * y + 1) % P
    x = u * pow(v, 3, P) * pow(u * pow(v, 7, P), (P - 5) // 8, P) % P
    if (v * x * x - u) % P != 0:
        if (v * x * x + u) % P != 0:
            return None
        x = x * SQRT_M1 % P
    if x & 1 != sign:
        x = -x % P
    return x


def decode(s: bytes) -> Point | None:
    """Decode like libsodium's ge25519_frombytes: y is taken mod p (a non-canonical y is
    not refused here), the top bit picks the sign of x."""
    n = int.from_bytes(s, "little")
    y = (n & (2**255 - 1)) % P
    x = x_from_y(y, n >> 255)
    return None if x is None else (x, y, 1, x * y % P)


def encode(a: Point) -> bytes:
    x, y, z, _ = a
    zi = pow(z, P - 2, P)
    x, y = x * zi % P, y * zi % P
    return (y | ((x & 1) << 255)).to_bytes(32, "little")


B: Point = decode((4 * pow(5, P - 2, P) % P).to_bytes(32, "little"))  # type: ignore[assignment]


def order_divides_8(a: Point) -> bool:
    return equal(mul(8, a), IDENTITY)


def challenge(r: bytes, a: bytes, message: bytes) -> int:
    return int.from_bytes(hashlib.sha512(r + a + message).digest(), "little") % L


def cofactorless_holds(key: bytes, message: bytes, signature: bytes) -> bool:
    """[S]B = R + [k]A, with R and A decoded (any encoding) and S taken as is (not reduced)."""
    a, r = decode(key), decode(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    k = challenge(signature[:32], key, message)
    return equal(mul(s, B), add(r, mul(k, a)))


def cofactored_holds(key: bytes, message: bytes, signature: bytes) -> bool:
    """[8][S]B = [8]R + [8][k]A (RFC 8032's "sufficient but not required" check)."""
    a, r = decode(key), decode(signature[:32])
    if a is None or r is None:
        return False
    s = int.from_bytes(signature[32:], "little")
    k = challenge(signature[:32], key, message)
    return equal(mul(8, mul(s, B)), mul(8, add(r, mul(k, a))))


def torsion_generator() -> Point:
    """A point of order exactly 8: [L] of a curve point whose torsion part has order 8.
    Deterministic: the first y = 2, 3, ... that gives one."""
    for y in range(2, 1000):
        x = x_from_y(y, 0)
        if x is None:
            continue
        t = mul(L, (x, y, 1, x * y % P))
        if not equal(mul(4, t), IDENTITY):
            return t
    raise AssertionError("no order-8 point found")


def small_order_points() -> list[Point]:
    """The 8 points of order dividing 8: the multiples of an order-8 point."""
    t = torsion_generator()
    return [mul(i, t) for i in range(8)]


SMALL_ORDER_ENCODINGS = frozenset(
    [encode(p) for p in small_order_points()]
    + [(P + 0).to_bytes(32, "little"), (P + 1).to_bytes(32, "little")])


def in_small_order_list(s: bytes) -> bool:
    """libsodium's ge25519_has_small_order (1.0.18-1.0.22): the encoding, with the top
    (sign) bit ignored, is one of the 7 y values of the small-order points (canonical, or
    p and p + 1 for 0 and 1)."""
    masked = s[:31] + bytes([s[31] & 0x7F])
    return any(masked == e[:31] + bytes([e[31] & 0x7F]) for e in SMALL_ORDER_ENCODINGS)


def sodium_refusal(key: bytes, message: bytes, signature: bytes) -> str | None:
    """The first rule of libsodium's crypto_sign_verify_detached (1.0.18-1.0.22, not built
    with ED25519_COMPAT) that refuses the triple, or None if it verifies. A model of its
    open.c for the vectors; docs/protocol.md 4.1.1 states the same rules."""
    if int.from_bytes(signature[32:], "little") >= L:
        return "s_not_below_l"
    if in_small_order_list(signature[:32]):
        return "r_small_order"
    if int.from_bytes(key, "little") & (2**255 - 1) >= P:
        return "a_non_canonical"
    if in_small_order_list(key):
        return "a_small_order"
    a = decode(key)
    if a is None:
        return "a_not_a_point"
    s = int.from_bytes(signature[32:], "little")
    k = challenge(signature[:32], key, message)
    if encode(add(mul(s, B), neg(mul(k, a)))) != signature[:32]:
        return "equation"
    return None
