"""Write private.json: vectors for followers-only grants and posts and direct messages
(docs/private-posts.md). Deterministic: fixed seeds, and "randomness" from a BLAKE2b
counter stream; each case lists the random bytes it consumed, in order, so another
implementation can feed the same bytes and must produce the same containers.

Usage: python tests/vectors/gen_private.py [OUT_DIR]     (default: this folder)
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from pathlib import Path
from typing import Any, Callable

from murmurate.crypto import SigningIdentity
from murmurate.crypto.private import (generate_circle_key, make_grants, next_circle_key, seal_direct,
                                      seal_followers_post)
from murmurate.crypto.wraps import shared_secret, wrap_material, x25519_public, x25519_secret

NAMES = {"alice": 1, "bob": 2, "carol": 3, "dave": 4}
PEOPLE = {name: SigningIdentity(bytes([n]) * 32) for name, n in NAMES.items()}
# Recipients of the spilled direct message: seeds 05..0c.
CROWD = [SigningIdentity(bytes([n]) * 32) for n in range(5, 13)]
POST = bytes.fromhex("81a474657874b4666f722074686520636972636c65206f6e6c79")  # {"text": "for the circle only"}
DM = bytes.fromhex("81a474657874ab6a757374206265747765656e")  # {"text": "just between"}


class Stream:
    """Deterministic bytes: BLAKE2b-512("murmurate-vector-random" || label || u32 counter) blocks."""

    def __init__(self, label: str) -> None:
        self.label, self.counter, self.used = label.encode(), 0, []

    def __call__(self, n: int) -> bytes:
        out = b""
        while len(out) < n:
            out += hashlib.blake2b(b"murmurate-vector-random" + self.label + struct.pack(">I", self.counter)).digest()
            self.counter += 1
        self.used.append(out[:n].hex())
        return out[:n]


def _readers(names: list[str], expect: Callable[[str], Any]) -> list[dict[str, Any]]:
    return [{"reader": name, "expect": expect(name)} for name in names]


def build() -> dict[str, Any]:
    alice, bob, carol, dave = (PEOPLE[n] for n in ("alice", "bob", "carol", "dave"))
    a_sk = x25519_secret(alice)
    keys = [{"name": name, "seed": ident.seed.hex(), "ed25519_public": ident.public_key.hex(),
             "x25519_public": x25519_public(ident.public_key).hex(), "x25519_secret": x25519_secret(ident).hex()}
            for name, ident in PEOPLE.items()]

    rnd = Stream("circle-epoch-1")
    k1 = generate_circle_key(rnd(32), 1)
    grants1 = make_grants(alice, k1, [bob.public_key, carol.public_key], rnd)
    head = grants1[0][:32]
    s_ab = shared_secret(a_sk, x25519_public(bob.public_key))
    hint, wrap_key = wrap_material(s_ab, alice.public_key, bob.public_key, head)
    post_rnd = Stream("post-epoch-1")
    post1 = seal_followers_post(alice.public_key, k1, POST, post_rnd(24))

    rnd2 = Stream("circle-epoch-2")
    k2 = next_circle_key(k1, rnd2(32))
    grants2 = make_grants(alice, k2, [bob.public_key], rnd2)
    post_rnd2 = Stream("post-epoch-2")
    post2 = seal_followers_post(alice.public_key, k2, POST, post_rnd2(24))

    everyone = ["alice", "bob", "carol", "dave"]
    circle = [
        {"comment": "epoch 1: alice's circle key, granted to bob and carol (and to alice herself, always "
                    "first in the list; the chunk sorts grants by hint). random: 32 bytes of key, then the "
                    "chunk's 24-byte nonce.",
         "author": "alice", "epoch": 1, "circle_key": k1.key.hex(), "followers": ["bob", "carol"],
         "random": rnd.used, "chunks": [c.hex() for c in grants1],
         "worked": {"comment": "bob's grant: s = X25519(alice x25519 secret, bob x25519 public); material = "
                               "BLAKE2b-512(key=s, 'murmurate-wrap-v1:' || alice || bob || header)",
                    "header": head.hex(), "shared_alice_bob": s_ab.hex(), "hint": hint.hex(),
                    "wrap_key": wrap_key.hex()},
         "open_grant": _readers(everyone, lambda n: None if n == "dave" else k1.key.hex())},
        {"comment": "epoch 2, after alice removed carol: a new random key (not derived from epoch 1), "
                    "granted to bob only. Carol keeps her epoch 1 key but gets nothing for epoch 2.",
         "author": "alice", "epoch": 2, "circle_key": k2.key.hex(), "followers": ["bob"],
         "random": rnd2.used, "chunks": [c.hex() for c in grants2],
         "open_grant": _readers(everyone, lambda n: None if n in ("carol", "dave") else k2.key.hex())},
    ]
    posts = [
        {"comment": "followers-only post of epoch 1; the plaintext is the canonical msgpack map "
                    "{\"text\": \"for the circle only\"}. key = BLAKE2b-256(key=circle key, "
                    "'murmurate-circle-post-v1:' || alice || u32 epoch). random: the 24-byte nonce.",
         "author": "alice", "epoch": 1, "random": post_rnd.used, "plaintext": POST.hex(), "body": post1.hex(),
         "open_with_epoch_keys": {"1": k1.key.hex()}, "expect": POST.hex()},
        {"comment": "followers-only post of epoch 2: carol, who holds only epoch 1, gets null (no key).",
         "author": "alice", "epoch": 2, "random": post_rnd2.used, "plaintext": POST.hex(), "body": post2.hex(),
         "open_with_epoch_keys": {"1": k1.key.hex()}, "expect": None},
        {"comment": "the epoch 2 post read with both epochs' keys (bob's case)",
         "author": "alice", "epoch": 2, "random": post_rnd2.used, "plaintext": POST.hex(), "body": post2.hex(),
         "open_with_epoch_keys": {"1": k1.key.hex(), "2": k2.key.hex()}, "expect": POST.hex()},
    ]

    drnd = Stream("direct-small")
    small = seal_direct(alice, [bob.public_key, carol.public_key], DM, drnd)
    brnd = Stream("direct-spilled")
    big = seal_direct(alice, [p.public_key for p in CROWD], DM, brnd, max_size=400)
    crowd_names = [f"seed {p.seed[:1].hex()}*32" for p in CROWD]
    direct = [
        {"comment": "direct message from alice to bob and carol (alice is added first, so she reads her own "
                    "sent message); no extra chunks. random: 32-byte message key, then the body's nonce.",
         "author": "alice", "recipients": ["bob", "carol"], "max_size": 64000, "random": drnd.used,
         "plaintext": DM.hex(), "body": small.body.hex(), "chunks": [],
         "open_direct": _readers(everyone, lambda n: None if n == "dave" else DM.hex())},
        {"comment": f"direct message to 8 recipients written with max_size 400 (a writer's choice, so the "
                    f"vector stays small): 9 wraps with alice; the body holds {big.body[28 + 32 * len(big.chunks) + 1]} "
                    f"and names {len(big.chunks)} extra chunk(s) by BLAKE2b-256. random: message key, each "
                    f"chunk's nonce in order, the body's nonce. Every recipient and alice read it; dave does not.",
         "author": "alice", "recipients": crowd_names, "max_size": 400, "random": brnd.used,
         "plaintext": DM.hex(), "body": big.body.hex(), "chunks": [c.hex() for c in big.chunks],
         "open_direct": _readers(["alice", "dave"] + crowd_names,
                                 lambda n: None if n == "dave" else DM.hex())},
    ]
    return {
        "description": ("Private posts (docs/private-posts.md). People are Ed25519 seeds: alice 01*32, bob 02*32, "
                        "carol 03*32, dave 04*32 (never a recipient), and 05*32..0c*32. Hex bytes; null is "
                        "'not for this reader'. 'invalid' cases must raise the implementation's private-box "
                        "error ('error') or return null ('none')."),
        "keys": keys, "circle": circle, "followers_posts": posts, "direct": direct,
        "invalid": _invalid(grants1[0], post1, small.body, big),
    }


def _invalid(grant: bytes, post: bytes, body: bytes, big: Any) -> list[dict[str, Any]]:
    cases: list[dict[str, Any]] = []

    def bad(comment: str, op: str, data: bytes, expect: str = "error", chunks: tuple[bytes, ...] = (),
            reader: str = "bob") -> None:
        cases.append({"comment": comment, "op": op, "reader": reader, "author": "alice", "data": data.hex(),
                      "chunks": [c.hex() for c in chunks], "expect": expect})

    def flip(data: bytes, at: int) -> bytes:
        return data[:at] + bytes([data[at] ^ 1]) + data[at + 1:]

    bad("empty input", "open_grant", b"")
    bad("grants chunk cut one byte short", "open_grant", grant[:-1])
    bad("grants chunk with one byte too many", "open_grant", grant + b"\x00")
    bad("grants chunk header only, count says 3", "open_grant", grant[:32])
    bad("grants chunk count field set to 65535 (absurd: length does not match)", "open_grant",
        grant[:30] + b"\xff\xff" + grant[32:])
    bad("version 2", "open_grant", b"\x02" + grant[1:])
    bad("kind 2 (a followers post) where a grants chunk is expected", "open_grant", grant[:1] + b"\x02" + grant[2:])
    bad("grants chunk with a nonce bit flipped: bob's hint no longer matches", "open_grant", flip(grant, 10), "none")
    bad("followers post with one ciphertext bit flipped (MAC fails)", "open_followers_post", flip(post, len(post) - 1))
    bad("followers post with the epoch changed to 2: no key for epoch 2", "open_followers_post",
        post[:2] + b"\x00\x00\x00\x02" + post[6:], "none")
    bad("followers post cut to 45 bytes (header 30 + less than a MAC)", "open_followers_post", post[:45])
    bad("direct body with the content's last bit flipped", "open_direct", flip(body, len(body) - 1))
    bad("direct body naming 65535 chunks", "open_direct", body[:26] + b"\xff\xff" + body[28:])
    last = f"seed {CROWD[-1].seed[:1].hex()}*32"
    bad("spilled direct message read by a recipient whose wrap is in the extra chunk, without that chunk: "
        "null until the chunk is fetched", "open_direct", big.body, "none", (), last)
    bad("the same with the chunk cut one byte short: its BLAKE2b-256 no longer matches the id the body "
        "names, so it is ignored like any unnamed chunk", "open_direct", big.body, "none",
        tuple(c[:-1] for c in big.chunks), last)
    bad("a followers post handed to the direct reader: wrong kind", "open_direct", post)
    return cases


def render(data: Any) -> bytes:
    return (json.dumps(data, indent=1, ensure_ascii=True) + "\n").encode("ascii")


def main(argv: list[str]) -> None:
    out = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    out.mkdir(parents=True, exist_ok=True)
    (out / "private.json").write_bytes(render(build()))


if __name__ == "__main__":
    main(sys.argv)
