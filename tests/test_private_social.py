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
        items = got["posts"] if verb == "search" else got["items"] if isinstance(got, dict) else got
        if verb == "notifications":
            items = [n["entry"] for n in items]
        return [i["text"] for i in items if "text" in i]

    def close(self) -> None:
        self.node.close()


@pytest.fixture
def people(tmp_path: Path):
    """ann and bob follow each other; bob is in ann's circle."""
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
    # A public reply written by another client names the private post as its root: answering
    # it in public would name the private post again.
    stray = bob.node.store.append_own(bob.me, PayloadType.POST, {
        "text": "public answer", "reply": [ann.me.public_key, followers["seq"]],
        "root": [ann.me.public_key, followers["seq"]]}, bob.clock).envelope.seq
    ann.receive(bob)
    with pytest.raises(UsageError, match="a reply to a private post must be private"):
        ann.act("post", text="shh", reply_to=f"{bob.id}/{stray}")
    ann.act("post", text="shh", reply_to=f"{bob.id}/{stray}", visibility="followers")
    bob.node.store.append_own(bob.me, PayloadType.DELETE, {"target": stray}, bob.clock)
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


# -- 2. muted words apply to opened private posts -------------------------------------------

def test_a_muted_word_hides_opened_private_posts_in_every_view(people) -> None:
    ann, bob = people
    root = ann.act("post", text="what are we planning?")
    bob.receive(ann)
    bob_reply = bob.act("post", text="a picnic", reply_to=root["ref"])
    ann.receive(bob)
    # Each private post mentions bob and answers his reply, so it is in every view at once.
    followers = ann.act("post", text=f"the SURPRISE party @{bob.id}", visibility="followers",
                        reply_to=bob_reply["ref"])
    direct = ann.act("post", text="keep the surprise quiet", visibility="direct", to=[bob.id],
                     reply_to=bob_reply["ref"])
    bob.receive(ann)
    shown = {"circle": f"the SURPRISE party @{bob.id}", "dm": "keep the surprise quiet"}

    def views() -> dict[str, list[str]]:
        return {"home": bob.texts("timeline"), "thread": bob.texts("thread", ref=root["ref"]),
                "notifications": bob.texts("notifications"), "conversations": bob.texts("conversations"),
                "search": bob.texts("search", query="surprise")}
    before = views()
    for name in ("home", "thread", "notifications", "search"):
        assert set(shown.values()) <= set(before[name]), name
    assert before["conversations"] == [shown["dm"]]

    bob.read("mute", kind="word", value="Surprise")
    after = views()
    for name, texts in after.items():
        assert not set(shown.values()) & set(texts), name
    assert "what are we planning?" in after["home"] and "a picnic" in after["thread"]  # the rest stays
    # The thread of a muted private post opens, without the muted posts.
    assert [i.get("text") for i in bob.read("thread", ref=followers["ref"])["items"]] == [
        "what are we planning?", "a picnic"]
    assert direct["ref"] not in [i["ref"] for i in bob.read("thread", ref=direct["ref"])["items"]]


# -- 3. a deleted private post leaves the reader's node ------------------------------------------

def plain_keys(person: Person) -> list[bytes]:
    return [k for k, _ in person.node.store.local_scan(PLAIN)] + \
           [k for k, _ in person.node.store.local_scan(CONVERSATION)]


def test_deleting_a_private_post_removes_its_plaintext_and_indexes_at_the_reader(people) -> None:
    ann, bob = people
    root = ann.act("post", text="public root")
    bob.receive(ann)
    reply = bob.act("post", text="public reply", reply_to=root["ref"])
    ann.receive(bob)
    followers = ann.act("post", text=f"circle words @{bob.id}", visibility="followers", reply_to=reply["ref"])
    direct = ann.act("post", text="direct words", visibility="direct", to=[bob.id], reply_to=reply["ref"])
    bob.receive(ann)
    assert len(plain_keys(bob)) == 3  # two plaintexts, one conversation
    assert bob.node.store.reply_count(bob.me.public_key, reply["seq"]) == 2
    private = [f"circle words @{bob.id}", "direct words"]
    assert sorted(bob.texts("notifications")) == private
    assert sorted(bob.texts("search", query="words")) == private

    ann.act("delete", ref=followers["ref"])
    ann.act("delete", ref=direct["ref"])
    bob.receive(ann)
    assert plain_keys(bob) == []
    assert bob.node.private.plaintext(ann.me.public_key, followers["seq"]) is None
    assert bob.node.store.reply_count(bob.me.public_key, reply["seq"]) == 0
    assert bob.texts("notifications") == [] and bob.texts("search", query="words") == []
    assert bob.read("conversations")["items"] == []
    assert [n["kinds"] for n in bob.read("notifications")["items"]] == [["follow"]]
    assert [i["text"] for i in bob.read("thread", ref=root["ref"])["items"]] == ["public root", "public reply"]
    for post in (followers, direct):
        seen = next(i for i in bob.read("log", author=ann.id, limit=50) if i["seq"] == post["seq"])
        assert seen["state"] == "deleted" and "text" not in seen
    # The author's own node forgets its copy too.
    assert ann.node.private.plaintext(ann.me.public_key, followers["seq"]) is None
    assert [k for k, _ in ann.node.store.local_scan(PLAIN)] == []


def test_a_delete_stored_before_the_post_was_opened_leaves_nothing_to_open(people) -> None:
    """The reader stores the post and its delete before opening anything (a daemon that was
    down, or the grant arriving last): nothing is ever opened."""
    ann, bob = people
    followers = ann.act("post", text="gone soon", visibility="followers")
    direct = ann.act("post", text="gone too", visibility="direct", to=[bob.id])
    ann.act("delete", ref=followers["ref"])
    ann.act("delete", ref=direct["ref"])
    bob.receive(ann, absorb=False)
    assert bob.node.private.absorb_all(bob.me) == 0
    assert plain_keys(bob) == []


def test_a_stale_read_of_a_post_is_not_opened_after_its_delete(people) -> None:
    """The daemon reads new entries, then opens them on the writer: a delete stored in between
    must win (absorb re-reads on the writer)."""
    ann, bob = people
    direct = ann.act("post", text="too late", visibility="direct", to=[bob.id])
    bob.receive(ann, absorb=False)
    stale = bob.node.store.of_type(PayloadType.ENCRYPTED)
    ann.act("delete", ref=direct["ref"])
    bob.receive(ann, absorb=False)
    assert bob.node.private.absorb(bob.me, stale) == 0
    assert plain_keys(bob) == []


def test_a_node_restarted_after_a_delete_forgets_the_plaintext(people) -> None:
    """The delete was stored but the node never ran the opener on it (stopped in between):
    absorb_all at start removes the plaintext of every post since deleted."""
    ann, bob = people
    followers = ann.act("post", text="short-lived", visibility="followers")
    bob.receive(ann)
    assert len(plain_keys(bob)) == 1
    ann.act("delete", ref=followers["ref"])
    bob.receive(ann, absorb=False)
    assert len(plain_keys(bob)) == 1
    bob.node.private.absorb_all(bob.me)
    assert plain_keys(bob) == []


def test_a_followers_only_reply_shows_in_the_thread_of_a_follower_who_opens_both(people) -> None:
    ann, bob = people
    first = ann.act("post", text="circle question", visibility="followers")
    bob.receive(ann)
    answer = bob.act("post", text="circle answer", reply_to=first["ref"], visibility="followers")
    bob.act("accept_follower", id=ann.id)
    ann.receive(bob)
    for person in (ann, bob):
        thread = person.read("thread", ref=first["ref"])
        assert [(i["text"], i["parent"]) for i in thread["items"]] == [("circle question", None),
                                                                       ("circle answer", first["ref"])]
        assert thread["items"][0]["replies"] == 1
        assert person.read("thread", ref=answer["ref"])["root"] == first["ref"]
    # ann hears of bob's answer.
    assert [n["kinds"] for n in ann.read("notifications")["items"]][0] == ["reply"]


def test_store_index_opened_indexes_only_stored_type_11_entries_and_undoes_itself(people) -> None:
    ann, bob = people
    public = ann.act("post", text="public root")
    followers = ann.act("post", text="circle", visibility="followers")
    bob.receive(ann, absorb=False)
    store, a = bob.node.store, ann.me.public_key
    reply = {"text": f"hi @{bob.id}", "reply": [a, public["seq"]], "root": [a, public["seq"]],
             "mentions": [bob.me.public_key]}
    assert not store.index_opened(a, public["seq"], reply)  # not a private post
    assert not store.index_opened(a, 99, reply)  # not stored
    assert not store.index_opened(a, followers["seq"], {"text": 5})  # not a readable post
    assert store.index_opened(a, followers["seq"], reply)
    assert store.reply_count(a, public["seq"]) == 1
    notes = store.notifications(bob.me.public_key)[0]
    assert [(e.envelope.author, e.envelope.seq, k) for e, k in notes][0] == (a, followers["seq"], ["mention"])
    assert store.index_opened(a, followers["seq"], reply, remove=True)
    assert store.reply_count(a, public["seq"]) == 0
    assert all(e.envelope.seq != followers["seq"] for e, _ in store.notifications(bob.me.public_key)[0])
    # A dropped payload is never indexed again (a delete stored first).
    store.drop_payload(a, followers["seq"])
    assert not store.index_opened(a, followers["seq"], reply)
    assert store.reply_count(a, public["seq"]) == 0


def test_plaintexts_kept_before_indexing_are_indexed_once_at_start(people) -> None:
    """A node upgraded from a version that kept plaintexts without indexing them: the first
    absorb_all indexes them, then marks it done."""
    from murmurate.node.private import INDEXED
    ann, bob = people
    first = ann.act("post", text="circle question", visibility="followers")
    bob.receive(ann)
    answer = bob.act("post", text="circle answer", reply_to=first["ref"], visibility="followers")
    store, b = bob.node.store, bob.me.public_key
    payload = bob.node.private.plaintext(b, answer["seq"])[1]
    assert store.index_opened(b, answer["seq"], payload, remove=True)  # as the old version left it
    assert [i["text"] for i in bob.read("thread", ref=first["ref"])["items"]] == ["circle question"]
    assert store.local_get(INDEXED) is None
    bob.node.private.absorb_all(bob.me)
    assert [i["text"] for i in bob.read("thread", ref=first["ref"])["items"]] == ["circle question", "circle answer"]
    assert store.local_get(INDEXED) == b""
