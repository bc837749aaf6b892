"""Hostile peers cannot make a daemon hold memory (issue 11, point 1).

A real daemon; its private memory (RssAnon) idle; then 40 fresh peer ids open 8 sync streams
each: half send a length prefix promising a ~590 KB frame and 500 KB of it, half send
nothing, and none ever finishes or closes. The daemon must stay within idle + 64 MB during
and after, close every such stream itself within its first-want timeout, refuse what is
over its budget, and keep serving an honest follower meanwhile.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import trio

from daemons import DaemonProcess, wait_until
from hostile import Sampler, attack, rss_anon_kb
from murmurate.node.p2p import STREAM_WINDOW
from murmurate.node.replicator import FIRST_WANT_TIMEOUT_S

pytestmark = pytest.mark.network  # real libp2p hosts or daemons

LIMIT_KB = 64 * 1024


def head_on(node: DaemonProcess, author: str) -> int:
    return next((f["have"] for f in node.call("status")["feeds"] if f["id"] == author), 0)


@pytest.mark.slow
async def test_many_peers_with_half_sent_streams_cannot_raise_memory(tmp_path: Path) -> None:
    def start() -> tuple[DaemonProcess, DaemonProcess]:
        target = DaemonProcess(tmp_path, "target").init().start()
        honest = DaemonProcess(tmp_path, "honest").init().start()
        target.call("post", text="before the attack")
        honest.call("follow", id=target.contact())
        wait_until(lambda: head_on(honest, target.id) == 1, what="the honest peer to sync")
        return target, honest

    target, honest = await trio.to_thread.run_sync(start)
    try:
        await _attack_and_check(target, honest)
    finally:
        target.close()
        honest.close()


async def _attack_and_check(target: DaemonProcess, honest: DaemonProcess) -> None:
    assert target.proc is not None
    pid = target.proc.pid
    # Idle: the honest follower's live streams are open (it follows the target; the target
    # syncs with it too).
    await trio.to_thread.run_sync(lambda: wait_until(
        lambda: target.call("status")["budget"]["budget_streams"] == 2, what="both live streams open"))
    idle_kb = rss_anon_kb(pid)
    sampler = Sampler(pid)
    attacking = trio.Event()
    result = {}

    async def run_attack() -> None:
        result["report"] = await attack(target.info["peer_id"], target.addr, peers=40, streams_per_peer=8,
                                        partial=500_000, end_deadline_s=FIRST_WANT_TIMEOUT_S + 30,
                                        attacking=attacking)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(run_attack)
        await attacking.wait()
        during_kb = rss_anon_kb(pid)
        # An honest peer is still served during the attack: a new post reaches it live.
        await trio.to_thread.run_sync(lambda: target.call("post", text="during the attack"))
        await trio.to_thread.run_sync(lambda: wait_until(lambda: head_on(honest, target.id) == 2,
                                                         what="the honest peer to get a post during the attack"))
    report = result["report"]
    after_kb = rss_anon_kb(pid)
    peak_kb = sampler.stop()
    print(f"\nhostile memory: RssAnon idle {idle_kb / 1024:.1f} MB, during {during_kb / 1024:.1f} MB, "
          f"peak {peak_kb / 1024:.1f} MB (+{(peak_kb - idle_kb) / 1024:.1f}), after {after_kb / 1024:.1f} MB; "
          f"{report.connected}/{report.peers} peers connected, {report.opened}/{report.streams} streams "
          f"accepted, {report.partial_bytes / 1e6:.1f} MB of partial frames taken, slowest stream ended "
          f"after {report.slowest_end_s:.1f} s")
    status = await trio.to_thread.run_sync(target.call, "status")
    assert report.opened > 0 and report.partial_bytes > 0, (status["budget"], report.errors[:2])  # it reached the server
    assert peak_kb - idle_kb <= LIMIT_KB, f"RssAnon rose by {(peak_kb - idle_kb) / 1024:.1f} MB"
    assert after_kb - idle_kb <= LIMIT_KB
    # The daemon closed every stream it accepted within its first-want timeout (plus slack
    # for a loaded machine), and refused the rest.
    assert report.still_open == 0
    assert report.slowest_end_s <= FIRST_WANT_TIMEOUT_S + 10
    assert report.connected < report.peers or report.opened < report.streams
    assert status["budget"]["budget_refusals"] > 0
    # Everything the attack was charged is given back: what is left is the honest peer's two
    # live streams (one each way), holding nothing beyond their windows.
    def budget_idle() -> bool:
        b = target.call("status")["budget"]
        return b["budget_streams"] <= 2 and b["budget_memory"] == b["budget_streams"] * STREAM_WINDOW
    await trio.to_thread.run_sync(lambda: wait_until(budget_idle, what="the budget back to its idle figures"))
