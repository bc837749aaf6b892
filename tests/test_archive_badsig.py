"""A bad signature never lives on in an archive (issue 11, point 3), on real LMDB.

An entry whose own signature is bad can sit in a store until the audit reaches it: ingest
checked its run by a later signature the author made over it (store/audit.py). Export must
not write it (an archive holding it is refused by every importer, the author's own node
included), and import takes every good feed of an archive in which one feed is bad.
"""

from __future__ import annotations

import hashlib
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import NOW_MS, identity, posts, signed_over_bad
from murmurate.store import Entry, Store
from murmurate.store import entry as entry_format
from murmurate.store.archive import MAGIC, _frames, export_archive, import_archive
from murmurate.store.errors import ArchiveError

A, B, C = identity(41), identity(42), identity(43)
TIMES = [NOW_MS - 100_000 + i for i in range(20)]


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(tmp_path / "store") as s:
        yield s


def write_archive(path: Path, entries: list[Entry]) -> None:
    """An archive in the export format, written byte by byte (as a hostile exporter could)."""
    body = bytearray(MAGIC)
    for item in entries:
        frame = entry_format.encode_frame(item)
        body += struct.pack(">I", len(frame)) + frame
    body += struct.pack(">I", 0)
    path.write_bytes(bytes(body) + hashlib.blake2b(bytes(body), digest_size=32).digest())


def held(path: Path) -> dict[bytes, list[int]]:
    out: dict[bytes, list[int]] = {}
    for item in _frames(path):
        out.setdefault(item.envelope.author, []).append(item.envelope.seq)
    return out


@pytest.mark.parametrize("audited", [False, True], ids=["before-audit", "after-audit"])
def test_export_stops_a_feed_before_its_bad_signature_and_the_archive_imports(
        store: Store, tmp_path: Path, audited: bool) -> None:
    bad_feed = signed_over_bad(A, TIMES[:10], bad_seq=5)
    store.ingest(bad_feed + posts(B, TIMES[:6]), NOW_MS)
    assert store.head(A.public_key).seq == 10  # seq 10's signature vouched for 1..9
    if audited:
        assert store.audit_all() == [(A.public_key, 5)]
    archive = tmp_path / "out.murexp"
    report = export_archive(store, archive)
    # Before the audit, export finds the bad entry itself; after it, the store has cut the feed.
    assert report.cut == (() if audited else ((A.public_key, 5),))
    assert report.feeds == 2 and report.entries == 4 + 6
    assert held(archive) == {A.public_key: [1, 2, 3, 4], B.public_key: [1, 2, 3, 4, 5, 6]}
    with Store(tmp_path / "fresh") as fresh:
        imported = import_archive(fresh, archive, NOW_MS)
        assert imported.refused_feeds == () and imported.appended == 10
        assert fresh.head(A.public_key).seq == 4 and fresh.head(B.public_key).seq == 6


def test_export_of_audited_good_feeds_is_whole(store: Store, tmp_path: Path) -> None:
    store.ingest(posts(A, TIMES[:10]) + posts(B, TIMES[:3]), NOW_MS)
    assert store.audit_all() == []
    report = export_archive(store, tmp_path / "out.murexp")
    assert report.cut == () and report.entries == 13


def test_import_takes_the_good_feeds_of_an_archive_with_one_bad_feed(store: Store, tmp_path: Path) -> None:
    archive = tmp_path / "mixed.murexp"
    write_archive(archive, posts(A, TIMES[:3]) + signed_over_bad(B, TIMES[:6], bad_seq=2) + posts(C, TIMES[:4]))
    report = import_archive(store, archive, NOW_MS)
    assert [author for author, _ in report.refused_feeds] == [B.public_key]
    assert "entry 2 of" in report.refused_feeds[0][1] and "bad signature" in report.refused_feeds[0][1]
    assert report.appended == 3 + 4 and report.entries == 3 + 6 + 4 and report.feeds == 3
    assert store.head(A.public_key).seq == 3 and store.head(C.public_key).seq == 4
    assert store.head(B.public_key) is None  # nothing of a refused feed, not even its good start
    assert store.unaudited_count() == 0 or store.audit_all() == []


def test_import_refuses_a_feed_out_of_order_and_keeps_the_others(store: Store, tmp_path: Path) -> None:
    archive = tmp_path / "order.murexp"
    a = posts(A, TIMES[:4])
    write_archive(archive, [a[0], a[2], a[1], a[3]] + posts(C, TIMES[:2]))
    report = import_archive(store, archive, NOW_MS)
    assert [(author, "out of order" in why) for author, why in report.refused_feeds] == [(A.public_key, True)]
    assert store.head(A.public_key) is None and store.head(C.public_key).seq == 2


def test_a_damaged_file_is_still_refused_whole(store: Store, tmp_path: Path) -> None:
    archive = tmp_path / "damaged.murexp"
    write_archive(archive, posts(A, TIMES[:3]))
    data = bytearray(archive.read_bytes())
    data[-1] ^= 0x01
    archive.write_bytes(bytes(data))
    with pytest.raises(ArchiveError, match="nothing imported"):
        import_archive(store, archive, NOW_MS)
    assert store.head(A.public_key) is None


def test_a_feed_whose_chain_breaks_in_the_file_is_refused_and_the_others_kept(store: Store, tmp_path: Path) -> None:
    archive = tmp_path / "broken.murexp"
    a = posts(A, TIMES[:3])
    stranger = posts(A, TIMES[5:7], label="other ")  # seq 1, 2 of another history of A
    write_archive(archive, [a[0], a[1], *posts(A, TIMES[10:11], after=stranger[1])] + posts(C, TIMES[:2]))
    report = import_archive(store, archive, NOW_MS)
    assert [author for author, _ in report.refused_feeds] == [A.public_key]
    assert store.head(A.public_key) is None and store.head(C.public_key).seq == 2


def test_the_command_line_imports_the_good_feeds_and_names_the_refused_one(tmp_path: Path) -> None:
    import io

    from murmurate.crypto import encode_id
    from murmurate.ui.cli import main

    env = {"MURMURATE_INSECURE_FAST_KDF": "1", "MURMURATE_PASSPHRASE": "pw"}

    def run(*args: str) -> tuple[int, str]:
        out = io.StringIO()
        code = main(["--home", str(tmp_path / "home"), *args], stdout=out, stderr=io.StringIO(), env=env)
        return code, out.getvalue()

    assert run("init")[0] == 0
    archive = tmp_path / "mixed.murexp"
    write_archive(archive, posts(A, TIMES[:3]) + signed_over_bad(B, TIMES[:4], bad_seq=3))
    code, out = run("import", str(archive))
    assert code == 1
    assert "3 new" in out and f"feed refused, nothing of it imported: entry 3 of {encode_id(B.public_key)}: bad signature" in out
