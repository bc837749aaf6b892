"""Storage caps: how much of other authors' feeds a node stores. Pure (sizes in, decisions out).

A followed author can fill a node's disk as fast as the network carries entries (the issue
saw 65 MB/s), so ingest stops each feed at `max_feed_entries` / `max_feed_bytes` (never the
node's own feed) and the node as a whole at a size below its LMDB map and the free disk.
An entry refused here is no fault of the peer that sent it: it is reported with
Reason.FEED_CAP or Reason.NODE_CAP, which the replicator never bans for.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from murmurate.store import Entry, Reason, entry_frame_size

MIB = 1 << 20
# The store takes more than an entry's frame: its log record, the seq and time indexes,
# hashtags and mentions. Twice the frame is a safe guess for the node cap's arithmetic.
STORE_OVERHEAD = 2


@dataclass(frozen=True)
class Usage:
    """A feed as stored (entries = its contiguous head), or what a quota counts for a user."""

    entries: int = 0
    bytes: int = 0


@dataclass(frozen=True)
class StorageCaps:
    max_feed_entries: int = 1_000_000      # entries of one other author's feed
    max_feed_bytes: int = 512 * MIB        # bytes (entry frames) of one other author's feed
    max_store_bytes: int = 0               # the whole store; 0: only the map and the disk bound it
    map_reserve_bytes: int = 64 * MIB      # kept free in the LMDB map (own posts, indexes, settings)
    min_free_disk_bytes: int = 512 * MIB   # kept free on the disk


@dataclass(frozen=True)
class Refusal:
    author: bytes
    seq: int
    reason: Reason
    message: str


def node_room(used: int, map_size: int, free_disk: int, caps: StorageCaps) -> int:
    """Bytes the store may still grow by for other authors' entries (<= 0: none)."""
    limit = map_size - caps.map_reserve_bytes
    if caps.max_store_bytes:
        limit = min(limit, caps.max_store_bytes)
    return min(limit - used, free_disk - caps.min_free_disk_bytes)


def fit(entries: Sequence[Entry], feeds: Mapping[bytes, Usage], caps: StorageCaps, room: int,
        own: bytes | None) -> tuple[list[Entry], list[Refusal]]:
    """Keep what fits the caps. `feeds`: each author's stored size (entries at or below its
    count are duplicates and pass); `room`: node_room. The node's own entries always pass.
    A feed is a chain: after its first refused entry the rest of it in the batch is refused."""
    kept: list[Entry] = []
    refused: list[Refusal] = []
    after = dict(feeds)
    stopped: dict[bytes, Refusal] = {}
    spent = 0
    for item in entries:
        env = item.envelope
        author = env.author
        if author == own:
            kept.append(item)
            continue
        if author in stopped:
            first = stopped[author]
            refused.append(Refusal(author, env.seq, first.reason, first.message))
            continue
        now = after.get(author, Usage())
        if env.seq <= now.entries:
            kept.append(item)  # a duplicate or a fork: costs nothing new
            continue
        size = entry_frame_size(item)
        grown = Usage(now.entries + 1, now.bytes + size)
        why = None
        if grown.entries > caps.max_feed_entries:
            why = Refusal(author, env.seq, Reason.FEED_CAP,
                          f"this feed holds {now.entries} entries, the most this node stores of another author's feed")
        elif grown.bytes > caps.max_feed_bytes:
            why = Refusal(author, env.seq, Reason.FEED_CAP,
                          f"this feed holds {now.bytes} bytes; this node stores at most "
                          f"{caps.max_feed_bytes} of another author's feed")
        elif spent + size * STORE_OVERHEAD > room:
            why = Refusal(author, env.seq, Reason.NODE_CAP,
                          "this node's store is full (its configured size, its map or the free disk): "
                          "it takes no more of other authors' entries")
        if why is not None:
            stopped[author] = why
            refused.append(why)
            continue
        spent += size * STORE_OVERHEAD
        after[author] = grown
        kept.append(item)
    return kept, refused
