"""The simulator's model of entries and of a node's store: the feed rules of
store/feed.py and the refusal reasons of store/errors.py, without bytes or signatures."""

from __future__ import annotations

from dataclasses import dataclass, field

from murmurate.store import Reason


@dataclass(frozen=True)
class SimEntry:
    author: int
    seq: int
    prev: tuple | None  # the hash of entry seq - 1
    branch: str = ""    # a forked author's entries differ by branch
    signed: bool = True  # False: a forger made it up (its signature would not verify)

    @property
    def hash(self) -> tuple:
        return (self.author, self.seq, self.branch, self.signed)


@dataclass
class SimStore:
    """What a node holds. ingest() follows the store's rules: bad signature refused; the next
    entry appended if it chains onto the head, else a fork (also for wrong_prev, as the
    store reports it); beyond a gap held; a duplicate ignored; a forked feed frozen."""

    feeds: dict[int, list[SimEntry]] = field(default_factory=dict)
    held: dict[int, dict[int, SimEntry]] = field(default_factory=dict)
    frozen: set[int] = field(default_factory=set)
    forks: list[tuple[SimEntry, SimEntry]] = field(default_factory=list)

    def head(self, author: int) -> int:
        return len(self.feeds.get(author, ()))

    def entries_after(self, author: int, have: int) -> list[SimEntry]:
        return list(self.feeds.get(author, ())[have:])

    def ingest(self, entries: list[SimEntry]) -> tuple[list[SimEntry], list[tuple[int, int, Reason]]]:
        appended: list[SimEntry] = []
        rejected: list[tuple[int, int, Reason]] = []
        for e in entries:
            if not e.signed:
                rejected.append((e.author, e.seq, Reason.BAD_SIGNATURE))
                continue
            if e.author in self.frozen:
                rejected.append((e.author, e.seq, Reason.FEED_FROZEN))
                continue
            feed = self.feeds.setdefault(e.author, [])
            if e.seq <= len(feed):
                if feed[e.seq - 1].hash != e.hash:
                    self._fork(feed[e.seq - 1], e, rejected)
                continue
            if e.seq > len(feed) + 1:
                self.held.setdefault(e.author, {})[e.seq] = e
                continue
            if feed and feed[-1].hash != e.prev:
                self._fork(feed[-1], e, rejected)
                continue
            feed.append(e)
            appended.append(e)
            held = self.held.get(e.author, {})
            while len(feed) + 1 in held:
                nxt = held.pop(len(feed) + 1)
                if nxt.prev != feed[-1].hash:
                    self._fork(feed[-1], nxt, rejected)
                    break
                feed.append(nxt)
                appended.append(nxt)
        return appended, rejected

    def _fork(self, kept: SimEntry, refused: SimEntry, rejected: list) -> None:
        self.frozen.add(kept.author)
        self.forks.append((kept, refused))
        rejected.append((refused.author, refused.seq, Reason.FORK))
