"""Export archives: a portable, self-checking file of the feeds a node holds.

Layout (docs/protocol.md, "Export archive"):

    magic   8 bytes  b"MUREXP1\\n"
    frames           u32 length (1..MAX_FRAME) | entry frame (canonical msgpack [envelope, payload|nil])
    end              u32 0 | BLAKE2b-256 of every byte before these 32

Entries are ordered by author, then seq. Importing reads the file twice: the first pass
checks everything (framing, checksum, every signature and payload, each feed's chain
within the file) and stores nothing; then the feeds that passed are ingested, through the
same checks as entries from the network. A damaged file (framing, checksum) is refused
whole; a feed with a bad entry (signature, payload, order, timestamp) is refused on its
own and named in the report, and the archive's other feeds are imported.

Export never writes an entry whose signature is bad: a store may hold entries a later
signature vouched for whose own signatures wait for the audit (store/audit.py). While any
wait, or when the audit found a bad one in a feed, that feed's signatures are checked as
it is written and the feed is written only up to its first bad entry (ExportReport.cut).
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from collections.abc import Callable, Iterator
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
    cut: tuple[tuple[bytes, int], ...] = ()  # (author, seq): written up to seq - 1, seq's signature is bad


@dataclass(frozen=True)
class ImportReport:
    feeds: int
    entries: int
    appended: int
    duplicates: int
    refused: int
    forks: int
    refused_feeds: tuple[tuple[bytes, str], ...] = ()  # (author, why): none of its entries imported


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
    cut: list[tuple[bytes, int]] = []
    try:
        with open(tmp, "wb") as out:
            def emit(chunk: bytes) -> None:
                digest.update(chunk)
                out.write(chunk)

            emit(MAGIC)
            infos = store.feeds()
            # Read after the feeds: if nothing waits now, every entry up to those heads was
            # audited, and a bad one has marked its feed (settle does both in one transaction).
            waiting = store.unaudited_count() > 0
            for info in infos:
                if info.head is None:
                    continue
                now = store.feed_info(info.author)
                check = waiting or (now is not None and now.bad_signature)
                written, bad_seq = _export_feed(store, info.author, info.head.seq, check, emit)
                if written:
                    feeds += 1
                entries += written
                if bad_seq is not None:
                    cut.append((info.author, bad_seq))
            emit(_LEN.pack(0))
            out.write(digest.digest())
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return ExportReport(feeds, entries, path.stat().st_size, tuple(cut))


def _export_feed(store: StoreView, author: bytes, head_seq: int, check: bool,
                 emit: Callable[[bytes], None]) -> tuple[int, int | None]:
    """Write one feed's entries 1..head_seq; with `check`, verify each batch's signatures
    first and stop before the first bad one. Returns (entries written, bad seq or None)."""
    written = 0
    for seq_from in range(1, head_seq + 1, _BATCH):
        batch = [s.entry for s in store.entries(author, from_seq=seq_from, to_seq=seq_from + _BATCH - 1)]
        verdicts = verify_signatures([e.envelope for e in batch]) if check else [True] * len(batch)
        for item, good in zip(batch, verdicts):
            if not good:
                return written, item.envelope.seq
            frame = entry_format.encode_frame(item)
            emit(_LEN.pack(len(frame)) + frame)
            written += 1
    return written, None


@dataclass(frozen=True)
class ArchiveCheck:
    feeds: int      # feeds in the file
    entries: int    # entries in the file
    refused: dict[bytes, str]  # author -> why that feed is refused (first bad entry)


def check_archive(path: str | Path, now_ms: int) -> ArchiveCheck:
    """Check a whole archive without storing anything.

    Raises ArchiveError saying what is wrong and where if the file itself is damaged; a
    feed with a bad entry is listed in `refused` (the other feeds can still be imported).
    """
    try:
        return _check(path, now_ms)
    except ArchiveError as e:
        raise ArchiveError(f"{e}; nothing imported") from None


def _check(path: str | Path, now_ms: int) -> ArchiveCheck:
    heads: dict[bytes, FeedHead] = {}
    refused: dict[bytes, str] = {}
    count = 0
    batch: list[Entry] = []

    def flush() -> None:
        for item, ok in zip(batch, verify_signatures([e.envelope for e in batch])):
            if not ok:
                refused.setdefault(item.envelope.author, f"{_name(item)}: bad signature")
        batch.clear()

    for item in _frames(path):
        env = item.envelope
        count += 1
        if env.author in refused:
            continue
        try:
            entry_format.check_timestamp(env, now_ms)
            if item.payload is not None:
                entry_format.check_payload(env, item.payload)
            # Each feed's entries come from seq 1 up without gaps or repeats: a repeated
            # frame is a seq at or below the head, which place() cannot judge without the
            # stored hash, so it is refused here first.
            head = heads.get(env.author)
            expected = 1 if head is None else head.seq + 1
            # place raises on a wrong prev (refused as the feed's reason below)
            in_order = env.seq == expected and (head is None or place(head, env) is Placement.APPEND)
        except InvalidEntryError as e:
            refused[env.author] = f"{_name(item)}: {e}"
            continue
        if not in_order:
            refused[env.author] = f"{_name(item)}: entries out of order"
            continue
        heads[env.author] = FeedHead(env.seq, env.hash, env.timestamp_ms)
        batch.append(item)
        if len(batch) >= _BATCH:
            flush()
    flush()
    return ArchiveCheck(len(heads.keys() | refused.keys()), count, refused)


def import_archive(store: Store, path: str | Path, now_ms: int) -> ImportReport:
    """Check the whole archive, then ingest its good feeds. Raises ArchiveError (nothing
    stored) if the file is damaged; feeds with a bad entry are skipped and reported."""
    checked = check_archive(path, now_ms)
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
            if item.envelope.author in checked.refused:
                continue
            batch.append(item)
            if len(batch) >= _BATCH:
                flush()
    except ArchiveError as e:  # the file changed after it was checked
        raise ArchiveError(f"{e}; import stopped part way (what was stored is valid)") from None
    if batch:
        flush()
    return ImportReport(checked.feeds, checked.entries, appended, duplicates, refused, forks,
                        tuple(sorted(checked.refused.items())))


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
