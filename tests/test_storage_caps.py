"""Storage caps (node/core/caps.py, node/writer.py): a followed author cannot fill the
node's disk. Pure decisions, then real nodes (libp2p on 127.0.0.1, LMDB in tmp_path)."""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from inprocess import NOW, node
from murmurate.crypto import SigningIdentity
from murmurate.node.core import caps
from murmurate.node.errors import UsageError
from murmurate.node.home import parse_config
from murmurate.node.relay import RelayConfigError, parse_relay_config
from murmurate.node.writer import StoreWriter
from murmurate.store import Entry, PayloadType, Reason, create_entry, entry_frame_size

DEADLINE = 60
A, ME = SigningIdentity(bytes([41]) * 32), SigningIdentity(bytes([42]) * 32)


def feed(who: SigningIdentity, n: int, text: str = "p") -> list[Entry]:
    out: list[Entry] = []
    for seq in range(1, n + 1):
        out.append(create_entry(who, seq=seq, prev=out[-1].envelope.hash if out else None,
                                timestamp_ms=NOW - 10_000 + seq, payload_type=PayloadType.POST,
                                payload={"text": f"{text} {seq:04d}"}))
    return out


def test_a_feed_stops_at_its_caps_and_the_rest_of_it_in_the_batch_too() -> None:
    entries = feed(A, 6)
    size = entry_frame_size(entries[1])  # (the first is shorter: it has no prev)
    kept, refused = caps.fit(entries, {}, caps.StorageCaps(max_feed_entries=4), 10**9, None)
    assert [e.envelope.seq for e in kept] == [1, 2, 3, 4]
    assert [(r.seq, r.reason) for r in refused] == [(5, Reason.FEED_CAP), (6, Reason.FEED_CAP)]
    kept, refused = caps.fit(entries, {A.public_key: caps.Usage(2, 2 * size)},
                             caps.StorageCaps(max_feed_bytes=3 * size), 10**9, None)
    assert [e.envelope.seq for e in kept] == [1, 2, 3]  # 1 and 2 are stored already: they cost nothing
    assert "bytes" in refused[0].message


def test_the_node_cap_refuses_other_authors_but_never_the_nodes_own_feed() -> None:
    theirs, mine = feed(A, 3), feed(ME, 3)
    size = entry_frame_size(theirs[0])
    room = caps.STORE_OVERHEAD * size  # one entry's worth
    kept, refused = caps.fit(theirs + mine, {}, caps.StorageCaps(), room, ME.public_key)
    assert [(e.envelope.author, e.envelope.seq) for e in kept] == \
        [(A.public_key, 1)] + [(ME.public_key, s) for s in (1, 2, 3)]
    assert {r.reason for r in refused} == {Reason.NODE_CAP}
    c = caps.StorageCaps(max_store_bytes=1000, map_reserve_bytes=100, min_free_disk_bytes=50)
    assert caps.node_room(used=400, map_size=10_000, free_disk=10**9, caps=c) == 600
    assert caps.node_room(used=400, map_size=800, free_disk=10**9, caps=c) == 300
    assert caps.node_room(used=400, map_size=10_000, free_disk=250, caps=c) == 200


def test_caps_are_read_from_the_store_table_of_both_configs() -> None:
    got = parse_config({"store": {"max_feed_mb": 10, "max_feed_entries": 500, "max_store_mb": 2048,
                                  "min_free_disk_mb": 100}}, "config.toml").caps
    assert got == caps.StorageCaps(max_feed_entries=500, max_feed_bytes=10 << 20, max_store_bytes=2048 << 20,
                                   min_free_disk_bytes=100 << 20)
    assert parse_config({}, "c").caps == caps.StorageCaps()
    with pytest.raises(UsageError, match="store.max_feed_mb must be an integer"):
        parse_config({"store": {"max_feed_mb": 0}}, "c")
    relay = parse_relay_config('data_dir = "/r"\nunencrypted_key = true\n[store]\nmax_feed_entries = 7\n', "r.toml")
    assert relay.storage.max_feed_entries == 7
    with pytest.raises(RelayConfigError, match="store.max_store_mb"):
        parse_relay_config('data_dir = "/r"\nunencrypted_key = true\n[store]\nmax_store_mb = "x"\n', "r.toml")


async def wait_for(condition, what: str) -> None:
    with trio.fail_after(DEADLINE):
        while not condition():
            await trio.sleep(0.02)


async def test_a_feed_over_its_cap_is_refused_without_banning_the_peer_and_the_node_says_so(tmp_path: Path) -> None:
    limits = caps.StorageCaps(max_feed_entries=10)
    async with node(tmp_path, "source", 1) as source, \
            node(tmp_path, "sink", 2, writer=lambda store: StoreWriter(store, caps=limits)) as sink:
        for i in range(30):
            await source.writer.append_own(source.identity, PayloadType.POST, {"text": f"p {i}"}, NOW - 1000 + i)
        await sink.host.dial(source.host.addrs()[0])
        author = source.identity.public_key
        stored = await sink.replicator.fetch(source.host.peer_id, sink.replicator.wants([author]))
        assert stored == 10 and sink.store.head(author).seq == 10
        assert sink.replicator.banned == {}  # a cap is no fault of the peer
        assert "10 entries" in sink.writer.capped[author] and sink.writer.cap_refused >= 20
        # The writer's running count of the feed agrees with a count from the store.
        from murmurate.node.feed_usage import account
        assert sink.writer._sizes[author] == account(sink.store, author, save_after=10**9)
        # The sink's own feed is never capped.
        for i in range(12):
            await sink.writer.append_own(sink.identity, PayloadType.POST, {"text": f"mine {i}"}, NOW + i)
        assert sink.store.head(sink.identity.public_key).seq == 12
        # A second fetch from the same peer goes ahead (no ban) and stores nothing more.
        assert await sink.replicator.fetch(source.host.peer_id, sink.replicator.wants([author])) == 0


async def test_a_full_store_refuses_other_authors_entries_with_node_cap(tmp_path: Path) -> None:
    async with node(tmp_path, "source", 1) as source, node(tmp_path, "sink", 2) as sink:
        for i in range(200):
            await source.writer.append_own(source.identity, PayloadType.POST, {"text": "x" * 400 + str(i)},
                                           NOW - 1000 + i)
        used, _ = sink.store.space()
        sink.writer.caps = caps.StorageCaps(max_store_bytes=used + 20_000, min_free_disk_bytes=0)
        await sink.host.dial(source.host.addrs()[0])
        author = source.identity.public_key
        stored = await sink.replicator.fetch(source.host.peer_id, sink.replicator.wants([author]))
        assert 0 < stored < 200 and sink.replicator.banned == {}
        assert "store is full" in sink.writer.node_full
        report = await sink.writer.ingest(
            [e.entry for e in source.store.entries(author, from_seq=stored + 1, limit=1)], NOW)
        assert [r.reason for r in report.rejected] == [Reason.NODE_CAP] and not report.appended


def test_the_status_text_names_capped_feeds_and_a_full_store() -> None:
    from murmurate.ui import render
    base = {"id": "mur_me", "peer_id": "12D3", "addrs": [], "peers": 0, "entries": 5, "feeds": []}
    assert "capped" not in render.status(base) and "store full" not in render.status(base)
    text = render.status({**base, "storage": {"capped_feeds": [{"id": "mur_x", "why": "this feed holds 10 entries"}],
                                              "store_full": "this node's store is full", "refused_entries": 3}})
    assert "capped feed mur_x: this feed holds 10 entries" in text and "store full: this node's store is full" in text


def test_a_daemon_reads_its_caps_from_config_toml_and_its_status_says_what_they_refuse(tmp_path: Path) -> None:
    from daemons import DaemonProcess, wait_until
    a = DaemonProcess(tmp_path, "a").init()
    b = DaemonProcess(tmp_path, "b").init()
    try:
        (b.home / "config.toml").write_text("[store]\nmax_feed_entries = 5\n")
        a.start()
        b.start()
        for i in range(9):
            a.call("post", text=f"post {i}")
        events = b.subscribe()
        b.call("follow", id=a.id)
        b.call("connect", addr=a.addr)
        def capped_and_stored() -> dict | None:
            s = b.call("status")
            have = next((f["have"] for f in s["feeds"] if f["id"] == a.id), 0)
            return s if s["storage"]["capped_feeds"] and have >= 5 else None
        status = wait_until(capped_and_stored, what="b to store 5 of a's entries and report the feed capped")
        assert status["storage"]["capped_feeds"][0]["id"] == a.id
        assert "5 entries" in status["storage"]["capped_feeds"][0]["why"]
        assert next(f for f in status["feeds"] if f["id"] == a.id)["have"] == 5
        assert status["banned"] == 0 and "capped feed" in b.cli("status").stdout
        # Subscribers hear it once, as an event (the socket's 60 s timeout bounds the wait).
        while (event := events.next_notification()["params"])["kind"] != "storage_cap":
            pass
        assert event["feed"] == a.id and "5 entries" in event["why"]
        events.close()
    finally:
        a.close()
        b.close()
