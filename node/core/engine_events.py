"""What goes into the replication engine (events) and what comes out (actions), and whose
fault a refused entry is. Frozen records named as nouns; no I/O (node/core/engine.py).

Whose fault (docs/protocol.md 12.2, "Whose fault"):
- the **peer's**, when an honest peer could not have sent it: a frame or message that
  breaks the protocol, an entry that does not parse, a payload that does not match its
  envelope, a signature that fails with no stored entry of the author vouching for it
  (an honest peer checks every signature before it serves an entry, or holds it on the
  word of a later entry it also holds and serves with it). The peer is cut off and banned.
- the **author's**, when the author's own signatures prove it: two different entries at a
  seq, or an entry signed onto another entry than the one the node holds (wrong_prev: a
  fork seen from the next seq). Any peer may relay either in good faith, having seen only
  one history. The store keeps the proof and freezes the feed; the user is told (status,
  feed info, log); the peer is kept.
- **no one's**, for the rest: a duplicate, an entry held beyond a gap, a clock that
  disagrees (skew), a feed already frozen, too many held entries.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from murmurate.store import Reason


class Fault(Enum):
    PEER = "peer"
    AUTHOR = "author"
    NONE = "none"


PEER_FAULTS = frozenset({
    Reason.BAD_SIGNATURE, Reason.MALFORMED, Reason.NON_CANONICAL, Reason.TRAILING_BYTES,
    Reason.BAD_FIELD, Reason.ENVELOPE_TOO_LARGE, Reason.PAYLOAD_TOO_LARGE, Reason.PAYLOAD_HASH_MISMATCH,
    Reason.PAYLOAD_SIZE_MISMATCH, Reason.PAYLOAD_MALFORMED, Reason.PAYLOAD_NON_CANONICAL,
    Reason.UNSUPPORTED_VERSION,
})
# WRONG_PREV: the store reports a validly signed one as a fork; should one still come
# (the store names its reason), it is the author's doing as well.
AUTHOR_FAULTS = frozenset({Reason.FORK, Reason.WRONG_PREV})


def fault_of(reason: Reason) -> Fault:
    if reason in PEER_FAULTS:
        return Fault.PEER
    if reason in AUTHOR_FAULTS:
        return Fault.AUTHOR
    return Fault.NONE


class SyncOutcome(Enum):
    COMPLETED = "completed"   # a catch-up that was not live ended as it should
    LIVE_ENDED = "live_ended"  # the peer ended a live stream (it fell behind, or is going)
    FAILED = "failed"         # the network, a time-out or a refusal: try again soon
    CANCELLED = "cancelled"   # our feed set changed: start again at once
    MISBEHAVED = "misbehaved"  # the peer broke a rule (a PeerMisbehaviour came first)


# -- events ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class PeerAdded:
    peer_id: str
    addrs: tuple[str, ...]
    source: str


@dataclass(frozen=True)
class PeerConnected:
    peer_id: str


@dataclass(frozen=True)
class PeerDisconnected:
    peer_id: str


@dataclass(frozen=True)
class DialSucceeded:
    peer_id: str


@dataclass(frozen=True)
class DialFailed:
    peer_id: str
    error: str


@dataclass(frozen=True)
class SyncCaughtUp:
    """A sync with the peer stored what the peer had (`stored` entries); `live`: the stream
    stays open and carries new entries."""

    peer_id: str
    stored: int
    live: bool


@dataclass(frozen=True)
class SyncEnded:
    peer_id: str
    outcome: SyncOutcome
    stored: int = 0  # entries this sync stored in all


@dataclass(frozen=True)
class HeadsSeen:
    heads: tuple[tuple[bytes, int], ...]


@dataclass(frozen=True)
class GapSeen:
    """An entry from `peer_id` was held: the entries before it are missing."""

    peer_id: str
    author: bytes


@dataclass(frozen=True)
class GapFillEnded:
    peer_id: str
    author: bytes


@dataclass(frozen=True)
class FeedsChanged:
    pass


@dataclass(frozen=True)
class PeerMisbehaviour:
    """Something from `peer_id` was refused; `fault` says whose doing it was, `author` names
    the feed when it is the author's."""

    peer_id: str
    why: str
    fault: Fault
    author: bytes | None = None


@dataclass(frozen=True)
class FeedFrozen:
    """The node's own audit found an entry its author signed badly (store/audit.py): the
    store froze the feed; no peer is to blame for it."""

    author: bytes
    why: str


Event = (FeedFrozen | PeerAdded | PeerConnected | PeerDisconnected | DialSucceeded | DialFailed | SyncCaughtUp | SyncEnded
         | HeadsSeen | GapSeen | GapFillEnded | FeedsChanged | PeerMisbehaviour)


# -- actions --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Dial:
    peer_id: str
    addrs: tuple[str, ...]


@dataclass(frozen=True)
class StartSync:
    peer_id: str


@dataclass(frozen=True)
class Ban:
    """Refuse everything from the peer until `until` (the engine's clock)."""

    peer_id: str
    until: float
    why: str


@dataclass(frozen=True)
class Disconnect:
    peer_id: str


@dataclass(frozen=True)
class FetchGap:
    """Fetch what is missing of `author`'s feed from these peers in turn, until the held
    entries are reached."""

    peer_id: str
    author: bytes
    candidates: tuple[str, ...]


@dataclass(frozen=True)
class RestartLive:
    """End every live stream this node reads: they carry the old feed set."""


@dataclass(frozen=True)
class AuthorFlagged:
    """An author's own signatures prove a fork or a bad signature: the store froze the feed
    and kept the proof; tell the user. The peer that relayed it is kept."""

    author: bytes
    why: str
    peer_id: str


Action = Dial | StartSync | Ban | Disconnect | FetchGap | RestartLive | AuthorFlagged
