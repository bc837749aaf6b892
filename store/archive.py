"""Export archives: a portable, self-checking file of the feeds a node holds.

Layout (docs/protocol.md, "Export archive"):

    magic   8 bytes  b"MUREXP1\\n"
    frames           u32 length (1..MAX_FRAME) | entry frame (canonical msgpack [envelope, payload|nil])
    end              u32 0 | BLAKE2b-256 of every byte before these 32

Entries are ordered by author, then seq. Importing reads the file twice: the first pass
checks everything (framing, checksum, every signature and payload, each feed's chain
within the file) and stores nothing; only a file that passes is ingested, through the
same checks as entries from the network.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from murmurate.crypto import encode_id

from . import entry as entry_format
from .entry import MAX_ENVELOPE_SIZE, MAX_PAYLOAD_SIZE, Entry
from .errors import ArchiveError, InvalidEntryError
from .feed import FeedHead, Placement, place
from .lmdb_store import Store, StoreView
from .verify import verify_signatures

MAGIC = b"MUREXP1\n"
MAX_FRAME = MAX_ENVELOPE_SIZE + MAX_PAYLOAD_SIZE + 16
_LEN = struct.Struct(">I")
_BATCH = 2_000


@dataclass(frozen=True)
class ExportReport:
    feeds: int
    entries: int
    bytes: int


@dataclass(frozen=True)
class ImportReport:
    feeds: int
    entries: int
    appended: int
    duplicates: int
    refused: int
    forks: int


def export_archive(store: StoreView, path: str | Path) -> ExportReport:
    """Write every feed the store holds to `path` (atomically: temp file, fsync, rename)."""
    path = Path(path)
    # Only a new file or a regular one is replaced: run as root, the rename below would
    # otherwise put an archive where /dev/null was.
    if path.exists() and not path.is_file():
        raise ArchiveError(f"{path} exists and is not a regular file; export writes a file")
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    digest = hashlib.blake2b(digest_size=32)
    feeds = entries = 0
    try:
        with open(tmp, "wb") as out:
            def emit(chunk: bytes) -> None:
                digest.update(chunk)
                out.write(chunk)

            emit(MAGIC)
            for info in store.feeds():
                if info.head is None:
                    continue
                feeds += 1
                for seq_from in range(1, info.head.seq + 1, _BATCH):
                    for stored in store.entries(info.author, from_seq=seq_from, to_seq=seq_from + _BATCH - 1):
                        frame = entry_format.encode_frame(stored.entry)
                        emit(_LEN.pack(len(frame)) + frame)
                        entries += 1
            emit(_LEN.pack(0))
            out.write(digest.digest())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportReport(feeds, entries, path.stat().st_size)


def check_archive(path: str | Path, now_ms: int) -> tuple[int, int]:
    """Check a whole archive without storing anything. Returns (feeds, entries).

    Raises ArchiveError saying what is wrong and where.
    """
    try:
        return _check(path, now_ms)
    except ArchiveError as e:
        raise ArchiveError(f"{e}; nothing imported") from None


def _check(path: str | Path, now_ms: int) -> tuple[int, int]:
    heads: dict[bytes, FeedHead] = {}
    count = 0
    batch: list[Entry] = []

    def flush() -> None:
        for item, ok in zip(batch, verify_signatures([e.envelope for e in batch])):
            if not ok:
                raise ArchiveError(f"{_name(item)}: bad signature")
        batch.clear()

    for item in _frames(path):
        env = item.envelope
        try:
            entry_format.check_timestamp(env, now_ms)
            if item.payload is not None:
                entry_format.check_payload(env, item.payload)
            # Each feed's entries come from seq 1 up without gaps or repeats: a repeated
            # frame is a seq at or below the head, which place() cannot judge without the
            # stored hash, so it is refused here first.
            head = heads.get(env.author)
            expected = 1 if head is None else head.seq + 1
            if env.seq != expected or (head is not None and place(head, env) is not Placement.APPEND):
                raise ArchiveError(f"{_name(item)}: entries out of order")
        except InvalidEntryError as e:
            raise ArchiveError(f"{_name(item)}: {e}") from None
        heads[env.author] = FeedHead(env.seq, env.hash, env.timestamp_ms)
        batch.append(item)
        count += 1
        if len(batch) >= _BATCH:
            flush()
    flush()
    return len(heads), count


def import_archive(store: Store, path: str | Path, now_ms: int) -> ImportReport:
    """Check the whole archive, then ingest it. Raises ArchiveError (nothing stored)."""
    feeds, count = check_archive(path, now_ms)
    appended = duplicates = refused = forks = 0
    batch: list[Entry] = []

    def flush() -> None:
        nonlocal appended, duplicates, refused, forks
        report = store.ingest(batch, now_ms)
        appended += len(report.appended)
        duplicates += report.duplicates
        refused += len(report.rejected) - len(report.forks)
        forks += len(report.forks)
        batch.clear()

    try:
        for item in _frames(path):
            batch.append(item)
            if len(batch) >= _BATCH:
                flush()
    except ArchiveError as e:  # the file changed after it was checked
        raise ArchiveError(f"{e}; import stopped part way (what was stored is valid)") from None
    if batch:
        flush()
    return ImportReport(feeds, count, appended, duplicates, refused, forks)


def _frames(path: str | Path) -> Iterator[Entry]:
    """Yield the archive's entries; raise ArchiveError if it is truncated or damaged."""
    f = _open_regular(path)
    with f:
        digest = hashlib.blake2b(digest_size=32)
        magic = f.read(len(MAGIC))
        if magic != MAGIC:
            raise ArchiveError(f"{path} is not a Murmurate export file")
        digest.update(magic)
        index = 0
        while True:
            head = _read_exact(f, _LEN.size, path)
            digest.update(head)
            (length,) = _LEN.unpack(head)
            if length == 0:
                break
            if length > MAX_FRAME:
                raise ArchiveError(f"{path}: frame {index} claims {length} bytes (damaged file)")
            frame = _read_exact(f, length, path)
            digest.update(frame)
            try:
                yield entry_format.decode_frame(frame)
            except InvalidEntryError as e:
                raise ArchiveError(f"{path}: frame {index} is not a valid entry ({e})") from None
            index += 1
        check = _read_exact(f, 32, path)
        if check != digest.digest():
            raise ArchiveError(f"{path}: checksum does not match (damaged file)")
        if f.read(1):
            raise ArchiveError(f"{path}: bytes after the end of the archive (damaged file)")


def _open_regular(path: str | Path) -> BinaryIO:
    """Open a regular file for reading. Non-blocking, so a FIFO does not hang the open
    (and the writer thread with it); anything but a regular file (a FIFO, /dev/zero, a
    folder) is refused before a byte is read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise ArchiveError(f"cannot read {path}: {e.strerror}") from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ArchiveError(f"{path} is not a regular file")
    return os.fdopen(fd, "rb")


def _name(item: Entry) -> str:
    return f"entry {item.envelope.seq} of {encode_id(item.envelope.author)}"


def _read_exact(f: BinaryIO, n: int, path: str | Path) -> bytes:
    data = f.read(n)
    if len(data) != n:
        raise ArchiveError(f"{path} is truncated")
    return data
