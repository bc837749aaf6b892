"""A feed cut by the audit shows as cut in a real daemon's status (issue 11, point 3).

The bad run (entry 2 with a bad signature, 3 and 4 signed over it) is put in the daemon's
store before it starts, as an ingest over the network would leave it: 1..4 stored on
seq 4's signature, 1..3 waiting for the audit. The daemon's auditor then cuts the feed.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from daemons import DaemonProcess, feed_seqs, wait_until
from helpers import identity, signed_over_bad
from murmurate.crypto import encode_id
from murmurate.store import Store

pytestmark = pytest.mark.network  # real libp2p hosts or daemons

AUTHOR = identity(61)


def test_a_daemon_cuts_a_feed_with_a_bad_signature_and_its_status_says_so(tmp_path: Path) -> None:
    b = DaemonProcess(tmp_path, "b").init()
    author_id = encode_id(AUTHOR.public_key)
    try:
        b.cli("follow", author_id)
        now = int(time.time() * 1000)
        with Store(b.home / "store") as store:
            store.ingest(signed_over_bad(AUTHOR, [now - 10_000 + i for i in range(4)], bad_seq=2), now)
            assert store.unaudited_count() == 3 and store.head(AUTHOR.public_key).seq == 4
        b.start()
        status = wait_until(lambda: (s := b.call("status"))["cut"] and s, what="the audit's cut in status")
        assert status["cut"] == [{"id": author_id, "seq": 2, "reason": "bad_signature"}]
        [feed] = [f for f in status["feeds"] if f["id"] == author_id]
        assert feed["cut_at"] == 2 and feed["have"] == 1 and feed["behind"] == 0
        assert feed_seqs(b, author_id) == [1]
        assert "CUT at entry 2" in b.cli("status").stdout
    finally:
        b.close()
