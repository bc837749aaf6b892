"""The catch-up protocol `/murmurate/sync/1.0.0`. Pure: messages in, decisions out.

Over one stream, in frames (node/core/framing.py), each a canonical msgpack map:

    client -> server   {"t": "want", "feeds": [[author, have, upto|nil], ...]}   (+ "live": true)
    server -> client   {"t": "heads", "feeds": [[author, head_seq], ...]}   for wanted feeds it holds
                       {"t": "entries", "author": author, "frames": [entry frame, ...]}   ascending seq
                       ... more "entries" ...
                       {"t": "done"}
    (the client may send another "want" on the same stream; either side closes when done)
    server -> client   {"t": "error", "message": str}   instead of the rest, when it refuses

Live: a want with "live": true is the last the client sends on the stream. After its
"done" the server keeps the stream open and pushes "entries" of every feed wanted on the
stream as it stores them, each feed going on from where the stream left it; the client
sends nothing more and closes the stream to stop. This is how new entries travel to
connected peers without a GossipSub topic per feed (a relay hosts 10,000 feeds; py-libp2p
copes with about 1,000 topics).

The client names, per feed, the seq it has (`have`) and optionally the last seq it wants
(`upto`, for filling a gap seen in gossip). The server sends each feed's missing entries
in order, in batches of at most MAX_BATCH_ENTRIES entries and MAX_BATCH_BYTES bytes. Back-
pressure is the stream's: the server only writes as fast as the client reads, and the
client reads the next batch only after it has stored the last. A cut loses nothing: the
client asks again from what it stored.

ClientSession checks that the server sends only what was asked, in order; anything else
is a SyncProtocolError and the peer is cut off.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from murmurate.store import MAX_ENVELOPE_SIZE, MAX_PAYLOAD_SIZE, Entry, InvalidEntryError, decode_frame
from murmurate.store import canonical

PROTOCOL = "/murmurate/sync/1.0.0"
MAX_FEEDS_PER_WANT = 10_000
MAX_BATCH_ENTRIES = 500
MAX_BATCH_BYTES = 512 * 1024
# The largest frame either side accepts: a full batch plus msgpack overhead, or a want of
# MAX_FEEDS_PER_WANT feeds (about 50 bytes each).
MAX_MESSAGE_BYTES = MAX_BATCH_BYTES + MAX_ENVELOPE_SIZE + MAX_PAYLOAD_SIZE + 4096


class SyncProtocolError(Exception):
    """The remote side broke the sync protocol; cut it off."""


class SyncRefused(Exception):
    """The server answered with an `error` (it refuses to serve us): not a fault of the
    protocol, so not a reason to cut it off; its message says why."""


@dataclass(frozen=True)
class FeedWant:
    author: bytes
    have: int
    upto: int | None = None


@dataclass(frozen=True)
class Want:
    feeds: tuple[FeedWant, ...]
    live: bool = False


@dataclass(frozen=True)
class Heads:
    feeds: tuple[tuple[bytes, int], ...]


@dataclass(frozen=True)
class Entries:
    author: bytes
    frames: tuple[bytes, ...]


@dataclass(frozen=True)
class Done:
    pass


@dataclass(frozen=True)
class Error:
    message: str


Message = Want | Heads | Entries | Done | Error


def encode(message: Message) -> bytes:
    if isinstance(message, Want):
        body: dict[str, Any] = {"t": "want", "feeds": [[f.author, f.have, f.upto] for f in message.feeds]}
        if message.live:  # absent when false: a plain want is byte for byte what it always was
            body["live"] = True
        return canonical.pack(body)
    if isinstance(message, Heads):
        return canonical.pack({"t": "heads", "feeds": [[a, s] for a, s in message.feeds]})
    if isinstance(message, Entries):
        return canonical.pack({"t": "entries", "author": message.author, "frames": list(message.frames)})
    if isinstance(message, Done):
        return canonical.pack({"t": "done"})
    return canonical.pack({"t": "error", "message": message.message[:500]})


def decode(body: bytes) -> Message:
    """Parse one message. Raises SyncProtocolError for anything malformed."""
    if len(body) > MAX_MESSAGE_BYTES:
        raise SyncProtocolError(f"message of {len(body)} bytes is over the limit")
    try:
        value = canonical.unpack(body)
    except canonical.CanonicalError as e:
        raise SyncProtocolError(f"not canonical msgpack: {e}") from None
    if not isinstance(value, dict) or not isinstance(value.get("t"), str):
        raise SyncProtocolError("a message is a map with a string 't'")
    kind = value["t"]
    try:
        if kind == "want":
            feeds = value["feeds"]
            _require(isinstance(feeds, list) and len(feeds) <= MAX_FEEDS_PER_WANT, "want: too many feeds")
            wants = []
            for item in feeds:
                _require(isinstance(item, list) and len(item) == 3, "want: each feed is [author, have, upto]")
                author, have, upto = item
                _require(_is_key(author) and _is_uint(have) and (upto is None or (_is_uint(upto) and upto > have)),
                         "want: bad feed entry")
                wants.append(FeedWant(author, have, upto))
            live = value.get("live", False)
            _require(live is True or live is False, "want: live must be a bool")
            _require(not (live and any(f.upto is not None for f in wants)), "want: a live want has no upto")
            return Want(tuple(wants), live)
        if kind == "heads":
            feeds = value["feeds"]
            _require(isinstance(feeds, list) and len(feeds) <= MAX_FEEDS_PER_WANT, "heads: too many feeds")
            heads = []
            for item in feeds:
                _require(isinstance(item, list) and len(item) == 2 and _is_key(item[0]) and _is_uint(item[1]),
                         "heads: each feed is [author, seq]")
                heads.append((item[0], item[1]))
            return Heads(tuple(heads))
        if kind == "entries":
            author, frames = value["author"], value["frames"]
            _require(_is_key(author), "entries: author must be 32 bytes")
            _require(isinstance(frames, list) and 0 < len(frames) <= MAX_BATCH_ENTRIES
                     and all(isinstance(f, bytes) for f in frames), "entries: frames must be a list of bytes")
            return Entries(author, tuple(frames))
        if kind == "done":
            return Done()
        if kind == "error":
            return Error(str(value.get("message", ""))[:500])
    except KeyError as e:
        raise SyncProtocolError(f"{kind}: missing field {e}") from None
    raise SyncProtocolError(f"unknown message type {kind!r}")


def plan_serve(want: Want, heads: dict[bytes, int]) -> tuple[Heads, list[tuple[bytes, int, int]]]:
    """What a server sends for `want`, given its own feed heads: the heads message and the
    (author, from_seq, to_seq) ranges to stream, in the order asked."""
    answer = []
    ranges = []
    for feed in want.feeds:
        head = heads.get(feed.author)
        if head is None:
            continue
        answer.append((feed.author, head))
        last = head if feed.upto is None else min(head, feed.upto)
        if last > feed.have:
            ranges.append((feed.author, feed.have + 1, last))
    return Heads(tuple(answer)), ranges


def live_start(want: Want, heads: dict[bytes, int]) -> dict[bytes, int]:
    """Where a live stream stands per feed once `want` is served: the last seq the client
    has (what it had, or what was just sent)."""
    return {f.author: max(f.have, heads.get(f.author, 0)) for f in want.feeds}


def live_ranges(sent: dict[bytes, int], heads: dict[bytes, int]) -> list[tuple[bytes, int, int]]:
    """The (author, from_seq, to_seq) a live stream pushes now, given its feeds' current heads."""
    return [(a, sent[a] + 1, head) for a, head in heads.items() if a in sent and head > sent[a]]


class ClientSession:
    """The fetching side of one want: checks what the server sends against what was asked."""

    def __init__(self, want: Want) -> None:
        self.want = want
        self._next: dict[bytes, int] = {f.author: f.have + 1 for f in want.feeds}
        self._last: dict[bytes, int | None] = {f.author: f.upto for f in want.feeds}
        self.remote_heads: dict[bytes, int] | None = None
        self.done = False
        self.received = 0

    def on_message(self, message: Message) -> list[Entry]:
        """Take one server message; return the entries to store (in order).

        Raises SyncProtocolError if the server sends what was not asked, out of order, or
        entries that do not parse.
        """
        if self.done:
            raise SyncProtocolError("message after done")
        if isinstance(message, Error):
            raise SyncRefused(f"server refused: {message.message}")
        if isinstance(message, Heads):
            if self.remote_heads is not None:
                raise SyncProtocolError("heads sent twice")
            unknown = [a for a, _ in message.feeds if a not in self._next]
            if unknown:
                raise SyncProtocolError("heads for a feed that was not asked for")
            self.remote_heads = dict(message.feeds)
            return []
        if isinstance(message, Done):
            if self.remote_heads is None:
                raise SyncProtocolError("done before heads")
            self.done = True
            return []
        if isinstance(message, Entries):
            if self.remote_heads is None:
                raise SyncProtocolError("entries before heads")
            out = _take_entries(message, self._next, self._last, self.remote_heads)
            self.received += len(out)
            return out
        raise SyncProtocolError(f"unexpected {type(message).__name__} from the server")

    def next_seqs(self) -> dict[bytes, int]:
        return dict(self._next)


class LiveSession:
    """The fetching side after a live want's done: only entries of the feeds wanted on the
    stream, each feed going on in order from where the stream left it."""

    def __init__(self, next_seqs: dict[bytes, int]) -> None:
        self._next = dict(next_seqs)
        self._last: dict[bytes, int | None] = {}
        self.received = 0

    def on_message(self, message: Message) -> list[Entry]:
        if isinstance(message, Error):
            raise SyncRefused(f"server refused: {message.message}")
        if not isinstance(message, Entries):
            raise SyncProtocolError(f"{type(message).__name__} on a live stream (only entries may follow)")
        out = _take_entries(message, self._next, self._last, None)
        self.received += len(out)
        return out


def _take_entries(message: Entries, next_seq: dict[bytes, int], last_seq: dict[bytes, int | None],
                  heads: dict[bytes, int] | None) -> list[Entry]:
    author = message.author
    if author not in next_seq:
        raise SyncProtocolError("entries of a feed that was not asked for")
    expected = next_seq[author]
    last = last_seq.get(author)
    head = heads.get(author, 0) if heads is not None else None
    out = []
    for frame in message.frames:
        try:
            item = decode_frame(frame)
        except InvalidEntryError as e:
            raise SyncProtocolError(f"bad entry: {e}") from None
        if item.envelope.author != author or item.envelope.seq != expected:
            raise SyncProtocolError(f"expected entry {expected} of the feed, got {item.envelope.seq}")
        if last is not None and expected > last:
            raise SyncProtocolError("entries beyond what was asked")
        if head is not None and expected > head:
            raise SyncProtocolError("entries beyond the head the server announced")
        expected += 1
        out.append(item)
    next_seq[author] = expected
    return out


def batches(author: bytes, frames: list[bytes]) -> list[Entries]:
    """Split one feed's frames into messages within the batch limits."""
    out: list[Entries] = []
    current: list[bytes] = []
    size = 0
    for frame in frames:
        if current and (len(current) >= MAX_BATCH_ENTRIES or size + len(frame) > MAX_BATCH_BYTES):
            out.append(Entries(author, tuple(current)))
            current, size = [], 0
        current.append(frame)
        size += len(frame)
    if current:
        out.append(Entries(author, tuple(current)))
    return out


def _require(ok: bool, message: str) -> None:
    if not ok:
        raise SyncProtocolError(message)


def _is_key(v: Any) -> bool:
    return isinstance(v, bytes) and len(v) == 32


def _is_uint(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and v >= 0
