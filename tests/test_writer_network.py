"""Every commit is announced, through real daemons (issue 10): an archive imported through
the local API reaches the API's subscribers, a peer's live stream, and the private-post
opener, like entries that arrive from peers. A followed contact's addresses reach the peer
book through the writer.

The author x never runs a daemon: its feed is written by the command line alone (the
in-process node, its own single writer) and exported.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from daemons import DaemonProcess, feed_seqs, wait_until
from murmurate.node.p2p import peer_id_from_public_key
from murmurate.crypto import decode_id
from murmurate.store import Store

pytestmark = pytest.mark.network  # real libp2p hosts or daemons


def test_an_import_through_the_api_is_announced_to_subscribers_live_peers_and_the_private_opener(
        tmp_path: Path) -> None:
    b = DaemonProcess(tmp_path, "b").init()
    # c's periodic resync is far beyond the test's deadlines: what c gets, it gets live.
    c = DaemonProcess(tmp_path, "c", extra_args=("--resync", "3600")).init()
    x = DaemonProcess(tmp_path, "x").init()
    try:
        b.start()
        c.start()
        x_id = json.loads(x.cli("whoami", "--json").stdout)["id"]
        x.cli("accept", b.id)                       # b may read x's followers-only posts
        x.cli("post", "hello from the archive")
        x.cli("post", "for b's eyes", "--visibility", "followers")
        x.cli("post", "after the private one")
        archive = tmp_path / "x.mrm"
        x.cli("export", str(archive))

        # c follows x (an id without addresses: only b will have x's feed) and b, by its
        # contact code; c then keeps a live stream open with b.
        c.call("follow", id=x_id)
        c.call("follow", id=b.contact())
        wait_until(lambda: b.call("status")["live_served"] >= 1 and c.call("status")["live_streams"] >= 1,
                   what="c's live stream from b")
        events = b.subscribe()

        report = b.call("import", file=str(archive))
        assert report["new"] == len(feed_seqs(b, x_id)) == 4  # the grant to b, three posts

        seen: set[int] = set()
        while seen != set(feed_seqs(b, x_id)):
            item = events.next_notification()["params"].get("item", {})
            if item.get("author") == x_id:
                seen.add(item["seq"])
        events.close()

        wait_until(lambda: feed_seqs(c, x_id) == feed_seqs(b, x_id), what="x's feed at c, live from b")
        wait_until(lambda: any(i.get("text") == "for b's eyes" and i.get("visibility") == "followers"
                               for i in b.call("log", author=x_id, limit=50)),
                   what="b opens the followers-only post it imported")
        at_c = [i for i in c.call("log", author=x_id, limit=50) if i.get("state") == "encrypted"]
        assert at_c and all("text" not in i for i in at_c)  # c is not in x's circle
    finally:
        for node in (b, c, x):
            node.close()
    # c's follow by contact code put b's addresses in c's peer book (through c's writer).
    with Store(c.home / "store", readonly=True) as store:
        book = store.peers()
    entry = book[peer_id_from_public_key(decode_id(b.id)).encode()]
    assert entry["source"] == "contact" and entry["addrs"]


@pytest.mark.slow
def test_every_write_verb_of_the_api_ends_in_an_announced_commit(tmp_path: Path) -> None:
    from murmurate.node.service import LocalNode

    a = DaemonProcess(tmp_path, "a").init()
    x = DaemonProcess(tmp_path, "x").init()  # another identity to follow, block, accept
    try:
        a.start()
        other = json.loads(x.cli("whoami", "--json").stdout)["id"]
        events = a.subscribe()
        ref = a.call("post", text="the post the verbs act on")["ref"]  # calls[0]: post
        calls = [("post", {"text": "the post the verbs act on"}),
                 ("follow", {"id": other}), ("unfollow", {"id": other}),
                 ("boost", {"ref": ref}), ("unboost", {"ref": ref}),
                 ("favourite", {"ref": ref}), ("unfavourite", {"ref": ref}),
                 ("edit", {"ref": ref, "text": "edited"}), ("set_profile", {"name": "Ann"}),
                 ("block", {"id": other}), ("unblock", {"id": other}),
                 ("accept_follower", {"id": other}), ("remove_follower", {"id": other}),
                 ("delete", {"ref": ref})]
        assert {verb for verb, _ in calls} == set(LocalNode.WRITE_VERBS)  # a new verb joins this list
        announced: set[int] = set()
        for verb, params in calls[1:]:
            item = a.call(verb, **params)
            head = max(feed_seqs(a, a.id))
            assert item is None or item["seq"] == head, verb
            while head not in announced:
                event = events.next_notification()["params"]
                assert event["kind"] == "entry", (verb, event)
                announced.add(event["item"]["seq"])
        assert announced == set(feed_seqs(a, a.id))  # every entry written was announced
        events.close()
    finally:
        a.close()
        x.close()
