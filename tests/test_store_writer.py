"""The writer is the only holder of a writable store, and every commit that appends is
announced, whatever write made it (issue 10).

In-process: the read view's shape, the daemon-side LocalNode, and StoreWriter's
announcements for imports, own entries and failing jobs. tests/test_writer_network.py
checks the same through real daemons.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import trio

from helpers import NOW_MS, identity, posts
from murmurate.node.home import Home
from murmurate.node.service import LocalNode
from murmurate.node.writer import Committed, StoreWriter
from murmurate.store import WRITE_METHODS, PayloadType, Store, StoreView
from murmurate.store.archive import export_archive, import_archive

A, B, C = identity(71), identity(72), identity(73)


def test_a_view_has_none_of_the_write_methods(tmp_path: Path) -> None:
    with Store(tmp_path / "s") as store:
        view = store.view()
        assert isinstance(view, StoreView) and not isinstance(view, Store)
        for name in WRITE_METHODS:
            assert hasattr(store, name), name
            assert not hasattr(view, name), name
            with pytest.raises(AttributeError):
                getattr(view, name)


def test_every_method_only_the_writable_store_has_is_a_listed_write(tmp_path: Path) -> None:
    """A new write method must be added to WRITE_METHODS (and so stay off the view)."""
    life_cycle = {"close", "view"}
    only_writable = {n for n in dir(Store) if not n.startswith("_")} - {n for n in dir(StoreView)}
    assert only_writable - life_cycle == set(WRITE_METHODS)


def test_a_view_reads_what_the_writable_store_commits(tmp_path: Path) -> None:
    with Store(tmp_path / "s") as store:
        view = store.view()
        store.set_self(A.public_key)
        entry = store.append_own(A, PayloadType.POST, {"text": "seen through the view"}, NOW_MS)
        store.put_peer(b"peer", {"addrs": [], "source": "contact"})
        assert view.self_id == A.public_key
        assert view.get(A.public_key, 1).entry == entry
        assert [s.entry for s in view.home_timeline().items] == [entry]
        assert view.peers() == {b"peer": {"addrs": [], "source": "contact"}}


def test_a_daemon_node_reads_through_a_view_and_writes_only_on_the_writers_store(tmp_path: Path) -> None:
    node = LocalNode(Home(tmp_path / "home", tmp_path / "config.toml"), now_ms=lambda: NOW_MS, random_bytes=os.urandom)
    store = node.hand_over_store()
    try:
        assert not hasattr(node.store, "append_own") and not hasattr(node.store, "local_put")
        with pytest.raises(AttributeError):
            node.read("mute", {"kind": "word", "value": "spoilers"})  # a local write, not through the writer
        bound = node.writing_to(store)
        assert bound.store is store
        assert bound.read("mute", {"kind": "word", "value": "spoilers"})["words"] == ["spoilers"]
        assert node.read("mutes", {})["words"] == ["spoilers"]  # and the node's view sees it
        with pytest.raises(RuntimeError):
            node.hand_over_store()
    finally:
        store.close()


async def test_an_import_through_a_writer_job_is_announced_feed_by_feed(tmp_path: Path) -> None:
    """An import appends many feeds over several transactions (2,000 entries each): one
    announcement names every entry, in order, with its type."""
    archive = tmp_path / "export.mrm"
    feeds = {who: posts(who, [NOW_MS - 10_000_000 + i for i in range(n)]) for who, n in ((A, 1500), (B, 900), (C, 3))}
    with Store(tmp_path / "source") as source:
        for entries in feeds.values():
            source.ingest(entries, NOW_MS)
        export_archive(source, archive)
    with Store(tmp_path / "node") as store:
        writer = StoreWriter(store)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            commits = writer.listen()
            report = await writer.call(lambda s: import_archive(s, archive, NOW_MS))
            assert report.appended == 2403
            with trio.fail_after(10):
                commit: Committed = await commits.receive()
            assert sorted(commit.appended) == sorted((e.envelope.author, e.envelope.seq)
                                                     for entries in feeds.values() for e in entries)
            assert commit.types == (PayloadType.POST,) * 2403 and not commit.own
            nursery.cancel_scope.cancel()


async def test_own_entries_and_a_failing_job_s_commits_are_announced(tmp_path: Path) -> None:
    with Store(tmp_path / "node") as store:
        writer = StoreWriter(store)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            commits = writer.listen()
            await writer.append_own(A, PayloadType.POST, {"text": "mine"}, NOW_MS)
            with trio.fail_after(10):
                own = await commits.receive()
            assert own == Committed(((A.public_key, 1),), True, (PayloadType.POST,))

            def stores_then_fails(s: Store) -> None:
                s.ingest(posts(B, [NOW_MS - 1_000]), NOW_MS)
                raise ValueError("a job that fails after a commit")

            with pytest.raises(ValueError):
                await writer.call(stores_then_fails)
            with trio.fail_after(10):
                partial = await commits.receive()
            assert partial.appended == ((B.public_key, 1),) and not partial.own
            await writer.call(lambda s: s.local_put(b"k", b"v"))  # appends nothing: no announcement
            await writer.append_own(A, PayloadType.POST, {"text": "again"}, NOW_MS)
            with trio.fail_after(10):
                assert (await commits.receive()).appended == ((A.public_key, 2),)
            nursery.cancel_scope.cancel()


def test_append_own_signs_outside_the_write_transaction_and_again_if_the_head_moved(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the first signature is made, another write appends to the same feed (a write
    transaction could not even start if signing ran inside one): the append sees the head
    moved and signs the entry that follows the new head."""
    from murmurate.store import entry as entry_format

    real_create = entry_format.create_entry
    signed: list[int] = []

    with Store(tmp_path / "s") as store:
        def racing_create(identity, **fields):  # type: ignore[no-untyped-def]
            signed.append(fields["seq"])
            if len(signed) == 1:
                store.append_own(A, PayloadType.POST, {"text": "slipped in"}, NOW_MS)
            return real_create(identity, **fields)

        monkeypatch.setattr(entry_format, "create_entry", racing_create)
        mine = store.append_own(A, PayloadType.POST, {"text": "mine"}, NOW_MS + 1)
        assert signed == [1, 1, 2]  # signed for seq 1, the head moved, signed again for seq 2
        first = store.get(A.public_key, 1)
        assert first.payload == {"text": "slipped in"}
        assert mine.envelope.seq == 2 and mine.envelope.prev == first.envelope.hash
        assert store.get(A.public_key, 2).entry == mine and store.head(A.public_key).seq == 2
        assert store.verify() == []
