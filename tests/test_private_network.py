"""Private posts across two real daemons: refused public verbs through the API, muted words,
and a delete that removes the plaintext from the recipient's node (docs/private-posts.md 13)."""

from __future__ import annotations

from pathlib import Path

import pytest

from daemons import DaemonProcess, feed_seqs, wait_until
from murmurate.node.private import CONVERSATION, PLAIN
from murmurate.store import Store
from murmurate.ui.api_client import ApiError

pytestmark = pytest.mark.network  # real libp2p hosts or daemons


def text_at(node: DaemonProcess, author: DaemonProcess, seq: int) -> str | None:
    item = next((i for i in node.call("log", author=author.id, limit=100) if i["seq"] == seq), None)
    return None if item is None else item.get("text")


def kept_plaintexts(node: DaemonProcess) -> list[bytes]:
    """The private-post keys in the node's local settings, read beside the running daemon
    (LMDB allows other readers)."""
    with Store(node.home / "store", readonly=True) as store:
        return [k for k, _ in store.local_scan(PLAIN)] + [k for k, _ in store.local_scan(CONVERSATION)]


@pytest.mark.slow
def test_private_posts_stay_private_across_daemons(tmp_path: Path) -> None:
    a, b = DaemonProcess(tmp_path, "a").init(), DaemonProcess(tmp_path, "b").init()
    try:
        a.start()
        b.start()
        b.call("follow", id=a.contact())
        a.call("accept_follower", id=b.id)
        circle = a.call("post", text="circle plans", visibility="followers")
        dm = a.call("post", text="a word for b", visibility="direct", to=[b.id])
        wait_until(lambda: text_at(b, a, circle["seq"]) == "circle plans", what="b reads the circle post")
        wait_until(lambda: text_at(b, a, dm["seq"]) == "a word for b", what="b reads the direct post")

        # 1. Boosts and favourites of private posts are refused, by the reader and the author.
        for node in (a, b):
            for post in (circle, dm):
                with pytest.raises(ApiError, match="only public and unlisted posts can be boosted"):
                    node.call("boost", ref=post["ref"])
                with pytest.raises(ApiError, match="a favourite is public"):
                    node.call("favourite", ref=post["ref"])
                with pytest.raises(ApiError, match="a reply to a private post must be private"):
                    node.call("post", text="me too", reply_to=post["ref"])
        assert feed_seqs(b, b.id) == [1]  # only b's follow was ever written

        # 2. A muted word hides opened private posts.
        b.call("mute", kind="word", value="PLANS")
        assert "circle plans" not in [i.get("text") for i in b.call("timeline")["items"]]
        assert b.call("search", query="plans")["posts"] == []
        assert [i["text"] for i in b.call("conversations")["items"]] == ["a word for b"]
        b.call("unmute", kind="word", value="plans")

        # 3. The author deletes both: b's node removes the plaintexts, not only the views.
        wait_until(lambda: len(kept_plaintexts(b)) == 3, what="two plaintexts and one conversation at b")
        deletes = [a.call("delete", ref=post["ref"]) for post in (circle, dm)]
        wait_until(lambda: deletes[-1]["seq"] in feed_seqs(b, a.id), what="the deletes at b")
        wait_until(lambda: kept_plaintexts(b) == [], what="b's node forgets the plaintexts")
        assert text_at(b, a, circle["seq"]) is None and text_at(b, a, dm["seq"]) is None
        assert b.call("conversations")["items"] == []
        assert b.call("search", query="word")["posts"] == []

        # ...also when the deletes arrive with the posts, before b could open them.
        b.stop()
        later = [a.call("post", text="never seen", visibility="followers"),
                 a.call("post", text="never seen either", visibility="direct", to=[b.id])]
        for post in later:
            a.call("delete", ref=post["ref"])
        # b opens in commit order: once it reads this marker, it has been through the deletes.
        marker = a.call("post", text="marker", visibility="direct", to=[b.id])
        b.start()
        wait_until(lambda: text_at(b, a, marker["seq"]) == "marker", what="b reads the marker")
        assert len(kept_plaintexts(b)) == 2  # the marker's plaintext and conversation only
        assert all(text_at(b, a, post["seq"]) is None for post in later)
    finally:
        a.close()
        b.close()
