"""Runs every case of tests/vectors/*.json against the implementation.

The vectors are committed JSON written by tests/vectors/generate.py; the last tests check
that the generator still writes exactly those bytes, so a vector cannot drift silently.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from murmurate.crypto import (KeyFileError, PassphraseRequiredError, WrongPassphraseError, decode_id,
                              decode_key_file, decode_public_key, encode_id, encode_key_file, is_encrypted)
from murmurate.crypto.errors import InvalidIdError
from murmurate.crypto.keyfile import KdfParams
from murmurate.crypto.signing import SigningIdentity, verify_signature
from murmurate.store import canonical
from murmurate.store.entry import (PayloadType, blake2b256, check_payload, check_signature, check_timestamp,
                                   decode_frame)
from murmurate.store.errors import InvalidEntryError, Reason
from murmurate.store.feed import FeedHead, Placement, place

VECTORS = Path(__file__).resolve().parent / "vectors"
FILES = ("entries.json", "ids.json", "keyfile.json", "canonical.json", "ed25519.json")


def _load(name: str) -> dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="ascii"))


def _cases(name: str) -> list[Any]:
    return [pytest.param(case, id=case["comment"]) for case in _load(name)["cases"]]


def _untag(value: Any) -> Any:
    """The value a tagged JSON form stands for (see tests/vectors/tagged.py)."""
    if isinstance(value, list):
        return [_untag(v) for v in value]
    if isinstance(value, dict):
        if set(value) == {"bin"}:
            return bytes.fromhex(value["bin"])
        assert set(value) == {"map"}, value
        return {k: _untag(v) for k, v in value["map"]}
    return value


def _same(a: Any, b: Any) -> bool:
    """Equal with the same types all the way down (so True is not 1) and maps in the same key order."""
    if type(a) is not type(b):
        return False
    if isinstance(a, list):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same(a[k], b[k]) for k in a)
    return a == b


# -- entries --------------------------------------------------------------------------------

def _verdict(case: dict[str, Any]) -> tuple[str, Any]:
    """Apply the checks in the documented order; the first refusal's reason, else the placement."""
    try:
        entry = decode_frame(bytes.fromhex(case["frame"]))
        check_signature(entry.envelope)
        check_timestamp(entry.envelope, case["now_ms"])
        if entry.payload is not None:
            check_payload(entry.envelope, entry.payload)
        h = case["head"]
        head = FeedHead(h["seq"], bytes.fromhex(h["hash"]), h["timestamp_ms"]) if h else None
        stored = bytes.fromhex(case["stored_hash"]) if case["stored_hash"] else None
        return place(head, entry.envelope, stored).value, entry
    except InvalidEntryError as e:
        return e.reason.value, None


@pytest.mark.parametrize("case", _cases("entries.json"))
def test_entry_vector(case: dict[str, Any]) -> None:
    verdict, entry = _verdict(case)
    assert verdict == case["expect"]
    if "entry_hash" not in case:
        return
    env = entry.envelope
    want = case["envelope"]
    assert env.hash.hex() == case["entry_hash"]
    assert env.payload_hash.hex() == case["payload_hash"] == want["payload_hash"]
    got = {"version": 1, "author": env.author.hex(), "seq": env.seq,
           "prev": env.prev.hex() if env.prev is not None else None, "timestamp_ms": env.timestamp_ms,
           "payload_type": env.payload_type, "payload_size": env.payload_size,
           "payload_hash": env.payload_hash.hex(), "signature": env.signature.hex()}
    assert got == want
    if case["payload"] is None:
        assert entry.payload is None
    else:
        assert blake2b256(entry.payload).hex() == case["payload_hash"]
        assert _same(canonical.unpack(entry.payload), _untag(case["payload"]))


# -- ids ------------------------------------------------------------------------------------

ID_MESSAGES = {"prefix": "ids start with", "length": "characters after", "alphabet": "uses only",
               "checksum": "checksum does not match"}


@pytest.mark.parametrize("case", _cases("ids.json"))
def test_id_vector(case: dict[str, Any]) -> None:
    if case["expect"] == "ok":
        key = bytes.fromhex(case["public_key"])
        assert decode_id(case["text"]) == key
        assert encode_id(key) == case["text"].strip().lower()
    else:
        with pytest.raises(InvalidIdError, match=ID_MESSAGES[case["expect"]]):
            decode_id(case["text"])


# -- key files ------------------------------------------------------------------------------

KEYFILE_ERRORS = {"KeyFileError": KeyFileError, "WrongPassphraseError": WrongPassphraseError,
                  "PassphraseRequiredError": PassphraseRequiredError}
KEYFILE_DETAILS = {"damaged": "damaged", "format": "not a Murmurate key file|unknown key file kind",
                   "limits": "out of range", "inconsistent": "inconsistent"}


@pytest.mark.parametrize("case", _cases("keyfile.json"))
def test_keyfile_vector(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["file"])
    passphrase = case["passphrase"].encode("utf-8") if case["passphrase"] is not None else None
    if case["expect"] == "ok":
        identity = decode_key_file(data, passphrase)
        assert identity.seed.hex() == case["seed"]
        assert identity.public_key.hex() == case["public_key"]
        assert decode_public_key(data).hex() == case["public_key"]
        return
    error = KEYFILE_ERRORS[case["expect"]]
    with pytest.raises(error) as caught:
        decode_key_file(data, passphrase)
    assert type(caught.value) is error
    if case["detail"] is not None:
        assert caught.match(KEYFILE_DETAILS[case["detail"]])


def test_keyfile_encoding_reproduces_the_vector() -> None:
    """The minimum Argon2id limits are accepted, and encoding is a pure function of its inputs."""
    v = _load("keyfile.json")["encrypted"]
    identity = SigningIdentity(bytes.fromhex(v["seed"]))
    data = encode_key_file(identity, v["passphrase"].encode("utf-8"), salt=bytes.fromhex(v["salt"]),
                           nonce=bytes.fromhex(v["nonce"]), kdf=KdfParams(v["opslimit"], v["memlimit"]))
    assert data.hex() == v["file"]
    assert is_encrypted(data)
    assert decode_key_file(data, v["passphrase"].encode("utf-8")).public_key.hex() == v["public_key"]


# -- canonical msgpack ----------------------------------------------------------------------

@pytest.mark.parametrize("case", _cases("canonical.json"))
def test_canonical_vector(case: dict[str, Any]) -> None:
    data = bytes.fromhex(case["msgpack"])
    if case["expect"] == "canonical":
        value = _untag(case["value"])
        assert _same(canonical.unpack(data), value)
        assert canonical.pack(value) == data
    else:
        with pytest.raises(canonical.CanonicalError) as caught:
            canonical.unpack(data)
        assert caught.value.kind == case["expect"]


@pytest.mark.parametrize("case", _cases("ed25519.json"))
def test_ed25519_vector(case: dict[str, Any]) -> None:
    key, message, signature = (bytes.fromhex(case[k]) for k in ("public_key", "message", "signature"))
    assert verify_signature(key, message, signature) is (case["expect"] == "valid")


def test_ed25519_each_rule_is_needed() -> None:
    """Each refusing rule has a case that a verifier without it would accept: the triple
    satisfies the cofactorless equation (or, for the equation itself, the cofactored one)."""
    cases = _load("ed25519.json")["cases"]
    needed = {"s_not_below_l", "r_small_order", "a_small_order", "a_non_canonical"}
    for rule in needed:
        assert any(c["refused_by"] == rule and c["cofactorless_holds"] for c in cases), rule
    assert any(c["refused_by"] == "equation" and c["cofactored_holds"] and not c["cofactorless_holds"]
               for c in cases)
    assert {c["refused_by"] for c in cases} == needed | {"a_not_a_point", "equation", None}


# -- coverage and drift ---------------------------------------------------------------------

MIN_CASES = {"entries.json": 25, "ids.json": 15, "keyfile.json": 12, "canonical.json": 60, "ed25519.json": 12}
# Refusals that only the store or the node's storage caps can give (they need its state):
# the rest must all appear.
STORE_ONLY = {Reason.SEQ_GAP.value, Reason.FEED_FROZEN.value, Reason.FEED_CAP.value, Reason.NODE_CAP.value}
REQUIRED = {
    "entries.json": {p.value for p in Placement} | {r.value for r in Reason} - STORE_ONLY,
    "ids.json": {"ok"} | set(ID_MESSAGES),
    "keyfile.json": {"ok"} | set(KEYFILE_ERRORS),
    "canonical.json": {"canonical", "non_canonical", "malformed", "trailing"},
    "ed25519.json": {"valid", "refused"},
}


@pytest.mark.parametrize("name", FILES)
def test_every_outcome_appears_and_no_other(name: str) -> None:
    cases = _load(name)["cases"]
    assert len(cases) >= MIN_CASES[name]
    assert all(case["comment"] for case in cases)
    assert {case["expect"] for case in cases} == REQUIRED[name]


def test_entries_cover_every_payload_type_and_a_dropped_payload() -> None:
    valid = [c for c in _load("entries.json")["cases"] if "entry_hash" in c]
    appended = {c["envelope"]["payload_type"] for c in valid if c["expect"] == "append"}
    assert {int(t) for t in PayloadType} | {4000} <= appended
    assert any(c["payload"] is None and c["expect"] == "append" for c in valid)


def test_keyfile_details_all_appear() -> None:
    details = {c["detail"] for c in _load("keyfile.json")["cases"]} - {None}
    assert details == set(KEYFILE_DETAILS)


def test_generator_reproduces_the_committed_vectors(tmp_path: Path) -> None:
    subprocess.run([sys.executable, "-B", str(VECTORS / "generate.py"), str(tmp_path)], check=True, timeout=120)
    assert sorted(p.name for p in tmp_path.glob("*.json")) == sorted(FILES)
    # private.json has its own generator (gen_private.py) and its own reproduction test.
    assert sorted(p.name for p in VECTORS.glob("*.json")) == sorted([*FILES, "private.json"])
    for name in FILES:
        assert (tmp_path / name).read_bytes() == (VECTORS / name).read_bytes(), f"{name} drifted from generate.py"
