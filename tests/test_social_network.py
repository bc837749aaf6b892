"""The social model across real daemons: written on one node, seen correctly on another."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from daemons import DaemonProcess, feed_seqs, wait_until

pytestmark = pytest.mark.network  # real libp2p hosts or daemons


@pytest.fixture
def trio_nodes(tmp_path: Path) -> Iterator[tuple[DaemonProcess, DaemonProcess, DaemonProcess]]:
    made = [DaemonProcess(tmp_path, n).init() for n in ("a", "b", "c")]
    a, b, c = made
    try:
        for node in made:
            node.start()
        # Everyone follows everyone, by contact code.
        for x in made:
            for y in made:
                if x is not y:
                    x.call("follow", id=y.contact())
        yield a, b, c
    finally:
        for node in made:
            node.close()


def has(node: DaemonProcess, author: DaemonProcess, seq: int) -> bool:
    return seq in feed_seqs(node, author.id)


@pytest.mark.slow
def test_threads_boosts_favourites_edits_blocks_across_nodes(trio_nodes) -> None:
    a, b, c = trio_nodes
    a.call("set_profile", name="Ann")
    root = a.call("post", text="What should we call the new relay? #naming")
    wait_until(lambda: has(b, a, root["seq"]) and has(c, a, root["seq"]), what="root everywhere")
    r1 = b.call("post", text="Starling!", reply_to=root["ref"])
    wait_until(lambda: has(c, b, r1["seq"]), what="b's reply at c")
    r2 = c.call("post", text="Starling is taken; Murmur?", reply_to=r1["ref"])
    wait_until(lambda: has(a, c, r2["seq"]) and has(a, b, r1["seq"]), what="replies at a")

    # The thread assembles on a with all three authors, in tree order.
    thread = a.call("thread", ref=r2["ref"])
    assert [i["text"] for i in thread["items"]] == [root["text"], "Starling!", "Starling is taken; Murmur?"]
    assert thread["items"][2]["parent"] == r1["ref"]

    # A boost and a favourite reach the author's notifications, with counts on the post.
    boost = b.call("boost", ref=root["ref"])
    c.call("favourite", ref=root["ref"])
    wait_until(lambda: has(a, b, boost["seq"]), what="b's boost at a")

    def kinds() -> list[str]:
        return sorted(k for n in a.call("notifications")["items"] for k in n["kinds"])
    wait_until(lambda: kinds() == ["boost", "favourite", "follow", "follow", "reply"], what="a's notifications")
    post_at_a = next(i for i in a.call("log") if i["seq"] == root["seq"])
    # The root counts every reply of its thread (b's, and c's answer to b).
    assert (post_at_a["boosts"], post_at_a["favourites"], post_at_a["replies"]) == (1, 1, 2)
    # b's boost shows on c's home timeline with the boosted post inside, named by a's profile.
    wait_until(lambda: any(i["type"] == "boost" for i in c.call("timeline")["items"]), what="boost at c")
    boost_at_c = next(i for i in c.call("timeline")["items"] if i["type"] == "boost")
    assert boost_at_c["boosted_post"]["text"] == root["text"] and boost_at_c["boosted_post"]["name"] == "Ann"

    # An edit shows on the other nodes with its history.
    edit = a.call("edit", ref=root["ref"], text="What should we call the new relay? #naming (ideas welcome)")
    wait_until(lambda: has(c, a, edit["seq"]), what="the edit at c")
    at_c = next(i for i in c.call("log", author=a.id) if i["seq"] == root["seq"])
    assert at_c["text"].endswith("(ideas welcome)") and at_c["edits"] == 1
    assert [v["text"] for v in c.call("history", ref=root["ref"])] == [root["text"], at_c["text"]]

    # c blocks b: b's posts and b's interactions never show on c.
    c.call("block", id=b.id)
    later = b.call("post", text="you will not see this at c")
    wait_until(lambda: has(c, b, later["seq"]), what="b's later post stored at c")
    shown = c.call("timeline", limit=50)["items"]
    assert all(i["author"] != b.id for i in shown)
    assert all(i["author"] != b.id for i in c.call("thread", ref=root["ref"])["items"])
    assert all(n["entry"]["author"] != b.id for n in c.call("notifications")["items"])


@pytest.mark.slow
def test_a_delete_reaches_a_node_that_was_offline(tmp_path: Path) -> None:
    a, b = DaemonProcess(tmp_path, "a").init(), DaemonProcess(tmp_path, "b").init()
    try:
        a.start()
        b.start()
        b.call("follow", id=a.contact())
        post = a.call("post", text="I will regret this")
        wait_until(lambda: has(b, a, post["seq"]), what="the post at b")
        b.stop()
        delete = a.call("delete", ref=post["ref"])
        b.start()
        wait_until(lambda: has(b, a, delete["seq"]), what="the delete at b after catch-up")
        at_b = next(i for i in b.call("log", author=a.id) if i["seq"] == post["seq"])
        assert at_b["state"] == "deleted" and "text" not in at_b
        assert all(i.get("text") != "I will regret this" for i in b.call("timeline")["items"])
        assert b.call("verify")["problems"] == []  # the chain still verifies without the payload
    finally:
        a.close()
        b.close()


def text_at(node: DaemonProcess, author: DaemonProcess, seq: int) -> str | None:
    item = next((i for i in node.call("log", author=author.id, limit=100) if i["seq"] == seq), None)
    return None if item is None else item.get("text")


@pytest.mark.slow
def test_followers_only_and_direct_posts_stay_private(tmp_path: Path) -> None:
    a, b, c = (DaemonProcess(tmp_path, n).init() for n in ("a", "b", "c"))
    try:
        for node in (a, b, c):
            node.start()
        b.call("follow", id=a.contact())
        c.call("follow", id=a.contact())  # c follows too, but a never accepts c
        a.call("accept_follower", id=b.id)
        first = a.call("post", text="for my circle only", visibility="followers")
        wait_until(lambda: text_at(b, a, first["seq"]) == "for my circle only", what="b reads the circle post")
        wait_until(lambda: first["seq"] in feed_seqs(c, a.id), what="c stores the ciphertext")
        at_c = next(i for i in c.call("log", author=a.id, limit=100) if i["seq"] == first["seq"])
        assert at_c["state"] == "encrypted" and "text" not in at_c  # c (like any relay) holds only ciphertext
        assert a.call("circle") == [b.id]
        assert text_at(a, a, first["seq"]) == "for my circle only"  # the author reads its own

        # b is removed: the next followers-only post is unreadable to b; the old one stays readable.
        a.call("remove_follower", id=b.id)
        second = a.call("post", text="after b left", visibility="followers")
        wait_until(lambda: second["seq"] in feed_seqs(b, a.id), what="b stores the second post")
        assert text_at(b, a, second["seq"]) is None
        assert text_at(b, a, first["seq"]) == "for my circle only"

        # A direct post to c alone: c reads it, b (a follower) cannot.
        dm = a.call("post", text="just between us", visibility="direct", to=[c.id])
        wait_until(lambda: text_at(c, a, dm["seq"]) == "just between us", what="c reads the direct post")
        wait_until(lambda: dm["seq"] in feed_seqs(b, a.id), what="b stores the direct post")
        assert text_at(b, a, dm["seq"]) is None
        assert [i["text"] for i in c.call("conversations")["items"]] == ["just between us"]
        assert b.call("conversations")["items"] == []
    finally:
        for node in (a, b, c):
            node.close()


@pytest.mark.slow
def test_media_blobs_travel_on_demand_and_bad_bytes_are_refused(tmp_path: Path) -> None:
    a, b = DaemonProcess(tmp_path, "a").init(), DaemonProcess(tmp_path, "b").init()
    picture = tmp_path / "picture.bin"
    picture.write_bytes(bytes(range(256)) * 12_000)  # 3 MB: 47 chunks
    try:
        a.start()
        b.start()
        b.call("follow", id=a.contact())
        ref = a.call("attach", path=str(picture), alt="a gradient, repeated")
        a.call("set_profile", avatar=ref)
        post = a.call("post", text="look", media=[ref])
        wait_until(lambda: post["seq"] in feed_seqs(b, a.id), what="the post at b")
        item = next(i for i in b.call("log", author=a.id) if i["seq"] == post["seq"])
        assert item["media"] == [{"blob": ref["blob"], "size": 3_072_000, "mime": "application/octet-stream",
                                  "alt": "a gradient, repeated"}]
        wait_until(lambda: b.call("profile", id=a.id)["avatar"], what="a's profile with its avatar at b")
        assert b.call("profile", id=a.id)["avatar"]["blob"] == ref["blob"]
        out = tmp_path / "at-b.bin"
        got = b.call("blob", hash=ref["blob"], out=str(out))
        assert got["fetched_from"] == a.info["peer_id"] and out.read_bytes() == picture.read_bytes()
        # A blob nobody has is a clear error; an attachment over 4 is refused.
        with pytest.raises(Exception, match="no connected peer has that blob"):
            b.call("blob", hash="00" * 32, out=str(tmp_path / "nothing"))
        with pytest.raises(Exception, match="at most 4"):
            a.call("post", text="too many", media=[ref] * 5)
    finally:
        a.close()
        b.close()


@pytest.mark.slow
def test_local_timeline_is_the_people_who_share_a_relay(tmp_path: Path) -> None:
    a, b, c = (DaemonProcess(tmp_path, n).init() for n in ("a", "b", "c"))
    relay = "/ip4/127.0.0.1/tcp/4001/p2p/12D3KooWRelayRelayRelayRelayRelayRelayRelayRelayRela"
    try:
        for node in (a, b, c):
            node.start()
        a.call("set_profile", relays=[relay])
        b.call("set_profile", relays=[relay])
        c.call("set_profile", relays=["/ip4/127.0.0.1/tcp/4002/p2p/12D3KooWElsewhere"])
        b.call("follow", id=a.contact())
        b.call("follow", id=c.contact())
        pa, pc = a.call("post", text="from a"), c.call("post", text="from c")
        wait_until(lambda: pa["seq"] in feed_seqs(b, a.id) and pc["seq"] in feed_seqs(b, c.id), what="both at b")
        local = [i["text"] for i in b.call("timeline", which="local")["items"] if i["type"] == "post"]
        assert local == ["from a"]
        fed = [i["text"] for i in b.call("timeline", which="federated")["items"] if i["type"] == "post"]
        assert sorted(fed) == ["from a", "from c"]
    finally:
        for node in (a, b, c):
            node.close()
