"""The relay's pure parts: relay.toml, relay codes, the join signature, admission and
invites (on a real store), quotas, what to host, and the metrics text."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from murmurate.crypto import InvalidIdError, SigningIdentity, encode_id
from murmurate.store import PayloadType, Store, create_entry, encode_frame, entry_frame_size
from murmurate.node.relay import RelayConfigError, parse_relay_config
from murmurate.node.core.media import named_blobs
from murmurate.node.relay import policy
from murmurate.node.relay import protocol as p
from murmurate.node.relay.config import Quota, RelayConfig
from murmurate.node.relay.metrics import Metric, Rate, answer, registry_of, render

NOW = 1_700_000_000_000
ALICE, BOB, CAROL = (SigningIdentity(bytes([i]) * 32) for i in (1, 2, 3))
RELAY = SigningIdentity(bytes([9]) * 32)
MINIMAL = 'data_dir = "/srv/relay"\nunencrypted_key = true\n'


# -- relay.toml ----------------------------------------------------------------------------

def test_minimal_config_takes_the_documented_defaults() -> None:
    c = parse_relay_config(MINIMAL, "relay.toml")
    assert c == RelayConfig(data_dir=Path("/srv/relay"), unencrypted_key=True)
    assert c.metrics_address == ("127.0.0.1", 9464)  # localhost unless the operator says otherwise


def test_full_config_is_read() -> None:
    text = MINIMAL + f'''
listen = ["/ip4/0.0.0.0/tcp/4001"]
announce = ["/dns4/relay.example/tcp/4001"]
resync_s = 10
[admission]
allow = ["{encode_id(ALICE.public_key)}"]
blocked = ["{encode_id(BOB.public_key)}"]
invite_ttl_s = 3600
[limits]
max_users = 10
max_feeds = 100
[quota]
max_entries = 50
max_bytes = 100000
max_follows = 7
max_blobs = 3
max_blob_bytes = 5000000
[metrics]
listen = ""
[log]
format = "text"
level = "DEBUG"
'''
    c = parse_relay_config(text, "relay.toml")
    assert c.allow == (ALICE.public_key,) and c.blocked == (BOB.public_key,)
    assert c.quota == Quota(50, 100_000, 7, 3, 5_000_000) and c.max_users == 10 and c.max_feeds == 100
    assert c.metrics_address is None and c.log_format == "text" and c.log_level == "debug"
    assert c.announce == ("/dns4/relay.example/tcp/4001",) and c.resync_s == 10.0


def test_relative_data_dir_is_taken_from_the_config_folder(tmp_path: Path) -> None:
    c = parse_relay_config('data_dir = "state"\nunencrypted_key = true\n', "x", base=tmp_path)
    assert c.data_dir == tmp_path / "state"


@pytest.mark.parametrize("text, says", [
    ("unencrypted_key = true\n", "data_dir is required"),
    ('data_dir = "/x"\n', "unencrypted_key = true"),
    (MINIMAL + "listen_on = []\n", "unknown key listen_on"),
    (MINIMAL + "[quota]\nmax_entry = 5\n", "unknown key quota.max_entry"),
    (MINIMAL + "[quota]\nmax_entries = 0\n", "quota.max_entries must be an integer"),
    (MINIMAL + '[admission]\nallow = ["bob"]\n', "admission.allow holds 'bob'"),
    (MINIMAL + '[metrics]\nlisten = "9464"\n', "metrics.listen must be HOST:PORT"),
    (MINIMAL + 'listen = "/ip4/0.0.0.0/tcp/1"\n', "listen must be a list of multiaddrs"),
    (MINIMAL + 'peers = ["/ip4/1.2.3.4/tcp/1"]\n', "peers addresses need a /p2p/"),
    (MINIMAL + '[log]\nformat = "xml"\n', "log.format"),
    ("data_dir = \n", "not valid TOML"),
])
def test_bad_config_names_the_key(text: str, says: str) -> None:
    with pytest.raises(RelayConfigError) as e:
        parse_relay_config(text, "relay.toml")
    assert says in str(e.value) and str(e.value).startswith("relay.toml")


# -- codes and the join signature ----------------------------------------------------------

def test_relay_code_round_trip_and_damage() -> None:
    code = p.RelayCode(RELAY.public_key, ("/ip4/10.0.0.1/tcp/4001",), b"t" * 16)
    text = p.encode_code(code)
    assert text.startswith("murr_") and p.parse_code(text) == code
    assert p.parse_code(p.encode_code(p.RelayCode(RELAY.public_key, ("/ip4/1.2.3.4/tcp/1",)))).token == b""
    broken = text[:20] + ("a" if text[20] != "a" else "b") + text[21:]
    with pytest.raises(InvalidIdError, match="checksum"):
        p.parse_code(broken)
    with pytest.raises(InvalidIdError, match="starts with murr_"):
        p.parse_code("murc_abc")


def test_join_must_be_signed_by_the_user_for_this_relay_now() -> None:
    join = p.make_join(ALICE, RELAY.public_key, b"k" * 16, NOW)
    assert p.decode(p.encode(join)) == join
    assert p.check_join(join, RELAY.public_key, ALICE.public_key, NOW + 1000) is None
    assert p.check_join(join, RELAY.public_key, BOB.public_key, NOW).code == p.BAD_SIGNATURE  # not Bob's
    assert p.check_join(join, BOB.public_key, ALICE.public_key, NOW).code == p.BAD_SIGNATURE  # another relay
    assert p.check_join(join, RELAY.public_key, ALICE.public_key, NOW + 11 * 60_000).code == p.BAD_SIGNATURE


@pytest.mark.parametrize("body", [b"\x80", p.encode(p.Ok({}))[:-1], b"\x81\xa1t\xa4nope",
                                  b"\x84\xa3sig\xc4\x01x\xa1t\xa4join\xa4time\x00\xa5token\xc4\x00"])
def test_garbage_is_a_protocol_error(body: bytes) -> None:
    with pytest.raises(p.RelayProtocolError):
        p.decode(body)


# -- admission on a real store -------------------------------------------------------------

@pytest.fixture
def store(tmp_path: Path):
    with Store(tmp_path / "store") as s:
        yield s


def config(**kw) -> RelayConfig:
    return RelayConfig(data_dir=Path("/x"), unencrypted_key=True, **kw)


def test_an_invite_admits_one_user_once(store: Store) -> None:
    c = config()
    invite = policy.create_invite(store, b"a" * 16, NOW, 3600)
    assert invite.expires_ms == NOW + 3_600_000
    assert policy.admit(store, c, ALICE.public_key, b"a" * 16, NOW + 1) == policy.Admitted(ALICE.public_key, True,
                                                                                          "invite")
    again = policy.admit(store, c, BOB.public_key, b"a" * 16, NOW + 2)
    assert again.code == p.USED_CODE and "already used" in again.message
    # Alice joining a second time (with any code or none) changes nothing.
    assert policy.admit(store, c, ALICE.public_key, b"", NOW + 3) == policy.Admitted(ALICE.public_key, False, "invite")
    assert list(policy.users(store)) == [ALICE.public_key]
    assert not any(b"a" * 16 in k + v for k, v in store.local_scan(b"relay/"))  # only hashes are kept


def test_expired_unknown_and_missing_codes_are_refused(store: Store) -> None:
    c = config()
    policy.create_invite(store, b"e" * 16, NOW, 60)
    late = policy.admit(store, c, ALICE.public_key, b"e" * 16, NOW + 60_000)
    assert late.code == p.EXPIRED_CODE and "expired" in late.message
    assert policy.admit(store, c, ALICE.public_key, b"e" * 16, NOW + 60_001).code == p.EXPIRED_CODE  # stays so
    assert policy.admit(store, c, ALICE.public_key, b"u" * 16, NOW).code == p.UNKNOWN_CODE
    nothing = policy.admit(store, c, ALICE.public_key, b"", NOW)
    assert nothing.code == p.NOT_ADMITTED and "invite code" in nothing.message
    assert policy.users(store) == {}


def test_sweeping_turns_expired_invites_into_expired_records(store: Store) -> None:
    policy.create_invite(store, b"1" * 16, NOW, 60)
    policy.create_invite(store, b"2" * 16, NOW, 600)
    assert len(policy.open_invites(store, NOW + 61_000)) == 1
    assert policy.sweep_expired(store, NOW + 61_000) == 1
    assert policy.admit(store, config(), ALICE.public_key, b"1" * 16, NOW).code == p.EXPIRED_CODE


def test_allowlist_blocklist_and_a_full_relay(store: Store) -> None:
    c = config(allow=(ALICE.public_key,), blocked=(BOB.public_key,), max_users=1)
    assert policy.admit(store, c, ALICE.public_key, b"", NOW).via == "allowlist"
    policy.create_invite(store, b"b" * 16, NOW, 60)
    assert policy.admit(store, c, BOB.public_key, b"b" * 16, NOW).code == p.BLOCKED
    full = policy.admit(store, c, CAROL.public_key, b"b" * 16, NOW)
    assert full.code == p.FULL and "maximum of 1 users" in full.message
    assert policy.admit(store, config(max_users=2), CAROL.public_key, b"b" * 16, NOW).new  # the code was not spent


# -- quotas and hosting --------------------------------------------------------------------

def feed(identity: SigningIdentity, n: int, text: str = "x") -> list:
    out, prev = [], None
    for seq in range(1, n + 1):
        e = create_entry(identity, seq=seq, prev=prev, timestamp_ms=NOW + seq, payload_type=PayloadType.POST,
                         payload={"text": f"{text} {seq}"})
        out.append(e)
        prev = e.envelope.hash
    return out


def test_trim_keeps_what_fits_and_nothing_after_the_first_refused_entry() -> None:
    entries = feed(ALICE, 5)
    size = len(encode_frame(entries[0]))
    kept, after, cut = policy.trim(entries[1:], {ALICE.public_key: policy.Usage(1, size)}, Quota(max_entries=3),
                                   {ALICE.public_key})
    assert [e.envelope.seq for e in kept] == [2, 3] and cut == {ALICE.public_key}
    assert after[ALICE.public_key].entries == 3
    by_bytes, _, cut2 = policy.trim(entries, {}, Quota(max_bytes=size * 2 + size // 2), {ALICE.public_key})
    assert len(by_bytes) == 2 and cut2 == {ALICE.public_key}
    # Entries already stored (seq at or below the count) pass uncounted: a resent batch is no overdraft.
    resent, again, no_cut = policy.trim(entries[:3], {ALICE.public_key: policy.Usage(3, 3 * size)},
                                        Quota(max_entries=3), {ALICE.public_key})
    assert len(resent) == 3 and no_cut == set() and again[ALICE.public_key] == policy.Usage(3, 3 * size)
    others, _, none_cut = policy.trim(entries, {}, Quota(max_entries=1), {BOB.public_key})
    assert len(others) == 5 and none_cut == set()  # authors who are not users are not counted here


def test_a_cut_and_the_recount_after_it_give_the_same_reason(store: Store) -> None:
    """The relay notices a full quota either when the writer cuts a batch or when it recounts
    after the commit, whichever comes first: both must say the same thing (a test that reads
    the log once flaked on the two wordings)."""
    entries = feed(ALICE, 7)
    quota = Quota(max_entries=4)
    kept, after, cut = policy.trim(entries, {ALICE.public_key: policy.Usage()}, quota, {ALICE.public_key})
    store.ingest(kept, NOW)
    recount = policy.account(store, ALICE.public_key)
    assert cut == {ALICE.public_key} and after[ALICE.public_key] == recount
    assert policy.cut_refusal(after[ALICE.public_key], quota) == policy.quota_refusal(recount, quota) \
        == "over quota: 4 of 4 entries stored; later entries are refused"
    # Cut on bytes with room left in the count: the reason says what is left.
    size = len(encode_frame(entries[0]))
    _, after, cut = policy.trim(entries, {}, Quota(max_bytes=size * 2 + size // 2), {ALICE.public_key})
    assert policy.cut_refusal(after[ALICE.public_key], Quota(max_bytes=size * 2 + size // 2)).startswith(
        "over quota: the next entry does not fit in the ")


def test_account_counts_the_stored_feed_incrementally(store: Store) -> None:
    for seq in range(1, 4):
        store.append_own(ALICE, PayloadType.POST, {"text": f"post {seq}"}, NOW + seq)
    first = policy.account(store, ALICE.public_key)
    assert first == policy.Usage(3, sum(len(f) for f in store.frames(ALICE.public_key, 1, 3)))
    store.append_own(ALICE, PayloadType.POST, {"text": "four"}, NOW + 4)
    assert policy.account(store, ALICE.public_key) == policy.Usage(
        4, sum(len(f) for f in store.frames(ALICE.public_key, 1, 4)))
    assert policy.quota_refusal(policy.Usage(4, 0), Quota(max_entries=4)).startswith("over quota: 4 of 4 entries")
    assert policy.quota_refusal(policy.Usage(3, 0), Quota(max_entries=4)) == ""


def test_hosted_feeds_cap_follows_and_skip_blocked_and_full_feeds() -> None:
    a, b, c, d, e = (bytes([i]) * 32 for i in range(10, 15))
    cfg = config(quota=Quota(max_follows=2), blocked=(d,), max_feeds=4)
    assert policy.hosted_feeds([a, b], {a: [c, d, e], b: [a]}, cfg) == [a, b, c]  # d blocked, e beyond 2 follows
    assert policy.hosted_feeds([a, b], {a: [c, e]}, cfg, over_quota=[b]) == [a, c, e]
    assert len(policy.hosted_feeds([a, b, c, e], {a: [bytes([1]) * 32]}, cfg)) == 4  # max_feeds


# -- metrics -------------------------------------------------------------------------------

def test_metrics_text_and_http_answers() -> None:
    metrics = [Metric("murmurate_relay_peers", "gauge", "connected peers", 3),
               Metric("murmurate_relay_ingest_rate", "gauge", "per second", 2.5),
               Metric("murmurate_relay_joins_total", "counter", "users admitted", 4)]
    text = render(metrics)
    assert text == ("# HELP murmurate_relay_peers connected peers\n# TYPE murmurate_relay_peers gauge\n"
                    "murmurate_relay_peers 3.0\n# HELP murmurate_relay_ingest_rate per second\n"
                    "# TYPE murmurate_relay_ingest_rate gauge\nmurmurate_relay_ingest_rate 2.5\n"
                    "# HELP murmurate_relay_joins_total users admitted\n"
                    "# TYPE murmurate_relay_joins_total counter\nmurmurate_relay_joins_total 4.0\n")
    # Read at each scrape, through prometheus_client's registry and its own parser.
    from prometheus_client.parser import text_string_to_metric_families
    live = [Metric("murmurate_relay_peers", "gauge", "connected peers", 3)]
    registry = registry_of(lambda: live)
    ok = answer(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", lambda: {"status": "ok"}, registry)
    assert ok.startswith(b"HTTP/1.0 200 OK\r\n") and b"Content-Type: text/plain; version=0.0.4" in ok
    live[0] = Metric("murmurate_relay_peers", "gauge", "connected peers", 5)
    again = answer(b"GET /metrics HTTP/1.1\r\n\r\n", dict, registry).split(b"\r\n\r\n", 1)[1].decode()
    assert [(s.name, s.value) for f in text_string_to_metric_families(again) for s in f.samples] == [
        ("murmurate_relay_peers", 5.0)]
    health = answer(b"GET /health HTTP/1.1\r\n\r\n", lambda: {"status": "stopping"}, registry)
    assert health.startswith(b"HTTP/1.0 503") and json.loads(health.split(b"\r\n\r\n")[1]) == {"status": "stopping"}
    assert answer(b"GET /x HTTP/1.1\r\n\r\n", dict, registry).startswith(b"HTTP/1.0 404")
    assert answer(b"POST /metrics HTTP/1.1\r\n\r\n", dict, registry).startswith(b"HTTP/1.0 405")
    assert answer(b"garbage", dict, registry).startswith(b"HTTP/1.0 400")


def test_rate_is_events_per_second_over_the_window() -> None:
    rate = Rate(window_s=60)
    assert rate.update(0.0, 0) == 0.0
    assert rate.update(10.0, 50) == 5.0
    assert rate.update(100.0, 950) == pytest.approx(900 / 90)  # the sample at 0 s fell out of the window


# -- media quota ---------------------------------------------------------------------------

def test_media_blobs_names_what_posts_and_profiles_carry_and_skips_the_malformed() -> None:
    one, two = b"\x01" * 32, b"\x02" * 32
    post = {"text": "x", "media": [{"blob": one, "size": 10}, {"blob": b"short", "size": 1}, "junk",
                                   {"blob": two, "size": -1}, {"blob": two, "size": 20}]}
    assert named_blobs(PayloadType.POST, post) == [(one, 10)]  # at most 4 items are looked at
    assert named_blobs(PayloadType.PROFILE, {"avatar": {"blob": two, "size": 5}}) == [(two, 5)]
    assert named_blobs(PayloadType.PROFILE, {"name": "no avatar"}) == []
    assert named_blobs(PayloadType.POST, {"text": "x", "media": "not a list"}) == []
    assert named_blobs(PayloadType.FAVOURITE, {"media": [{"blob": one, "size": 1}]}) == []


def test_blob_quota_counts_each_blob_once_per_user_and_refuses_what_does_not_fit(store: Store) -> None:
    quota = Quota(max_blobs=2, max_blob_bytes=1_000)
    one, two, three = (bytes([i]) * 32 for i in (1, 2, 3))
    user = ALICE.public_key
    assert policy.want_blob(store, user, one, 600) and not policy.want_blob(store, user, one, 600)
    assert policy.wanted_blobs(store) == [(user, one)] and policy.wanted_size(store, user, one) == 600
    assert policy.blob_refusal(policy.blob_usage(store, user), quota, 600) == ""
    assert policy.count_blob(store, user, one, 600) == policy.BlobUsage(1, 600)
    assert policy.count_blob(store, user, one, 600) == policy.BlobUsage(1, 600)  # once
    assert policy.wanted_blobs(store) == [] and not policy.want_blob(store, user, one, 600)  # held: not wanted again
    usage = policy.blob_usage(store, user)
    assert "500 does not fit" in policy.blob_refusal(usage, quota, 500)
    assert policy.blob_refusal(usage, quota, 400) == ""
    policy.count_blob(store, user, two, 400)
    assert "2 of 2 files" in policy.blob_refusal(policy.blob_usage(store, user), quota, 1)
    # Another user's count is their own, even for the same blob.
    assert policy.count_blob(store, BOB.public_key, one, 600) == policy.BlobUsage(1, 600)
    policy.want_blob(store, user, three, 1)
    policy.drop_want(store, user, three)
    assert policy.wanted_blobs(store) == []
    assert policy.scanned_to(store, user) == 0
    policy.set_scanned_to(store, user, 42)
    assert policy.scanned_to(store, user) == 42


def test_a_followed_feed_is_shared_by_its_followers_and_kept_while_one_has_room() -> None:
    a, b, x = ALICE.public_key, BOB.public_key, CAROL.public_key
    cfg = config(quota=Quota(max_follows=10))
    shared = policy.sharers([a, b], {a: [x, b], b: [x]}, cfg)
    assert shared == {x: (a, b)}  # b's own feed is b's alone, though a follows it
    feeds = {a: policy.Usage(1, 100), b: policy.Usage(1, 100), x: policy.Usage(3, 301)}
    assert policy.charges([a, b], feeds, shared) == {a: policy.Usage(3, 251), b: policy.Usage(3, 251)}
    entries = feed(CAROL, 8)
    sizes = [entry_frame_size(e) for e in entries]  # the first has no prev: smaller than the rest
    # a alone pays for x, with room for exactly two of its entries: they stop there, x is cut.
    quota = Quota(max_bytes=1000 + sizes[0] + sizes[1])
    kept, after, cut = policy.trim(entries, {x: policy.Usage()}, quota, set(), {x: (a,)},
                                   {a: policy.Usage(1, 1000)})
    assert [e.envelope.seq for e in kept] == [1, 2] and cut == {x} and after[x] == policy.Usage(2, sum(sizes[:2]))
    # a over quota, b with room for half of four entries: x goes on, b carrying its share
    # (each payer is charged half, rounded up), until the fifth would not fit b either.
    quota = Quota(max_bytes=1000 + -(-sum(sizes[:4]) // 2))
    kept, after, cut = policy.trim(entries, {x: policy.Usage()}, quota, set(), {x: (a, b)},
                                   {a: policy.Usage(1, 5000), b: policy.Usage(1, 1000)})
    assert [e.envelope.seq for e in kept] == [1, 2, 3, 4] and cut == {x} and after[x].entries == 4
    # Over quota users' follows are not fetched, unless a user with room follows them too.
    assert policy.hosted_feeds([a, b], {a: [x], b: []}, cfg, over_quota=[a]) == [b]
    assert policy.hosted_feeds([a, b], {a: [x], b: [x]}, cfg, over_quota=[a]) == [b, x]
