"""Bad files and calls get clear errors, never tracebacks (issue 11, point 7): archives,
config files, attachments, post references, and local API connections that hold input."""

from __future__ import annotations

import hashlib
import socket
import struct
from pathlib import Path

import pytest
import trio

from murmurate.crypto import SigningIdentity, encode_id
from murmurate.node import media
from murmurate.node.core.views import parse_ref
from murmurate.node.errors import UsageError
from murmurate.node.home import Home, parse_config
from murmurate.node.writer import StoreWriter
from murmurate.store import Store
from murmurate.store.archive import MAGIC, check_archive
from murmurate.store.entry import MAX_SEQ, PayloadType, create_entry, encode_frame
from murmurate.store.errors import ArchiveError

T0 = 1_700_000_000_000


def _archive(frames: list[bytes]) -> bytes:
    body = MAGIC + b"".join(struct.pack(">I", len(f)) + f for f in frames) + struct.pack(">I", 0)
    return body + hashlib.blake2b(body, digest_size=32).digest()


def _feed(n: int) -> list[bytes]:
    me = SigningIdentity(bytes([7]) * 32)
    frames, prev = [], None
    for seq in range(1, n + 1):
        entry = create_entry(me, seq=seq, prev=prev, timestamp_ms=T0 + seq, payload_type=PayloadType.POST,
                             payload={"text": f"post {seq}"})
        prev = entry.envelope.hash
        frames.append(encode_frame(entry))
    return frames


# -- archives -------------------------------------------------------------------------------

@pytest.mark.parametrize("order", [[0, 1, 1, 2], [0, 0], [0, 1, 2, 1], [0, 2, 1]])
def test_an_archive_with_a_repeated_or_misplaced_frame_is_an_archive_error(tmp_path: Path, order: list[int]) -> None:
    frames = _feed(3)
    path = tmp_path / "a.murexp"
    path.write_bytes(_archive([frames[i] for i in order]))
    with pytest.raises(ArchiveError, match="out of order"):
        check_archive(path, T0 + 10_000)


def test_the_smallest_archive_is_44_bytes_and_holds_nothing(tmp_path: Path) -> None:
    path = tmp_path / "empty.murexp"
    path.write_bytes(_archive([]))
    assert len(path.read_bytes()) == 44
    assert check_archive(path, T0) == (0, 0)
    path.write_bytes(_archive([])[:-1])
    with pytest.raises(ArchiveError, match="truncated"):
        check_archive(path, T0)


# -- config.toml ----------------------------------------------------------------------------

BAD_CONFIGS = {
    "section is an int": b"post = 5\n",
    "section is an array of tables": b"[[post]]\nmax_chars = 5\n",
    "store is a string": b'store = "big"\n',
    "value is a table": b"[post.max_chars]\nx = 1\n",
    "deep nesting": b"x = " + b"[" * 5000 + b"]" * 5000 + b"\n",
    "deep inline tables": b"x = " + b"{a = " * 3000 + b"1" + b"}" * 3000 + b"\n",
    "invalid UTF-8": b'[post]\n# caf\xe9\nmax_chars = 100\n',
    "bool is not an int": b"[post]\nmax_chars = true\n",
    "not TOML": b"[post\n",
}


@pytest.mark.parametrize("name", sorted(BAD_CONFIGS))
def test_a_bad_config_file_is_a_usage_error_naming_the_file(tmp_path: Path, name: str) -> None:
    home = Home(tmp_path, tmp_path / "config.toml")
    home.config_file.write_bytes(BAD_CONFIGS[name])
    with pytest.raises(UsageError, match="config.toml"):
        home.load_config()


def test_a_config_file_that_never_ends_is_refused(tmp_path: Path) -> None:
    home = Home(tmp_path, Path("/dev/zero"))
    with pytest.raises(UsageError, match="/dev/zero"):
        home.load_config()


def test_a_good_config_still_reads() -> None:
    assert parse_config({"post": {"max_chars": 42}, "store": {"map_size_mb": 10}}, "x").max_post_chars == 42


# -- attach ---------------------------------------------------------------------------------

@pytest.mark.parametrize("path", ["/dev/zero", "/dev/urandom", "/"])
async def test_attaching_a_file_that_is_not_a_regular_file_is_refused_at_once(tmp_path: Path, path: str) -> None:
    store = Store(tmp_path / "store", map_size=64 << 20)
    try:
        writer = StoreWriter(store)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            with trio.fail_after(10):  # the bug read /dev/zero forever
                with pytest.raises(UsageError, match="regular file"):
                    await media.attach(writer, path)
            nursery.cancel_scope.cancel()
    finally:
        store.close()


async def test_attaching_a_file_that_grows_past_the_cap_is_refused(tmp_path: Path, monkeypatch) -> None:
    """A file whose size changes under us (a log being written) is read with a cap."""
    monkeypatch.setattr(media, "MAX_BLOB_SIZE", 100)
    source = tmp_path / "growing"
    source.write_bytes(b"x" * 50)
    real_stat = Path.stat

    def lying_stat(self: Path, *a, **k):
        st = real_stat(self, *a, **k)
        if self == source:
            source.write_bytes(b"x" * 500)  # grows between the stat and the read
        return st
    monkeypatch.setattr(Path, "stat", lying_stat)
    store = Store(tmp_path / "store", map_size=64 << 20)
    try:
        writer = StoreWriter(store)
        async with trio.open_nursery() as nursery:
            await nursery.start(writer.run)
            with pytest.raises(UsageError, match="at most 100 bytes"):
                await media.attach(writer, str(source))
            nursery.cancel_scope.cancel()
    finally:
        store.close()


# -- post references ------------------------------------------------------------------------

ALICE = encode_id(SigningIdentity(bytes([1]) * 32).public_key)


@pytest.mark.parametrize("seq", [str(2**64), "9" * 5000, "²", "١٢", "0", "-1", "+1", " 1"])
def test_a_ref_with_a_seq_out_of_range_or_not_ascii_digits_is_a_usage_error(seq: str) -> None:
    with pytest.raises(UsageError):
        parse_ref(f"{ALICE}/{seq}")


def test_the_largest_seqs_are_valid_refs() -> None:
    """Up to 2^64 - 1: a stored payload may name such a ref, and views write it back as text."""
    assert parse_ref(f"{ALICE}/{MAX_SEQ}").seq == MAX_SEQ
    assert parse_ref(f"{ALICE}/{2**64 - 1}").seq == 2**64 - 1


# -- local API connections ------------------------------------------------------------------

def _rss_anon_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("RssAnon:"):
            return int(line.split()[1])
    raise AssertionError("no RssAnon")


@pytest.mark.network
def test_many_connections_holding_partial_lines_do_not_grow_the_daemon_without_bound(tmp_path: Path) -> None:
    """500 connections each sending 1 MB of a line that never ends held 614 MB: now each
    connection and the daemon as a whole have a cap, and the daemon keeps answering."""
    from daemons import DaemonProcess
    from test_social_hostile import _socket_path
    node = DaemonProcess(tmp_path, "held").init().start()
    conns: list[socket.socket] = []
    try:
        assert node.call("ping") == "pong"
        assert node.proc is not None
        before = _rss_anon_kib(node.proc.pid)
        chunk = b'{"jsonrpc":"2.0","id":1,"method":"ping","params":{"x":"' + b"a" * 1_000_000
        path = str(_socket_path(node))
        refused = 0
        for _ in range(500):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.settimeout(30)
            conns.append(s)
            try:
                s.connect(path)
                s.sendall(chunk)  # returns once the daemon has read all but a socket buffer of it
            except (BrokenPipeError, ConnectionResetError, ConnectionRefusedError):
                refused += 1
        assert node.call("ping") == "pong"
        grown_mib = (_rss_anon_kib(node.proc.pid) - before) / 1024
        print(f"RssAnon grew by {grown_mib:.1f} MiB with 500 connections of 1 MB partial lines; {refused} refused")
        assert grown_mib < 64, f"RssAnon grew by {grown_mib:.0f} MiB"
        assert refused > 0
    finally:
        for s in conns:
            s.close()
        node.stop()
        node.close()


@pytest.mark.parametrize("data", [b"data_dir = '/x'\n# caf\xe9\n", b"x = " + b"[" * 5000 + b"]" * 5000])
def test_a_bad_relay_config_is_a_relay_config_error(tmp_path: Path, data: bytes) -> None:
    from murmurate.node.relay.config import RelayConfigError, load_relay_config
    path = tmp_path / "relay.toml"
    path.write_bytes(data)
    with pytest.raises(RelayConfigError, match="relay.toml"):
        load_relay_config(path)


# -- the blob protocol ----------------------------------------------------------------------

@pytest.mark.parametrize("start", [2**32, 2**64 - 1, True])
def test_a_blob_request_from_a_chunk_past_any_blob_is_refused_not_raised(start: int) -> None:
    """`from` >= 2^32 overflowed the store's chunk key inside the handler (found by
    tests/test_fuzz_blob.py): the server now resets the stream."""
    from murmurate.node.core import framing
    from murmurate.store import canonical
    from test_fuzz_blob import BLOB, PlayedStream, _run, store as store_fixture
    held = store_fixture.__wrapped__()
    store = next(held)
    try:
        stream = PlayedStream([framing.encode(canonical.pack({"t": "get", "hash": BLOB, "from": start}))])
        _run(store, lambda writer: media.serve_blob(writer, stream))
        assert stream.was_reset and not stream.written
    finally:
        next(held, None)


# -- special files as archives and destinations ---------------------------------------------

def test_importing_a_fifo_or_a_device_is_refused_without_blocking(tmp_path: Path) -> None:
    """Opening a FIFO for reading waits for a writer: the import would hang the daemon's
    writer forever."""
    import os
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    for path in (fifo, Path("/dev/zero"), tmp_path):
        with pytest.raises(ArchiveError, match="not a regular file"):
            check_archive(path, T0)


def test_export_and_blob_save_never_replace_a_special_file(tmp_path: Path) -> None:
    """Run as root, the rename of export (and of saving a blob) put a file where /dev/zero
    was (the API fuzz test did it once, with "/dev/zero" among its paths)."""
    import os
    from murmurate.store.archive import export_archive
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    store = Store(tmp_path / "store", map_size=64 << 20)
    try:
        with pytest.raises(ArchiveError, match="not a regular file"):
            export_archive(store, fifo)
        assert fifo.is_fifo()

        async def save() -> None:
            await media.save_blob(StoreWriter(store), hashlib.blake2b(b"", digest_size=32).digest(), str(fifo))
        with pytest.raises(UsageError, match="not a regular file"):
            trio.run(save)
    finally:
        store.close()
    assert fifo.is_fifo()
