"""Killing the process mid-ingest loses at most the batch in flight and never damages the store.

A child process ingests 100,000 signed entries (1,000 authors x 100) in batches of 1,000 and
reports each committed batch on stdout. The parent reads those reports (with a deadline),
SIGKILLs the child at a random batch, reopens the store and checks it; it does so three
times, each child resuming after the last reported batch, then ingests everything again
and checks that the store is complete.
"""

from __future__ import annotations

import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from helpers.crash_feeds import author, feed, feed_by_create_entry, split_frames
from murmurate.store import Store, decode_frame

AUTHORS, PER_AUTHOR, BATCH = 1_000, 100, 1_000
TOTAL = AUTHORS * PER_AUTHOR
HELPERS = Path(__file__).parent / "helpers"
DEADLINE_S = 120  # per child; a healthy run takes a few seconds


@pytest.fixture(scope="module")
def crash_data(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[bytes, list[bytes]]]:
    """The frames file the children read, and each author's frames in seq order."""
    assert list(feed(3, 12)) == list(feed_by_create_entry(3, 12))
    folder = tmp_path_factory.mktemp("crash-feeds")
    workers = max(1, min(4, os.cpu_count() or 1))
    share = -(-AUTHORS // workers)
    parts, procs = [], []
    for w in range(workers):  # signing 100,000 entries: one process per core
        part = folder / f"part{w}"
        first, count = w * share, min(share, AUTHORS - w * share)
        procs.append(subprocess.Popen([sys.executable, str(HELPERS / "crash_feeds.py"), str(part),
                                       str(first), str(count), str(PER_AUTHOR)]))
        parts.append(part)
    try:
        for proc in procs:
            assert proc.wait(timeout=DEADLINE_S) == 0
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    frames = [f for part in parts for f in split_frames(part.read_bytes())]
    assert len(frames) == TOTAL
    by_author = {author(n).public_key: frames[n * PER_AUTHOR:(n + 1) * PER_AUTHOR] for n in range(AUTHORS)}
    # Seq-major order, shuffled two rounds at a time: some entries come before the one they
    # follow, in the same batch or an earlier one, so held entries cross commits and kills.
    rng = random.Random(20240601)
    order: list[bytes] = []
    for r in range(0, PER_AUTHOR, 2):
        window = [frames[n * PER_AUTHOR + s] for n in range(AUTHORS) for s in (r, r + 1)]
        rng.shuffle(window)
        order += window
    path = folder / "frames"
    path.write_bytes(b"".join(len(f).to_bytes(4, "big") + f for f in order))
    return path, by_author


class Child:
    """One ingesting child; `reports()` yields its per-batch lines until a deadline."""

    def __init__(self, store: Path, frames: Path, first_batch: int, log: Path) -> None:
        self.log = log
        with log.open("wb") as err:
            self.proc = subprocess.Popen(
                [sys.executable, str(HELPERS / "crash_child.py"), str(store), str(frames), str(BATCH),
                 str(first_batch)], stdout=subprocess.PIPE, stderr=err)
        self.lines: queue.Queue[bytes | None] = queue.Queue()
        self.pump = threading.Thread(target=self._pump, daemon=True)
        self.pump.start()
        self.deadline = time.monotonic() + DEADLINE_S

    def _pump(self) -> None:
        assert self.proc.stdout is not None
        with self.proc.stdout:
            for line in self.proc.stdout:
                self.lines.put(line)
        self.lines.put(None)

    def next_line(self) -> list[str] | None:
        """The next report, or None at the end of the child's output."""
        try:
            line = self.lines.get(timeout=max(0.0, self.deadline - time.monotonic()))
        except queue.Empty:
            self.proc.kill()
            raise AssertionError(f"child silent past the deadline; stderr: {self.log.read_text()}") from None
        return line.decode().split() if line is not None else None

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.wait()

    def wait(self) -> int:
        code = self.proc.wait(timeout=DEADLINE_S)
        self.pump.join(timeout=DEADLINE_S)  # the pipe ends with the process
        return code


def check_after_kill(path: Path, by_author: dict[bytes, list[bytes]], reported: int, where: str) -> int:
    """The reopened store verifies, heads match their entries, nothing reported is lost."""
    with Store(path) as s:
        assert s.verify() == [], where
        count = s.count_entries()
        assert count >= reported, where
        below_heads = 0
        for info in s.feeds():
            assert not info.forked, where
            if info.head is None:
                assert info.held > 0, where  # a feed record exists only for what was stored
                continue
            last = decode_frame(by_author[info.author][info.head.seq - 1]).envelope
            assert (info.head.hash, info.head.timestamp_ms) == (last.hash, last.timestamp_ms), where
            assert s.get(info.author, info.head.seq).envelope.raw == last.raw, where
            assert s.get(info.author, info.head.seq + 1) is None, where
            below_heads += info.head.seq
        assert below_heads == count, f"{where}: log records that no head accounts for"
    return count


@pytest.mark.slow
def test_sigkill_mid_ingest_loses_nothing_committed(crash_data: tuple[Path, dict[bytes, list[bytes]]],
                                                    tmp_path: Path) -> None:
    frames, by_author = crash_data
    seed = random.randrange(2**32)
    rng = random.Random(seed)
    store = tmp_path / "store"
    next_batch = reported = 0
    for kill in range(3):
        stop_after = rng.randint(1, 6)
        where = f"seed {seed}, kill {kill} after batch {next_batch + stop_after - 1}"
        child = Child(store, frames, next_batch, tmp_path / f"child{kill}.err")
        try:
            for i in range(stop_after):
                line = child.next_line()
                assert line is not None and int(line[0]) == next_batch + i, (where, line)
                reported += int(line[1])
                assert line[3] == "0", (where, line)  # nothing refused
        finally:
            child.kill()
        assert child.proc.returncode == -signal.SIGKILL, where  # killed mid-run, not finished
        next_batch += stop_after
        count = check_after_kill(store, by_author, reported, where)
        assert count < TOTAL, where

    # Ingesting everything again completes the store exactly.
    child = Child(store, frames, 0, tmp_path / "final.err")
    lines = []
    while (line := child.next_line()) is not None:
        lines.append(line)
    assert child.wait() == 0, (tmp_path / "final.err").read_text()
    assert lines[-1] == ["done"] and len(lines) == TOTAL // BATCH + 1
    assert all(line[3] == "0" for line in lines[:-1])
    with Store(store) as s:
        assert s.count_entries() == TOTAL
        infos = {info.author: info for info in s.feeds()}
        assert len(infos) == AUTHORS
        for n in range(AUTHORS):
            key = author(n).public_key
            last = decode_frame(by_author[key][-1]).envelope
            info = infos[key]
            assert (info.head.seq, info.head.hash, info.held, info.forked) == (PER_AUTHOR, last.hash, 0, False)
        assert s.follows(author(7).public_key) == [author(8).public_key]
