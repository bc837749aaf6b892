"""Private posts among the social verbs and views, on real stores: nothing public ever names
a private post, muted words apply to opened private posts, and a delete removes what the
reader's node opened (docs/private-posts.md, section 13)."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from murmurate.crypto import SigningIdentity, encode_id
from murmurate.node import Home, LocalNode
from murmurate.node.errors import UsageError
from murmurate.node.private import CONVERSATION, PLAIN
from murmurate.store import PayloadType

T = 1_760_000_000_000


class Person:
    """A LocalNode with its unlocked identity; `receive` copies another's feed in and opens it."""

    def __init__(self, tmp_path: Path, name: str, seed: int) -> None:
        home = Home(tmp_path / name, tmp_path / name / "config.toml")
        self.clock = T
        self.node = LocalNode(home, now_ms=lambda: self.clock, random_bytes=random.Random(seed).randbytes)
        self.node.init(None)
        self.me: SigningIdentity = self.node.unlock(None)
        self.id = encode_id(self.me.public_key)

    def act(self, verb: str, **params: Any) -> dict[str, Any]:
        self.clock += 1000
        item = self.node.act(self.me, verb, params)
        assert item is not None
        return item

    def receive(self, other: "Person", *, absorb: bool = True) -> None:
        """What the replicator and the daemon's opener do: store the other's new entries, then
        open (and forget) what they allow."""
        head = self.node.store.head(other.me.public_key)
        start = head.seq + 1 if head else 1
        new = other.node.store.entries(other.me.public_key, from_seq=start)
        report = self.node.store.ingest([s.entry for s in new], other.clock + 1)
        assert not report.rejected
        if absorb:
            refs = list(report.appended)
            self.node.private.absorb(self.me, self.node.store.of_type(PayloadType.ENCRYPTED, refs)
                                     + self.node.store.of_type(PayloadType.DELETE, refs))

    def read(self, verb: str, **params: Any) -> Any:
        return self.node.read(verb, params)

    def texts(self, verb: str, **params: Any) -> list[str]:
        got = self.read(verb, **params)
        items = got["items"] if isinstance(got, dict) else got
        if verb == "notifications":
            items = [n["entry"] for n in items]
        return [i["text"] for i in items if "text" in i]

    def close(self) -> None:
        self.node.close()


@pytest.fixture
def people(tmp_path: Path):
    """ann writes; bob is in ann's circle and follows her; ann and bob follow each other."""
    ann, bob = Person(tmp_path, "ann", 1), Person(tmp_path, "bob", 2)
    ann.act("follow", id=bob.id)
    bob.act("follow", id=ann.id)
    ann.act("accept_follower", id=bob.id)
    yield ann, bob
    ann.close()
    bob.close()


def private_posts(ann: Person, bob: Person) -> tuple[dict[str, Any], dict[str, Any]]:
    followers = ann.act("post", text="circle news", visibility="followers")
    direct = ann.act("post", text="just for bob", visibility="direct", to=[bob.id])
    bob.receive(ann)
    assert bob.node.private.plaintext(ann.me.public_key, followers["seq"]) is not None
    assert bob.node.private.plaintext(ann.me.public_key, direct["seq"]) is not None
    return followers, direct


def public_entries_naming(person: Person, author: bytes, seq: int) -> list[int]:
    """Seqs of the person's entries whose cleartext payload names (author, seq) anywhere."""
    out = []
    for stored in person.node.store.entries(person.me.public_key):
        if stored.envelope.payload_type == PayloadType.ENCRYPTED or stored.payload is None:
            continue
        if _names(stored.payload, author, seq):
            out.append(stored.envelope.seq)
    return out


def _names(value: Any, author: bytes, seq: int) -> bool:
    if isinstance(value, dict):
        return any(_names(v, author, seq) for v in value.values())
    if isinstance(value, list):
        return value == [author, seq] or any(_names(v, author, seq) for v in value)
    return False


# -- 1. nothing public names a private post -----------------------------------------------------

def test_boost_and_favourite_of_private_posts_are_refused(people) -> None:
    ann, bob = people
    followers, direct = private_posts(ann, bob)
    head = bob.node.store.head(bob.me.public_key).seq
    for post in (followers, direct):
        with pytest.raises(UsageError, match="only public and unlisted posts can be boosted"):
            bob.act("boost", ref=post["ref"])
        with pytest.raises(UsageError, match="a favourite is public"):
            bob.act("favourite", ref=post["ref"])
        # The author cannot boost or favourite their own private post either.
        with pytest.raises(UsageError, match="only public and unlisted posts can be boosted"):
            ann.act("boost", ref=post["ref"])
        with pytest.raises(UsageError, match="a favourite is public"):
            ann.act("favourite", ref=post["ref"])
    assert bob.node.store.head(bob.me.public_key).seq == head  # nothing was written
    # A public post still can be boosted and favourited.
    public = ann.act("post", text="hello all")
    bob.receive(ann)
    bob.act("boost", ref=public["ref"])
    bob.act("favourite", ref=public["ref"])


def test_quotes_public_replies_and_pins_of_private_posts_are_refused(people) -> None:
    ann, bob = people
    followers, direct = private_posts(ann, bob)
    for post in (followers, direct):
        with pytest.raises(UsageError, match="only public and unlisted posts can be quoted"):
            bob.act("post", text="look", quote=post["ref"])
        with pytest.raises(UsageError, match="only public and unlisted posts can be quoted"):
            bob.act("post", text="look", quote=post["ref"], visibility="followers")
        for visibility in ("public", "unlisted"):
            with pytest.raises(UsageError, match="a reply to a private post must be private"):
                bob.act("post", text="agreed", reply_to=post["ref"], visibility=visibility)
        with pytest.raises(UsageError, match="only public posts can be pinned"):
            ann.act("set_profile", pinned=[post["ref"]])
    # Private replies are fine: their reply and root fields are inside the ciphertext.
    bob.act("post", text="agreed", reply_to=followers["ref"], visibility="followers")
    bob.act("post", text="thanks", reply_to=direct["ref"], visibility="direct", to=[ann.id])
    for post in (followers, direct):
        assert public_entries_naming(bob, ann.me.public_key, post["seq"]) == []
        assert public_entries_naming(ann, ann.me.public_key, post["seq"]) == []


def test_a_private_post_this_node_cannot_open_cannot_be_replied_to(tmp_path: Path, people) -> None:
    ann, bob = people
    carol = Person(tmp_path, "carol", 3)
    try:
        carol.act("follow", id=ann.id)
        followers = ann.act("post", text="circle news", visibility="followers")
        carol.receive(ann)
        with pytest.raises(UsageError, match="cannot open"):
            carol.act("post", text="what?", reply_to=followers["ref"], visibility="followers")
    finally:
        carol.close()
