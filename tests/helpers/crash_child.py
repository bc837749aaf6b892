"""The process the crash test kills: ingest frames into a store, batch by batch.

    python crash_child.py STORE FRAMES BATCH_SIZE FIRST_BATCH

After each committed batch it prints "<batch index> <appended> <held> <rejected>" and
flushes, so the parent knows what is on disk; at the end it prints "done".
"""

from __future__ import annotations

import sys
from pathlib import Path

from crash_feeds import split_frames  # run as a script: this folder is on sys.path

from murmurate.store import Store, decode_frame

NOW_MS = 1_700_000_000_000


def main(store_path: str, frames_path: str, batch_size: int, first_batch: int) -> None:
    frames = split_frames(Path(frames_path).read_bytes())
    with Store(store_path) as store:
        for index in range(first_batch, -(-len(frames) // batch_size)):
            chunk = frames[index * batch_size:(index + 1) * batch_size]
            report = store.ingest([decode_frame(f) for f in chunk], NOW_MS)
            print(index, len(report.appended), report.held, len(report.rejected), flush=True)
    print("done", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
