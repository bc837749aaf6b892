"""The relay (`murmurate relay --config relay.toml`) with real daemons on 127.0.0.1.

Users join with invite codes through their own daemons (`murmurate relay add CODE`); the
relay hosts their feeds and serves them to others while the users are away; quotas,
reused and expired codes, peers not admitted and blocked peers get clear refusals; a
restart loses nothing.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from daemons import DaemonProcess, feed_seqs, wait_until
from murmurate.node.relay import parse_code

pytestmark = pytest.mark.network  # real libp2p hosts or daemons


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RelayProcess(DaemonProcess):
    """A relay: its data folder is `home`, so the daemon helper's socket lookup finds its API."""

    def __init__(self, root: Path, name: str, extra_toml: str = "", port: int = 0) -> None:
        super().__init__(root, name)
        self.home.mkdir(parents=True)
        self.config = root / f"{name}.toml"
        self.config.write_text(f'data_dir = "{self.home}"\nlisten = ["/ip4/127.0.0.1/tcp/{port}"]\n'
                               f'unencrypted_key = true\n{extra_toml}\n'
                               + ("" if "[metrics]" in extra_toml else '[metrics]\nlisten = "127.0.0.1:0"\n'))

    def command(self, *more: str) -> list[str]:
        return [sys.executable, "-m", "murmurate.ui.cli", "relay", "--config", str(self.config), *more]

    def relay_cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.cli("relay", *args, "--config", str(self.config), check=check)

    def invite(self, *args: str) -> str:
        return self.relay_cli("invite", *args).stdout.splitlines()[0]

    def users(self) -> dict:
        return {u["id"]: u for u in self.call("relay_users")["users"]}

    def http(self, path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.info['metrics_port']}{path}", timeout=10) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def metric(self, name: str) -> float:
        _, text = self.http("/metrics")
        return float(next(line.split()[1] for line in text.splitlines() if line.startswith(name + " ")))


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[dict]:
    made: list[DaemonProcess] = []

    def user(name: str) -> DaemonProcess:
        made.append(DaemonProcess(tmp_path, name).init())
        return made[-1]

    def relay(name: str = "relay", extra_toml: str = "", port: int = 0) -> RelayProcess:
        made.append(RelayProcess(tmp_path, name, extra_toml, port))
        return made[-1]  # type: ignore[return-value]

    yield {"user": user, "relay": relay}
    for node in made:
        node.close()


def head_on(node: DaemonProcess, author: str) -> int:
    return max(feed_seqs(node, author), default=0)


@pytest.mark.slow
def test_a_user_joins_and_the_relay_serves_their_feed_live_and_while_they_are_away(lab) -> None:
    relay = lab["relay"]().start()
    a = lab["user"]("a").start()
    b = lab["user"]("b").start()
    code = relay.invite()
    out = a.cli("relay", "add", code).stdout
    assert f"joined relay {relay.id}" in out and "your profile lists it" in out
    profile = a.call("profile")
    assert profile["relays"] == [f"{relay.addr}"]
    assert relay.users()[a.id]["via"] == "invite"
    for i in range(3):
        a.call("post", text=f"kept by the relay {i}")
    wait_until(lambda: relay.users()[a.id]["entries"] == 4, what="the relay to hold a's feed")  # profile + 3
    # b follows a by plain id and knows only the relay: everything comes through it.
    b.call("follow", id=a.id)
    b.call("connect", addr=relay.addr)
    wait_until(lambda: head_on(b, a.id) == 4, what="b to fetch a's feed from the relay")
    assert a.info["peer_id"] not in {p["peer_id"] for p in b.call("peers") if p["connected"]}
    # Live: a's post reaches b through the relay's GossipSub mesh, without a resync.
    events = b.subscribe()
    wait_until(lambda: next(f for f in b.call("status")["feeds"] if f["id"] == a.id)["live_peers"] >= 1,
               what="b to hear a's topic from the relay")
    wait_until(lambda: next(f for f in relay.call("status")["feeds"] if f["id"] == a.id)["live_peers"] >= 2,
               what="a and b both on a's topic at the relay")
    a.call("post", text="live through the relay")
    while True:
        item = events.next_notification()["params"].get("item", {})
        if item.get("author") == a.id and item.get("type") == "post":
            break
    assert item["text"] == "live through the relay"
    events.close()
    # a goes away; c, who has never met a, reads a's feed from the relay.
    a_id = a.id
    a.stop()
    c = lab["user"]("c").start()
    c.call("follow", id=a_id)
    c.call("connect", addr=relay.addr)
    wait_until(lambda: head_on(c, a_id) == 5, what="c to fetch a's feed while a is offline")
    # The relay also hosts the feeds its users follow: b is no user, so only a's follows count.
    assert relay.call("relay_users")["hosted_feeds"] == 1
    assert relay.metric("murmurate_relay_hosted_feeds") == 1
    assert relay.metric("murmurate_relay_joins_total") == 1


@pytest.mark.slow
def test_codes_are_single_use_expire_and_peers_not_admitted_are_refused(lab) -> None:
    relay = lab["relay"]().start()
    a = lab["user"]("a").start()
    d = lab["user"]("d").start()
    code = relay.invite()
    a.cli("relay", "add", code)
    reused = d.cli("relay", "add", code, check=False)
    assert reused.returncode == 1
    assert "the relay refused: that invite code was already used" in reused.stderr and "(used_code)" in reused.stderr
    short = relay.invite("--ttl", "1")
    expires = parse_code(short)  # the code itself carries no expiry: the relay knows
    assert expires.token and relay.call("relay_users")["open_invites"] == 1
    wait_until(lambda: relay.call("relay_users")["open_invites"] == 0, timeout=10, what="the 1 s invite to expire")
    expired = d.cli("relay", "add", short, check=False)
    assert "that invite code has expired" in expired.stderr and "(expired_code)" in expired.stderr
    # A token-less code (for the allowlist) does not admit d.
    bare = relay.invite("--no-token")
    refused = d.cli("relay", "add", bare, check=False)
    assert "you are not admitted to this relay" in refused.stderr and "(not_admitted)" in refused.stderr
    assert "Traceback" not in refused.stderr + expired.stderr + reused.stderr
    # d never joined, so its profile lists no relay; its status with the relay says why.
    assert d.call("profile")["relays"] == []
    assert a.cli("relay", "status").stdout.count("entries") == 1
    assert list(relay.users()) == [a.id]
    assert relay.metric("murmurate_relay_refusals_total") >= 3
    assert any('"event": "refused"' in line and "used_code" in line for line in relay.log + [relay.wait_for_log(
        "not_admitted")])


@pytest.mark.slow
def test_a_user_over_quota_is_refused_and_told(lab) -> None:
    relay = lab["relay"](extra_toml="[quota]\nmax_entries = 4\n").start()
    a = lab["user"]("a").start()
    r = json.loads(a.cli("relay", "add", relay.invite(), "--json").stdout)
    assert r["account"]["max_entries"] == 4 and r["account"]["refusing"] == ""
    for i in range(6):
        a.call("post", text=f"post {i}")  # with the profile entry: 7 entries, 3 over
    wait_until(lambda: relay.users()[a.id]["refusing"], what="the relay to refuse a's entries")
    assert relay.users()[a.id]["entries"] == 4
    line = relay.wait_for_log("over_quota")
    assert a.id in line and "over quota: 4 of 4 entries" in json.loads(line)["msg"]
    status = a.cli("relay", "status").stdout
    assert "4/4 entries" in status and "over quota: 4 of 4 entries stored; later entries are refused" in status
    assert relay.metric("murmurate_relay_users_over_quota") == 1
    assert relay.metric("murmurate_relay_refusals_total") >= 1
    # The relay stops fetching a's feed (and leaves its topic), so nothing sneaks in later.
    wait_until(lambda: a.id not in {f["id"] for f in relay.call("status")["feeds"]}, what="the relay to stop")
    assert relay.users()[a.id]["entries"] == 4


def test_a_followed_feed_counts_against_the_users_who_follow_it(lab) -> None:
    # The issue: a user limited to 5 entries / 20 kB made the relay store 150 entries / 9 MB
    # of a feed they followed. Now a followed feed's size is shared by its followers here.
    relay = lab["relay"](extra_toml="[quota]\nmax_bytes = 8000\n").start()
    x = lab["user"]("x").start()
    for i in range(40):
        x.call("post", text=f"{i:03d} " + "x" * 480)  # about 560 bytes each: 22 kB in all
    x.call("connect", addr=relay.addr)  # the relay can fetch x's feed once someone wants it
    a = lab["user"]("a").start()
    a.cli("relay", "add", relay.invite())
    a.call("follow", id=x.id)
    wait_until(lambda: relay.users().get(a.id, {}).get("refusing"), what="a to go over quota with x's feed")
    line = relay.wait_for_log("over_quota")
    assert a.id in line
    status = a.cli("relay", "status").stdout
    assert "over quota" in status
    held = relay.call("status")["entries"]
    assert relay.users()[a.id]["bytes"] <= 8_000 and held < 20  # a's own 2 entries and part of x's 41
    # The relay stops fetching x for a.
    wait_until(lambda: x.id not in {f["id"] for f in relay.call("status")["feeds"]}, what="the relay to drop x")
    # b follows x too: x's size is split between a and b, so each has room again and the
    # relay takes more of x, until both are full. Neither is charged more than the quota.
    b = lab["user"]("b").start()
    b.cli("relay", "add", relay.invite())
    b.call("follow", id=x.id)
    wait_until(lambda: relay.call("status")["entries"] > held + 3, what="the relay to take more of x for a and b")
    wait_until(lambda: relay.users()[b.id]["refusing"] and relay.users()[a.id]["refusing"],
               what="a and b both full")
    users = relay.users()
    assert users[a.id]["bytes"] <= 8_000 and users[b.id]["bytes"] <= 8_000
    assert relay.call("status")["entries"] < 42 + 4  # x's 42 not all stored


@pytest.mark.slow
def test_blocked_peers_are_served_nothing_and_cannot_join(lab, tmp_path: Path) -> None:
    b = lab["user"]("b")
    b_id = b.cli("whoami").stdout.split()[0]
    relay = lab["relay"](extra_toml=f'[admission]\nblocked = ["{b_id}"]\n').start()
    a = lab["user"]("a").start()
    a.call("post", text="not for b")
    a.cli("relay", "add", relay.invite())
    wait_until(lambda: relay.users()[a.id]["entries"] == 2, what="the relay to hold a's feed")
    b.start()
    no = b.cli("relay", "add", relay.invite(), check=False)
    assert "the relay refused: this relay's operator has blocked you (blocked)" in no.stderr
    b.call("follow", id=a.id)
    b.call("connect", addr=relay.addr)
    # b ends up without a connection: the relay hangs up on it, or refuses its catch-up with a
    # reason first and b (told so) hangs up itself.
    wait_until(lambda: not any(p["connected"] for p in relay.call("peers") if p["author"] == b_id),
               what="b to be disconnected")
    assert relay.metric("murmurate_relay_refusals_total") >= 1


@pytest.mark.slow
def test_relay_restart_loses_nothing_and_health_and_metrics_answer(lab) -> None:
    port = free_port()
    relay = lab["relay"](port=port).start()
    a = lab["user"]("a").start()
    code = relay.invite()
    a.cli("relay", "add", code)
    for i in range(150):
        a.call("post", text=f"before the restart {i}")
    status, body = relay.http("/health")
    assert status == 200 and json.loads(body)["status"] == "ok"
    wait_until(lambda: relay.users()[a.id]["entries"] == 151, what="the relay to hold a's feed")
    assert relay.http("/nothing")[0] == 404
    assert relay.metric("murmurate_relay_entries") >= 151
    assert relay.metric("murmurate_relay_budget_connections") >= 1  # a is connected, and charged
    # The whole scrape parses as Prometheus text, with every name docs/operations.md lists.
    from prometheus_client.parser import text_string_to_metric_families
    scraped = {s.name for f in text_string_to_metric_families(relay.http("/metrics")[1]) for s in f.samples}
    assert scraped == {"murmurate_relay_" + n for n in (
        "up", "peers", "users", "users_over_quota", "hosted_feeds", "entries", "store_bytes",
        "ingested_entries_total", "served_entries_total", "ingest_rate", "serve_rate", "gossip_in_total",
        "refused_entries_total", "refusals_total", "joins_total", "blobs_fetched_total", "blobs_refused_total",
        "errors_total", "write_transactions_total", "budget_connections", "budget_streams",
        "budget_memory_bytes", "budget_refusals_total", "capped_feeds", "store_full", "cap_refused_entries_total",
        "unaudited_entries", "fully_verified_entries_total")}
    backup = relay.home.parent / "hot.murexp"
    assert "exported 151 entries of 1 feeds" in relay.cli("--home", str(relay.home), "export", str(backup)).stdout
    assert relay.stop(sig=signal.SIGTERM) == 0
    assert any('"event": "stopped"' in line for line in relay.log)
    assert not any("Traceback" in line for line in relay.log)
    for i in range(20):
        a.call("post", text=f"while the relay was down {i}")
    # Offline, the relay's store is whole.
    check = relay.cli("--home", str(relay.home), "verify", "--json")
    verified = json.loads(check.stdout)
    assert verified["problems"] == [] and verified["entries"] >= 151
    relay.start()
    assert relay.users()[a.id]["entries"] == 151  # nothing lost, and a is still admitted
    a.call("connect", addr=relay.addr)
    wait_until(lambda: relay.users()[a.id]["entries"] == 171, what="the relay to catch up after its restart")
    e = lab["user"]("e").start()
    assert "already used" in e.cli("relay", "add", code, check=False).stderr  # invites survive the restart too
    # e, who never met a, gets all of a's feed from the relay by catch-up (GossipSub's cache
    # is empty after the restart), and the serve counter shows it.
    e.call("follow", id=a.id)
    e.call("connect", addr=relay.addr)
    wait_until(lambda: head_on(e, a.id) == 171, what="e to fetch a's feed from the relay")
    assert relay.metric("murmurate_relay_served_entries_total") >= 171


@pytest.mark.slow
def test_graceful_stop_during_a_catch_up_keeps_the_store_whole(lab) -> None:
    a = lab["user"]("a").start()
    for i in range(400):
        a.call("post", text=f"bulk {i}")
    port = free_port()
    relay = lab["relay"](port=port).start()
    a.cli("relay", "add", relay.invite())
    wait_until(lambda: relay.users()[a.id]["entries"] > 0, what="the catch-up to start")
    assert relay.stop(sig=signal.SIGTERM) == 0
    verified = json.loads(relay.cli("--home", str(relay.home), "verify", "--json").stdout)
    assert verified["problems"] == []
    relay.start()
    a.call("connect", addr=relay.addr)
    wait_until(lambda: relay.users()[a.id]["entries"] == 401, what="the relay to finish the catch-up")


@pytest.mark.slow
def test_the_relay_stores_and_serves_private_posts_without_reading_them(lab, tmp_path: Path) -> None:
    relay = lab["relay"]().start()
    a = lab["user"]("a").start()
    b = lab["user"]("b").start()
    a.cli("relay", "add", relay.invite())
    b.call("follow", id=a.id)
    b.call("connect", addr=relay.addr)  # b knows only the relay
    a.call("accept_follower", id=b.id)
    secret = "meet at the old mill at nine"
    post = a.call("post", text=secret, visibility="followers")
    wait_until(lambda: relay.users()[a.id]["entries"] >= post["seq"], what="the relay to hold the post")

    def b_reads() -> bool:
        return any(i.get("text") == secret for i in b.call("log", author=a.id, limit=50))
    wait_until(b_reads, what="the accepted follower to read it")
    archive = tmp_path / "relay.murexp"
    relay.call("export", file=str(archive))
    from murmurate.crypto import decode_id
    from murmurate.store.archive import _frames
    held = {(e.envelope.author, e.envelope.seq): e.payload for e in _frames(archive)}
    assert held[(decode_id(a.id), post["seq"])] is not None  # the relay holds the sealed post...
    assert secret.encode() not in archive.read_bytes()  # ...as ciphertext only


@pytest.mark.slow
def test_the_relay_hosts_its_users_media_within_their_media_quota(lab, tmp_path: Path) -> None:
    relay = lab["relay"](extra_toml="[quota]\nmax_blob_bytes = 300000\n").start()
    a = lab["user"]("a").start()
    b = lab["user"]("b").start()
    a.cli("relay", "add", relay.invite())
    small, big = tmp_path / "small.bin", tmp_path / "big.bin"
    small.write_bytes(bytes(range(256)) * 800)    # 204,800 bytes: fits the 300,000
    big.write_bytes(bytes(range(255)) * 800)      # 204,000 more: does not
    ref_small = a.call("attach", path=str(small), alt="fits")
    a.call("post", text="a small picture", media=[ref_small])
    wait_until(lambda: relay.users()[a.id]["blobs"] == 1, what="the relay to fetch a's picture")
    assert relay.users()[a.id]["blob_bytes"] == 204_800 and relay.users()[a.id]["max_blob_bytes"] == 300_000
    ref_big = a.call("attach", path=str(big), alt="too much")
    a.call("post", text="a big picture", media=[ref_big])
    relay.wait_for_log("over the media quota")
    assert relay.metric("murmurate_relay_blobs_refused_total") == 1
    assert relay.users()[a.id]["blobs"] == 1
    a.stop()
    # a is away: b gets a's posts and the picture that fit from the relay, and a clear
    # error for the one that did not.
    b.call("follow", id=a.id)
    b.call("connect", addr=relay.addr)
    held = relay.users()[a.id]["entries"]
    assert held >= 3  # the relay's profile entry and the two posts
    wait_until(lambda: head_on(b, a.id) == held, what="b to fetch a's feed from the relay")
    out = tmp_path / "at-b.bin"
    got = b.call("blob", hash=ref_small["blob"], out=str(out))
    assert got["fetched_from"] == relay.info["peer_id"] and out.read_bytes() == small.read_bytes()
    with pytest.raises(Exception, match="no connected peer has that blob"):
        b.call("blob", hash=ref_big["blob"], out=str(tmp_path / "nothing"))
    # What the relay holds and counts survives a restart.
    relay.stop()
    relay.start()
    assert relay.users()[a.id]["blobs"] == 1 and relay.users()[a.id]["blob_bytes"] == 204_800
