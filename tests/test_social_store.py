"""The store's social indexes: interactions, notifications, edits, blocks, followers,
profiles, threads, hashtags, the federated view, and the migration that builds them."""

from __future__ import annotations

from pathlib import Path

import lmdb

from murmurate.crypto import SigningIdentity
from murmurate.store import SCHEMA_VERSION, PayloadType, Store
from murmurate.store.records import U32

A, B, C = (SigningIdentity(bytes([i]) * 32) for i in (1, 2, 3))
T = 1_700_000_000_000


def ref(who: SigningIdentity, seq: int) -> list:
    return [who.public_key, seq]


def post(store: Store, who: SigningIdentity, text: str, t: int, **extra) -> int:
    return store.append_own(who, PayloadType.POST, {"text": text, **extra}, t).envelope.seq


def test_boosts_favourites_and_their_notifications(tmp_path: Path) -> None:
    s = Store(tmp_path / "s")
    p = post(s, A, "hello", T)
    s.append_own(B, PayloadType.BOOST, {"target": ref(A, p)}, T + 1)
    fav = s.append_own(C, PayloadType.FAVOURITE, {"target": ref(A, p)}, T + 2).envelope.seq
    s.append_own(A, PayloadType.FAVOURITE, {"target": ref(A, p)}, T + 3)  # own: no notification
    got = s.interactions(A.public_key, p)
    assert got["boost"] == [(B.public_key, 1)]
    assert sorted(got["favourite"]) == sorted([(C.public_key, fav), (A.public_key, 2)])
    notes, _ = s.notifications(A.public_key)
    assert [(n.envelope.author, kinds) for n, kinds in notes] == [(C.public_key, ["favourite"]),
                                                                  (B.public_key, ["boost"])]
    # Unfavourite = delete the favourite entry: the interaction and the notification go.
    s.append_own(C, PayloadType.DELETE, {"target": fav}, T + 4)
    assert [a for a, _ in s.interactions(A.public_key, p)["favourite"]] == [A.public_key]
    assert [n.envelope.author for n, _ in s.notifications(A.public_key)[0]] == [B.public_key]


def test_replies_mentions_follows_notify_and_threads_assemble(tmp_path: Path) -> None:
    s = Store(tmp_path / "s")
    root = post(s, A, "root", T)
    r1 = post(s, B, "reply", T + 1, reply=ref(A, root), root=ref(A, root), mentions=[C.public_key])
    post(s, C, "reply to reply", T + 2, reply=ref(B, r1), root=ref(A, root))
    s.append_own(C, PayloadType.FOLLOW, {"id": A.public_key}, T + 3)
    kinds = [(n.envelope.author, k) for n, k in s.notifications(A.public_key)[0]]
    assert kinds == [(C.public_key, ["follow"]), (B.public_key, ["reply"])]
    assert [k for _, k in s.notifications(C.public_key)[0]] == [["mention"]]
    assert [k for _, k in s.notifications(B.public_key)[0]] == [["reply"]]
    under_root = {(e.envelope.author, e.envelope.seq) for e in s.replies_under(A.public_key, root)}
    assert under_root == {(B.public_key, r1), (C.public_key, 1)}
    assert s.followers(A.public_key) == [C.public_key]
    s.append_own(C, PayloadType.UNFOLLOW, {"id": A.public_key}, T + 4)
    assert s.followers(A.public_key) == []


def test_notification_pages_visit_each_once(tmp_path: Path) -> None:
    s = Store(tmp_path / "s")
    p = post(s, A, "popular", T)
    for i in range(25):
        s.append_own(SigningIdentity(bytes([50 + i]) * 32), PayloadType.FAVOURITE, {"target": ref(A, p)}, T + i)
    seen, cursor = [], None
    while True:
        page, cursor = s.notifications(A.public_key, limit=7, cursor=cursor)
        seen += [n.envelope.author for n, _ in page]
        if cursor is None:
            break
    assert len(seen) == 25 == len(set(seen))


def test_edits_blocks_profiles(tmp_path: Path) -> None:
    s = Store(tmp_path / "s")
    p = post(s, A, "typo", T)
    e1 = s.append_own(A, PayloadType.EDIT, {"target": p, "text": "fixed"}, T + 1).envelope.seq
    e2 = s.append_own(A, PayloadType.EDIT, {"target": p, "text": "fixed again"}, T + 2).envelope.seq
    assert s.edits(A.public_key, p) == [e1, e2]
    s.append_own(A, PayloadType.BLOCK, {"id": B.public_key}, T + 3)
    assert s.blocks(A.public_key) == [B.public_key]
    s.append_own(A, PayloadType.UNBLOCK, {"id": B.public_key}, T + 4)
    assert s.blocks(A.public_key) == []
    s.append_own(A, PayloadType.PROFILE, {"name": "Ann"}, T + 5)
    s.append_own(A, PayloadType.PROFILE, {"name": "Ann B."}, T + 6)
    assert s.profile(A.public_key).payload["name"] == "Ann B."
    assert s.profile(B.public_key) is None


def test_hashtags_and_federated_leave_unlisted_out(tmp_path: Path) -> None:
    s = Store(tmp_path / "s")
    post(s, A, "#cats one", T, tags=["cats"])
    post(s, B, "#cats quiet", T + 1, tags=["cats"], vis="unlisted")
    post(s, C, "#cats two", T + 2, tags=["cats"])
    assert [e.payload["text"] for e in s.hashtag("cats").items] == ["#cats two", "#cats one"]
    assert [e.payload["text"] for e in s.federated(limit=5).items] == ["#cats two", "#cats one"]
    fed = s.federated(limit=1)
    assert [e.payload["text"] for e in fed.items] == ["#cats two"]
    rest = s.federated(limit=1, cursor=fed.next_cursor)  # the unlisted one in between is skipped
    assert [e.payload["text"] for e in rest.items] == ["#cats one"]
    assert s.tags_with_prefix("ca") == ["cats"]


def test_a_version_1_store_is_migrated_by_indexing_its_log(tmp_path: Path) -> None:
    s = Store(tmp_path / "s")
    p = post(s, A, "hello", T)
    s.append_own(B, PayloadType.BOOST, {"target": ref(A, p)}, T + 1)
    s.close()
    env = lmdb.open(str(tmp_path / "s"), max_dbs=32)
    with env.begin(write=True) as txn:
        txn.put(b"schema", U32.pack(1), db=env.open_db(b"meta", txn=txn))
        for name in (b"interactions", b"notifications"):
            txn.drop(env.open_db(name, txn=txn), delete=False)
    env.close()
    s = Store(tmp_path / "s")
    assert s.schema_version == SCHEMA_VERSION
    assert s.interactions(A.public_key, p)["boost"] == [(B.public_key, 1)]
    assert len(s.notifications(A.public_key)[0]) == 1


def test_a_quote_post_shows_the_quoted_post_and_notifies_its_author(tmp_path: Path) -> None:
    from murmurate.crypto import encode_id
    from murmurate.node import Home, LocalNode

    home = Home(tmp_path / "b", tmp_path / "b" / "config.toml")
    node = LocalNode(home, now_ms=lambda: T, random_bytes=lambda n: bytes([7]) * n)
    node.init(None)
    me = node.unlock(None)
    p = post(node.store, A, "original", T)
    quote = node.act(me, "post", {"text": "so true", "quote": f"{encode_id(A.public_key)}/{p}"})
    assert quote["quote"] == f"{encode_id(A.public_key)}/{p}" and quote["quoted_post"]["text"] == "original"
    assert [k for _, k in node.store.notifications(A.public_key)[0]] == [["quote"]]
    assert "quote" in node.store.interactions(A.public_key, p)
    node.close()


def test_of_type_reads_only_entries_of_that_type(tmp_path: Path) -> None:
    s = Store(tmp_path / "s")
    post(s, A, "public", T)
    s.append_own(A, PayloadType.ENCRYPTED, {"box": b"x"}, T + 1)
    post(s, B, "public too", T + 2)
    s.append_own(B, PayloadType.ENCRYPTED, {"box": b"y"}, T + 3)
    everywhere = s.of_type(PayloadType.ENCRYPTED)
    assert sorted((e.envelope.author, e.envelope.seq) for e in everywhere) == sorted(
        [(A.public_key, 2), (B.public_key, 2)])
    among = s.of_type(PayloadType.ENCRYPTED, [(A.public_key, 1), (A.public_key, 2), (C.public_key, 1)])
    assert [(e.envelope.author, e.envelope.seq) for e in among] == [(A.public_key, 2)]


def test_thread_pages_visit_every_reply_once_with_counts(tmp_path: Path) -> None:
    from murmurate.crypto import encode_id
    from murmurate.node.social import Views

    s = Store(tmp_path / "s")
    root = post(s, A, "root", T)
    first = post(s, B, "r0", T + 1, reply=ref(A, root), root=ref(A, root))
    for i in range(1, 7):
        post(s, C, f"r{i}", T + 1 + i, reply=ref(B, first) if i % 2 else ref(A, root), root=ref(A, root))
    views = Views(s, A.public_key)
    seen, cursor, pages = [], None, 0
    while True:
        page = views.thread(f"{encode_id(A.public_key)}/{root}", limit=3, cursor=cursor)
        seen += [i["text"] for i in page["items"]]
        pages += 1
        if pages == 1:
            assert page["items"][0]["text"] == "root" and page["items"][0]["replies"] == 4  # r0, r2, r4, r6
            assert page["total_replies"] == 7
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == ["root"] + [f"r{i}" for i in range(7)] and pages == 3
    r0 = views.thread(f"{encode_id(B.public_key)}/{first}")["items"][1]
    assert r0["text"] == "r0" and r0["replies"] == 3  # r1, r3, r5


def test_mentions_are_ids_shown_by_display_name(tmp_path: Path) -> None:
    from murmurate.crypto import encode_id
    from murmurate.node.social import Views
    from murmurate.ui import render

    s = Store(tmp_path / "s")
    s.append_own(B, PayloadType.PROFILE, {"name": "Bea"}, T)
    b_id = encode_id(B.public_key)
    p = post(s, A, f"thanks @{b_id}!", T + 1, mentions=[B.public_key])
    item = Views(s, A.public_key).item(s.get(A.public_key, p))
    assert item["mentions"] == [b_id] and item["mention_names"] == {b_id: "Bea"}
    assert f"thanks @Bea [{b_id[4:12]}]!" in render.entry(item, T + 5)
