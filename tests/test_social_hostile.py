"""Hostile input: validly signed entries whose payloads are wrong or malicious, and hostile
requests to a daemon's local API. Everything must be refused or shown as unreadable
(or encrypted, deleted...), never crash a view, and never stop the daemon answering."""

from __future__ import annotations

import json
import os
import socket
import struct
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from murmurate.crypto import SigningIdentity, encode_id
from murmurate.crypto.private import (CircleKey, chunk_id, make_grants, seal_direct, seal_followers_post)
from murmurate.node.core.views import ref_text
from murmurate.node.errors import UsageError
from murmurate.node.private import Private
from murmurate.node.social import Views
from murmurate.store import PayloadType as P
from murmurate.store import Store, canonical, create_entry
from murmurate.store.entry import Entry

ME, EVE, BOB = (SigningIdentity(bytes([i]) * 32) for i in (0x11, 0x66, 0x22))
T = 1_750_000_000_000
STATES = {"ok", "unreadable", "encrypted", "deleted", "payload_missing"}


class Feed:
    """Entries of one author, signed in order."""

    def __init__(self, who: SigningIdentity) -> None:
        self.who = who
        self.entries: list[Entry] = []

    @property
    def next_seq(self) -> int:
        return len(self.entries) + 1

    def add(self, ptype: int, payload: dict[str, Any]) -> int:
        prev = self.entries[-1].envelope.hash if self.entries else None
        seq = self.next_seq
        self.entries.append(create_entry(self.who, seq=seq, prev=prev, timestamp_ms=T + 1000 * seq,
                                         payload_type=ptype, payload=payload))
        return seq


def fixed_random(n: int) -> bytes:
    return bytes(range(n))


def baseline(tmp_path: Path) -> tuple[Store, Feed, Feed]:
    """A store for ME with ME's posts and a normal post and profile by EVE (seqs 1, 2)."""
    store = Store(tmp_path / "s")
    store.set_self(ME.public_key)
    mine = Feed(ME)
    mine.add(P.PROFILE, {"name": "Me"})
    mine.add(P.POST, {"text": "hello #world"})
    mine.add(P.FOLLOW, {"id": EVE.public_key})
    eve = Feed(EVE)
    eve.add(P.PROFILE, {"name": "Eve"})
    eve.add(P.POST, {"text": "hello from eve", "reply": [ME.public_key, 2], "root": [ME.public_key, 2]})
    return store, mine, eve


def ingest_all(store: Store, *feeds: Feed) -> None:
    entries = [e for f in feeds for e in f.entries]
    report = store.ingest(entries, T + 10_000_000)
    assert not report.rejected, report.rejected  # validly signed: stored, whatever the payload says
    assert len(report.appended) + report.duplicates == len(entries)


def shown(value: Any) -> Any:
    """What a client gets: the view must be JSON (bytes or odd types would break the API)."""
    json.dumps(value)
    return value


def exercise(store: Store) -> None:
    """Every view over everything stored, as ME, then opening private posts and again."""
    for round_ in range(2):
        views = Views(store, ME.public_key)
        for info in store.feeds():
            ident = encode_id(info.author)
            shown(views.profile(ident))
            for stored in store.entries(info.author):
                view = shown(views.item(stored))
                assert view["state"] in STATES, view
                shown(views.items([stored]))
                ref = ref_text(info.author, stored.envelope.seq)
                if stored.envelope.payload_type in (P.POST, P.ENCRYPTED):
                    try:
                        thread = shown(views.thread(ref))
                    except UsageError:
                        pass  # refused politely (deleted or not a post)
                    else:
                        assert all(i["state"] in STATES for i in thread["items"])
                shown(views.history(ref))
        for page_fn in (lambda c: store.home_timeline(limit=7, cursor=c), lambda c: store.federated(limit=7, cursor=c)):
            cursor = None
            for _ in range(20):
                page = page_fn(cursor)
                shown(views.items(page.items))
                cursor = page.next_cursor
                if cursor is None:
                    break
        cursor = None
        for _ in range(20):
            notes = shown(views.notifications(limit=5, cursor=cursor))
            cursor = notes["next_cursor"]
            if cursor is None:
                break
        for query in ("hello", "e", "#", "#world", "mur_", "\x00"):
            shown(views.search(query))
        if round_ == 0:
            everything = [s for info in store.feeds() for s in store.entries(info.author)]
            assert Private(store, fixed_random).absorb(ME, everything) >= 0


def check(tmp_path: Path, build: Callable[[Feed, Feed], None]) -> Store:
    store, mine, eve = baseline(tmp_path)
    build(mine, eve)
    ingest_all(store, mine, eve)
    exercise(store)
    return store


me, eve_key = ME.public_key, EVE.public_key

# -- posts whose fields have the wrong types --------------------------------------------------

HOSTILE_POSTS: dict[str, dict[str, Any]] = {
    "text int": {"text": 5},
    "text bytes": {"text": b"hello"},
    "no text": {"cw": "boo"},
    "empty map": {},
    "tags a map": {"text": "hi", "tags": {"a": 1}},
    "tags of odd items": {"text": "hi", "tags": [1, b"x", None, "", "\x00", "#", " ", "x" * 101, ["t"]]},
    "huge tags list": {"text": "hi", "tags": ["t"] * 3000},
    "mentions 31 bytes": {"text": "hi", "mentions": [b"\x01" * 31]},
    "mentions a string": {"text": "hi", "mentions": encode_id(me)},
    "huge mentions list": {"text": "hi", "mentions": [me] * 200},
    "reply a string": {"text": "hi", "reply": f"{encode_id(me)}/1"},
    "reply one item": {"text": "hi", "reply": [me]},
    "reply seq 0": {"text": "hi", "reply": [me, 0]},
    "reply seq negative": {"text": "hi", "reply": [me, -1]},
    "reply seq bool": {"text": "hi", "reply": [me, True]},
    "reply seq huge": {"text": "hi", "reply": [me, 2**64 - 1]},
    "reply author short": {"text": "hi", "reply": [b"\x01" * 31, 1]},
    "reply three items": {"text": "hi", "reply": [me, 1, 2]},
    "cw lang vis odd": {"text": "hi", "cw": 7, "lang": [1], "vis": 5},
    "media odd": {"text": "hi", "media": [{"blob": 5}, "x", {"blob": b"\x00" * 32, "size": -1, "alt": 3}]},
    "media a map": {"text": "hi", "media": {"blob": b"\x00" * 32}},
    "quote odd": {"text": "hi", "quote": [me, "1"]},
}


@pytest.mark.parametrize("name", sorted(HOSTILE_POSTS))
def test_posts_with_wrong_field_types_are_shown_unreadable_or_sanitized(tmp_path: Path, name: str) -> None:
    box: dict[str, int] = {}
    store = check(tmp_path, lambda mine, eve: box.setdefault("seq", eve.add(P.POST, HOSTILE_POSTS[name])))
    view = Views(store, me).item(store.get(eve_key, box["seq"]))
    if not isinstance(HOSTILE_POSTS[name].get("text"), str):
        assert view["state"] == "unreadable"
    else:
        assert view["state"] == "ok" and view["text"] == "hi"
        assert all(isinstance(t, str) for t in view["tags"]) and len(view["tags"]) <= 30
        assert len(view["mentions"]) <= 50


# Root and media fields that the store refuses to index but the views read directly.
HOSTILE_ROOTS: dict[str, dict[str, Any]] = {
    "root one item": {"text": "hi", "root": [me]},
    "root author a string": {"text": "hi", "root": ["mur_x", 1]},
    "root author short": {"text": "hi", "root": [b"\x01" * 5, 1]},
    "root seq a string": {"text": "hi", "root": [me, "1"]},
    "root seq negative": {"text": "hi", "root": [me, -3]},
    "reply author a string": {"text": "hi", "reply": ["mur_x", 1], "root": [me, 2]},
    "reply author an int": {"text": "hi", "reply": [5, 1]},
    "media fields bytes": {"text": "hi", "media": [{"blob": b"\x00" * 32, "size": b"1", "mime": b"x", "alt": b"y"}]},
}


@pytest.mark.parametrize("name", sorted(HOSTILE_ROOTS))
def test_posts_with_hostile_root_reply_or_media_never_break_views(tmp_path: Path, name: str) -> None:
    check(tmp_path, lambda mine, eve: eve.add(P.POST, HOSTILE_ROOTS[name]))


def test_self_referencing_reply_and_root(tmp_path: Path) -> None:
    def build(mine: Feed, eve: Feed) -> None:
        seq = eve.next_seq
        eve.add(P.POST, {"text": "I reply to myself", "reply": [eve_key, seq], "root": [eve_key, seq]})
        eve.add(P.POST, {"text": "from the future", "reply": [eve_key, 99], "root": [eve_key, 99]})
    store = check(tmp_path, build)
    thread = Views(store, me).thread(ref_text(eve_key, 3))
    assert thread["root"] == ref_text(eve_key, 3)
    missing = Views(store, me).thread(ref_text(eve_key, 4))
    assert missing["root_missing"] is True


# -- boosts, favourites, edits and deletes with hostile targets -----------------------------------

def _targets(owner: bytes) -> list[Any]:
    return [[owner, 2], [owner, 0], [owner, 10**6], [owner, 2**64 - 1], [eve_key, 3], [b"\x02" * 32, 1],
            5, "x", None, [owner], [owner, 1, 1], [[owner], 1], [{"a": 1}, 1], [owner, "2"], [owner, True]]


@pytest.mark.parametrize("ptype", [P.BOOST, P.FAVOURITE], ids=["boost", "favourite"])
def test_boosts_and_favourites_with_hostile_targets(tmp_path: Path, ptype: P) -> None:
    def build(mine: Feed, eve: Feed) -> None:
        for target in _targets(me):
            eve.add(ptype, {"target": target})
        eve.add(ptype, {"target": [eve_key, eve.next_seq]})  # itself
    store = check(tmp_path, build)
    views = Views(store, me)
    # One valid interaction on ME's post 2 counts; the others are unreadable or show no target.
    assert views.item(store.get(me, 2))["boosts" if ptype == P.BOOST else "favourites"] == 1


def test_hostile_targets_are_hidden_safely_when_something_is_blocked(tmp_path: Path) -> None:
    def build(mine: Feed, eve: Feed) -> None:
        mine.add(P.BLOCK, {"id": BOB.public_key})
        for target in _targets(me):
            eve.add(P.BOOST, {"target": target})
    check(tmp_path, build)


def test_edits_and_deletes_with_hostile_targets(tmp_path: Path) -> None:
    def build(mine: Feed, eve: Feed) -> None:
        post = eve.add(P.POST, {"text": "original"})
        boost = eve.add(P.BOOST, {"target": [me, 2]})
        for target in (0, -1, "1", [eve_key, post], None, True, 2**64 - 1, eve.next_seq + 50):
            eve.add(P.EDIT, {"target": target, "text": "edited"})
            eve.add(P.DELETE, {"target": target})
        eve.add(P.EDIT, {"target": eve.next_seq, "text": "edits itself"})
        eve.add(P.DELETE, {"target": eve.next_seq})  # deletes itself
        eve.add(P.EDIT, {"target": post, "text": 5, "cw": b"x"})  # an edit with a wrong text type
        eve.add(P.EDIT, {"target": post, "text": b"bytes"})
        eve.add(P.EDIT, {"target": boost, "text": "editing a boost"})
        eve.add(P.EDIT, {"target": 1, "text": "editing the profile"})
        eve.add(P.DELETE, {"target": eve.next_seq - 1})  # delete an edit
        eve.add(P.EDIT, {"target": post, "text": "the real edit"})
    store = check(tmp_path, build)
    view = Views(store, me).item(store.get(eve_key, 3))
    assert view["text"] == "the real edit"


def test_deleting_another_authors_entry_is_impossible(tmp_path: Path) -> None:
    store = check(tmp_path, lambda mine, eve: eve.add(P.DELETE, {"target": 2}))
    assert store.get(eve_key, 2).dropped  # its own seq 2 (a delete names one's own seq)
    assert not store.get(me, 2).dropped


# -- profiles -----------------------------------------------------------------------------------

HOSTILE_PROFILES: dict[str, dict[str, Any]] = {
    "name int": {"name": 5},
    "name list": {"name": ["Eve"]},
    "name bytes": {"name": b"Eve"},
    "bio int": {"bio": 7},
    "relays list of odd": {"relays": [1, b"x", "/ip4/1.2.3.4/tcp/1", None]},
    "pinned odd": {"pinned": ["x", None, 3, 2**64 - 1]},
    "empty": {},
}
HOSTILE_PROFILE_SHAPES: dict[str, dict[str, Any]] = {
    "relays int": {"relays": 5},
    "relays a string": {"relays": "/ip4/1.2.3.4/tcp/1"},
    "pinned int": {"pinned": 5},
    "pinned bools and negatives": {"pinned": [True, -1, 0]},
}


@pytest.mark.parametrize("name", sorted(HOSTILE_PROFILES))
def test_profiles_with_wrong_field_types(tmp_path: Path, name: str) -> None:
    store = check(tmp_path, lambda mine, eve: eve.add(P.PROFILE, HOSTILE_PROFILES[name]))
    profile = Views(store, me).profile(encode_id(eve_key))
    assert profile["name"] is None or isinstance(profile["name"], str)
    assert all(isinstance(r, str) for r in profile["relays"])


@pytest.mark.parametrize("name", sorted(HOSTILE_PROFILE_SHAPES))
def test_profiles_whose_lists_are_not_lists(tmp_path: Path, name: str) -> None:
    store = check(tmp_path, lambda mine, eve: eve.add(P.PROFILE, HOSTILE_PROFILE_SHAPES[name]))
    profile = Views(store, me).profile(encode_id(eve_key))
    assert all(r.startswith("/") for r in profile["relays"])  # not the characters of a string
    for ref in profile["pinned"]:
        assert int(ref.rsplit("/", 1)[1]) >= 1, ref


# -- encrypted (type 11) payloads ---------------------------------------------------------------

GRANTS_HEAD = struct.Struct(">BBI24sH")
DIRECT_HEAD = struct.Struct(">BB24sH")


def _boxes() -> dict[str, Any]:
    nonce = bytes(24)
    return {
        "box text": "not bytes",
        "box int": 5,
        "box list": [b"\x01\x02"],
        "no box": {"x": 1},
        "garbage": os.urandom(200),
        "empty": b"",
        "one byte": b"\x01",
        "version 2": b"\x02\x01" + bytes(100),
        "unknown kind": b"\x01\x09" + bytes(100),
        "truncated grants": GRANTS_HEAD.pack(1, 1, 1, nonce, 1)[:20],
        "grants claiming 65535 wraps": GRANTS_HEAD.pack(1, 1, 1, nonce, 0xFFFF) + bytes(56 * 3),
        "truncated followers post": b"\x01\x02" + bytes(30),
        "followers post of an unknown epoch": b"\x01\x02" + struct.pack(">I", 7) + nonce + bytes(40),
        "direct body naming missing chunks": DIRECT_HEAD.pack(1, 3, nonce, 3) + os.urandom(96) + b"\x00\x00" + bytes(16),
        "direct body claiming 65535 chunks": DIRECT_HEAD.pack(1, 3, nonce, 0xFFFF) + bytes(64),
        "direct body claiming 65535 wraps": DIRECT_HEAD.pack(1, 3, nonce, 0) + b"\xff\xff" + bytes(100),
        "direct chunk garbage": b"\x01\x04" + nonce + b"\x00\x05" + bytes(10),
        "over the size limit": b"\x01\x01" + bytes(64_100),
    }


@pytest.mark.parametrize("name", sorted(_boxes()))
def test_encrypted_payloads_with_garbage_boxes(tmp_path: Path, name: str) -> None:
    box = _boxes()[name]
    payload = box if isinstance(box, dict) else {"box": box}
    store = check(tmp_path, lambda mine, eve: eve.add(P.ENCRYPTED, payload))
    view = Views(store, me).item(store.get(eve_key, 3))
    assert view["state"] in ("encrypted", "unreadable")


def test_private_posts_that_open_but_hold_hostile_content(tmp_path: Path) -> None:
    """Real grants and boxes for ME whose plaintexts are wrong: never a crash."""
    key = CircleKey(1, bytes(range(32)))

    def build(mine: Feed, eve: Feed) -> None:
        for chunk in make_grants(EVE, key, [me], fixed_random):
            eve.add(P.ENCRYPTED, {"box": chunk})
        for plain in (b"\xc1", canonical.pack([1, 2]), canonical.pack({"text": 5}), b"",
                      canonical.pack({"text": "hi", "root": ["x", 1], "reply": [5]}),
                      canonical.pack({"text": "hi", "tags": {"a": 1}})):
            eve.add(P.ENCRYPTED, {"box": seal_followers_post(eve_key, key, plain, os.urandom(24))})
            sealed = seal_direct(EVE, [me], plain, os.urandom)
            eve.add(P.ENCRYPTED, {"box": sealed.body})
        # A direct body whose one named chunk is present but garbage (its id matches).
        garbage = b"\x01\x04" + bytes(24) + b"\x00\x01" + bytes(3)
        eve.add(P.ENCRYPTED, {"box": garbage})
        body = DIRECT_HEAD.pack(1, 3, bytes(24), 1) + chunk_id(garbage) + b"\x00\x00" + bytes(16)
        eve.add(P.ENCRYPTED, {"box": body})
        # A tampered followers post of an epoch ME holds.
        good = bytearray(seal_followers_post(eve_key, key, canonical.pack({"text": "ok"}), os.urandom(24)))
        good[-1] ^= 1
        eve.add(P.ENCRYPTED, {"box": bytes(good)})
    store = check(tmp_path, build)
    views = Views(store, me)
    states = [views.item(s)["state"] for s in store.entries(eve_key)[2:]]
    assert set(states) <= {"ok", "unreadable", "encrypted"}
    assert "unreadable" in states  # the {"text": 5} plaintexts opened but are not readable posts


# -- the local API ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory):
    from daemons import DaemonProcess
    node = DaemonProcess(tmp_path_factory.mktemp("hostile"), "a").init().start()
    yield node
    node.stop()
    node.close()


def _socket_path(node) -> Path:
    from murmurate.node.home import Home, socket_path
    return socket_path(Home.resolve(str(node.home), {}), node.env)


class Raw:
    """A raw connection to the API socket: bytes in, JSON lines out."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(20)
        self.sock.connect(str(path))
        self.buf = b""

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self) -> dict[str, Any] | None:
        while b"\n" not in self.buf:
            data = self.sock.recv(65536)
            if not data:
                return None
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def ask(self, data: bytes) -> dict[str, Any] | None:
        self.send(data if data.endswith(b"\n") else data + b"\n")
        return self.line()

    def close(self) -> None:
        self.sock.close()


def req(method: Any, params: Any = None, rid: Any = 1) -> bytes:
    value: dict[str, Any] = {"jsonrpc": "2.0", "id": rid, "method": method}
    if params is not None:
        value["params"] = params
    return json.dumps(value).encode()


BAD_LINES: dict[str, tuple[bytes, int]] = {
    "not json": (b"{nope", -32700),
    "non-utf-8": (b'{"jsonrpc":"2.0","id":1,"method":"ping\xff\xfe"}', -32700),
    "lone bytes": (b"\xff\xfe\xfd", -32700),
    "a batch": (b'[{"jsonrpc":"2.0","id":1,"method":"ping"}]', -32600),
    "a number": (b"42", -32600),
    "no jsonrpc": (b'{"id":1,"method":"ping"}', -32600),
    "method an int": (req(5), -32600),
    "id a map": (req("ping", rid={"a": 1}), -32600),
    "id a float": (req("ping", rid=1.5), -32600),
    "params a list": (req("timeline", ["home"]), -32602),
    "unknown method": (req("nope"), -32601),
    "private method name": (req("_answer"), -32601),
    "dunder method": (req("__init__"), -32601),
    "timeline limit a string": (req("timeline", {"limit": "5"}), -32602),
    "timeline limit huge": (req("timeline", {"limit": 10**30}), -32602),
    "timeline limit bool": (req("timeline", {"limit": True}), -32602),
    "timeline which int": (req("timeline", {"which": 5}), None),
    "timeline cursor garbage": (req("timeline", {"cursor": "!!!"}), None),
    "timeline cursor int": (req("timeline", {"cursor": 5}), None),
    "hashtag tag a list": (req("timeline", {"which": "hashtag", "tag": ["x"]}), None),
    "post no text": (req("post", {}), -32602),
    "post text int": (req("post", {"text": 5}), None),
    "post text huge": (req("post", {"text": "x" * 100_000}), None),
    "post reply_to garbage": (req("post", {"text": "hi", "reply_to": "mur_x/0"}), None),
    "post reply_to a map": (req("post", {"text": "hi", "reply_to": {"a": 1}}), None),
    "post visibility odd": (req("post", {"text": "hi", "visibility": ["x"]}), None),
    "post direct to odd": (req("post", {"text": "hi", "visibility": "direct", "to": "mur_x"}), None),
    "post media odd": (req("post", {"text": "hi", "media": [{"blob": 5}]}), None),
    "thread no ref": (req("thread", {}), -32602),
    "thread ref int": (req("thread", {"ref": 5}), None),
    "thread ref seq 0": (req("thread", {"ref": "mur_aaaa/0"}), None),
    "boost ref list": (req("boost", {"ref": [1, 2]}), None),
    "follow id int": (req("follow", {"id": 5}), None),
    "follow id garbage": (req("follow", {"id": "mur_" + "a" * 58}), None),
    "profile id list": (req("profile", {"id": ["x"]}), None),
    "notifications cursor odd": (req("notifications", {"cursor": "zzzz"}), None),
    "notifications limit negative": (req("notifications", {"limit": -5}), None),
    "search query int": (req("search", {"query": 5}), None),
    "search empty": (req("search", {"query": ""}), None),
    "mute kind odd": (req("mute", {"kind": "everything", "value": "x"}), None),
    "list_add name huge": (req("list_add", {"name": "x" * 10_000, "id": "mur_x"}), None),
    "set_profile name a map": (req("set_profile", {"name": {"a": 1}}), None),
    "set_profile relays a string": (req("set_profile", {"relays": "/ip4/1.2.3.4"}), None),
    "set_profile pinned odd": (req("set_profile", {"pinned": [5]}), None),
    "log author int": (req("log", {"author": 5}), None),
    "attach relative path": (req("attach", {"path": "etc/passwd"}), None),
    "blob hash odd": (req("blob", {"hash": "zz", "out": "/nonexistent-murmurate-dir/x"}), None),
    "unsubscribe odd": (req("unsubscribe", {"subscription": "x"}), None),
}


@pytest.mark.network
@pytest.mark.parametrize("name", sorted(BAD_LINES))
def test_hostile_requests_get_errors_and_the_daemon_keeps_answering(daemon, name: str) -> None:
    line, code = BAD_LINES[name]
    conn = Raw(_socket_path(daemon))
    try:
        reply = conn.ask(line)
        assert reply is not None, "the connection was closed without an answer"
        assert "error" in reply and "result" not in reply, reply
        assert isinstance(reply["error"]["code"], int) and isinstance(reply["error"]["message"], str)
        if code is not None:
            assert reply["error"]["code"] == code, reply
        assert conn.ask(req("ping", rid=2)) == {"jsonrpc": "2.0", "id": 2, "result": "pong"}
    finally:
        conn.close()
    assert daemon.call("ping") == "pong"


@pytest.mark.network
def test_bad_params_are_refused_not_internal_errors(daemon) -> None:
    """A wrong param type is the client's mistake: -32602 or -32000, never an internal error
    (which logs a traceback as if the daemon had a bug)."""
    internal = []
    conn = Raw(_socket_path(daemon))
    try:
        for name, (line, code) in sorted(BAD_LINES.items()):
            if code is None:
                reply = conn.ask(line)
                assert reply is not None, name
                if "error" not in reply or reply["error"]["code"] not in (-32602, -32000):
                    internal.append((name, reply.get("error", "accepted")))
    finally:
        conn.close()
    assert internal == [], "\n".join(f"{n}: {e}" for n, e in internal)


@pytest.mark.network
def test_a_line_over_the_limit_is_refused_and_the_connection_closed(daemon) -> None:
    conn = Raw(_socket_path(daemon))
    try:
        conn.send(b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + b"a" * (1 << 20))
        reply = conn.line()
        assert reply is not None and reply["error"]["code"] == -32600
    finally:
        conn.close()
    assert daemon.call("ping") == "pong"


@pytest.mark.network
def test_notifications_without_id_get_no_answer_and_many_requests_stay_in_order(daemon) -> None:
    conn = Raw(_socket_path(daemon))
    try:
        conn.send(req("nope", rid=None) + b"\n" + b"{broken\n" + req("ping", rid=None) + b"\n")
        assert conn.line()["error"]["code"] == -32700  # a parse error has no id to leave out
        conn.send(b"".join(req("ping", rid=i) + b"\n" for i in range(200)))
        assert [conn.line()["id"] for _ in range(200)] == list(range(200))
    finally:
        conn.close()


@pytest.mark.network
def test_deeply_nested_json_is_refused_and_the_daemon_survives(tmp_path: Path) -> None:
    """A line of 200 KB of brackets (well under the 1 MiB limit) must get a parse error, not
    take the daemon down (its own daemon: a crash here must not fail the other tests)."""
    from daemons import DaemonProcess
    node = DaemonProcess(tmp_path, "deep").init().start()
    try:
        conn = Raw(_socket_path(node))
        try:
            reply = conn.ask(b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"a":' + b"[" * 100_000
                             + b"]" * 100_000 + b"}}")
            assert reply is not None and reply["error"]["code"] in (-32700, -32600), reply
        finally:
            conn.close()
        assert node.call("ping") == "pong"
    finally:
        node.close()
