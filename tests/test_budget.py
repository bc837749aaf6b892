"""The resource budget (node/core/budget.py): limits per peer, per IP and in total."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from murmurate.node.core.budget import Budget, BudgetError, Limits, Refusal

SMALL = Limits(connections=4, connections_per_ip=3, new_peers_per_ip=2, new_peers=3, new_peer_window_s=10,
               streams=5, streams_per_peer=2, streams_per_ip=4, memory=100, memory_per_peer=40, memory_per_ip=70)


def test_connections_per_ip_and_in_total():
    b = Budget(SMALL)
    assert b.open_connection("a", "ip1", 0) is None
    assert b.open_connection("a", "ip1", 0) is None      # the same peer again is not new
    assert b.open_connection("b", "ip1", 0) is None
    assert b.open_connection("a", "ip1", 0) == Refusal("ip", "connections", 3)
    assert b.open_connection("c", "ip2", 0) is None
    assert b.open_connection("c", "ip3", 0) == Refusal("total", "connections", 4)
    b.close_connection("ip1")
    assert b.open_connection("c", "ip2", 0) is None
    assert b.refusals == {"connections/ip": 1, "connections/total": 1}


def test_connections_we_dial_count_in_the_total_only():
    b = Budget(SMALL)
    for _ in range(4):
        assert b.open_connection("a", None, 0) is None
    assert b.open_connection("b", "ip1", 0) == Refusal("total", "connections", 4)
    b.close_connection(None)
    assert b.open_connection("b", "ip1", 0) is None
    with pytest.raises(BudgetError):
        b.close_connection("ip2")


def test_new_peer_ids_per_ip_are_limited_within_the_window_only():
    b = Budget(SMALL)
    for peer in ("a", "b"):
        assert b.open_connection(peer, "ip1", 0) is None
        b.close_connection("ip1")
    assert b.open_connection("c", "ip1", 5) == Refusal("ip", "new_peers", 2)
    assert b.open_connection("a", "ip1", 5) is None       # a peer seen within the window is welcome
    b.close_connection("ip1")
    assert b.open_connection("c", "ip1", 10.5) is None    # the window has passed
    assert b.open_connection("d", "ip2", 10.5) is None
    assert b.open_connection("e", "ip3", 10.5) is None
    assert b.open_connection("f", "ip4", 10.5) == Refusal("total", "new_peers", 3)


def test_streams_and_memory_per_peer_ip_and_total():
    b = Budget(SMALL)
    assert b.open_stream("a", "ip1", 30) is None
    assert b.open_stream("a", "ip1", 20) == Refusal("peer", "memory", 40)
    assert b.open_stream("a", "ip1", 10) is None
    assert b.open_stream("a", "ip1", 0) == Refusal("peer", "streams", 2)
    assert b.open_stream("b", "ip1", 40) == Refusal("ip", "memory", 70)
    assert b.grow("a", "ip1", 1) == Refusal("peer", "memory", 40)
    b.release_memory("a", "ip1", 15)
    assert b.grow("a", "ip1", 15) is None
    b.close_stream("a", "ip1", 25)
    b.close_stream("a", "ip1", 15)
    assert b.totals == {"connections": 0, "streams": 0, "memory": 0}
    assert not b.streams["peer"] and not b.memory["ip"]  # nothing kept for peers that left


def test_releasing_what_was_not_acquired_is_our_bug():
    b = Budget(SMALL)
    with pytest.raises(BudgetError):
        b.close_connection("ip1")
    with pytest.raises(BudgetError):
        b.close_stream("a", "ip1", 0)
    assert b.open_stream("a", "ip1", 10) is None
    with pytest.raises(BudgetError):
        b.release_memory("a", "ip1", 11)
    with pytest.raises(BudgetError):
        Limits(streams=0)


def test_usage_names_refusals():
    b = Budget(SMALL)
    b.open_stream("a", "ip1", 50)
    assert b.usage()["budget_refused_memory_per_peer"] == 1
    assert b.usage()["budget_refusals"] == 1


# -- any sequence of calls -------------------------------------------------------------------

PEERS = st.sampled_from(["p1", "p2", "p3", "p4", "p5"])
IPS = st.sampled_from(["ip1", "ip2", "ip3"])
CONN_IPS = st.sampled_from(["ip1", "ip2", "ip3", None])  # None: a connection we dialled
OPS = st.lists(st.one_of(
    st.tuples(st.just("conn"), PEERS, CONN_IPS, st.floats(0, 5)),
    st.tuples(st.just("close_conn"), st.integers(0, 50)),
    st.tuples(st.just("stream"), PEERS, IPS, st.integers(0, 60)),
    st.tuples(st.just("grow"), st.integers(0, 50), st.integers(0, 60)),
    st.tuples(st.just("shrink"), st.integers(0, 50), st.integers(0, 60)),
    st.tuples(st.just("close_stream"), st.integers(0, 50)),
), max_size=80)


def _within_limits(b: Budget) -> None:
    lim = b.limits
    assert 0 <= b.totals["connections"] <= lim.connections
    assert all(0 < n <= lim.connections_per_ip for n in b.connections.values())
    for resource in ("streams", "memory"):
        counts = getattr(b, resource)
        assert 0 <= b.totals[resource] <= getattr(lim, resource)
        assert all(0 < n <= getattr(lim, f"{resource}_per_peer") for n in counts["peer"].values())
        assert all(0 < n <= getattr(lim, f"{resource}_per_ip") for n in counts["ip"].values())
        assert sum(counts["peer"].values()) == sum(counts["ip"].values()) == b.totals[resource]
    assert all(len(s) <= lim.new_peers_per_ip for s in b._seen.values())
    assert sum(len(s) for s in b._seen.values()) == b._seen_count <= lim.new_peers


@settings(max_examples=300, deadline=None)
@given(OPS)
def test_no_sequence_goes_over_a_limit_or_leaks(ops):
    b = Budget(SMALL)
    conns: list[str | None] = []                # ips of granted connections
    streams: list[list] = []                    # [peer, ip, memory held] of granted streams
    now = 0.0
    for op in ops:
        if op[0] == "conn":
            now += op[3]
            if b.open_connection(op[1], op[2], now) is None:
                conns.append(op[2])
        elif op[0] == "close_conn" and conns:
            b.close_connection(conns.pop(op[1] % len(conns)))
        elif op[0] == "stream":
            if b.open_stream(op[1], op[2], op[3]) is None:
                streams.append([op[1], op[2], op[3]])
        elif op[0] == "grow" and streams:
            s = streams[op[1] % len(streams)]
            if b.grow(s[0], s[1], op[2]) is None:
                s[2] += op[2]
        elif op[0] == "shrink" and streams:
            s = streams[op[1] % len(streams)]
            amount = min(op[2], s[2])
            b.release_memory(s[0], s[1], amount)
            s[2] -= amount
        elif op[0] == "close_stream" and streams:
            s = streams.pop(op[1] % len(streams))
            b.close_stream(*s)
        _within_limits(b)
    while conns:
        b.close_connection(conns.pop())
    while streams:
        b.close_stream(*streams.pop())
    assert b.totals == {"connections": 0, "streams": 0, "memory": 0}
    assert not b.connections and not any(b.streams.values()) and not any(b.memory.values())


# -- the [budget] table ------------------------------------------------------------------------

def test_budget_table_in_config_files():
    from murmurate.node.core.budget import RELAY_LIMITS, parse_limits
    from murmurate.node.errors import UsageError
    from murmurate.node.home import parse_config
    from murmurate.node.relay.config import RelayConfigError, parse_relay_config

    config = parse_config({"budget": {"streams_per_peer": 4, "memory_mb": 16, "new_peer_window_s": 2.5}}, "c.toml")
    assert config.limits == Limits(streams_per_peer=4, memory=16 << 20, new_peer_window_s=2.5)
    assert parse_config({}, "c.toml").limits == Limits()
    for bad in ({"streams": 0}, {"memory_mb": "lots"}, {"streams": True}, {"stream": 3}):
        with pytest.raises(UsageError, match="budget"):
            parse_config({"budget": bad}, "c.toml")
    relay = parse_relay_config('data_dir = "/x"\nunencrypted_key = true\n[budget]\nconnections_per_ip = 8\n', "r.toml")
    assert relay.limits == parse_limits({"connections_per_ip": 8}, RELAY_LIMITS, "r.toml")
    assert relay.limits.streams == RELAY_LIMITS.streams > Limits().streams
    with pytest.raises(RelayConfigError, match="budget.connections_per_ip"):
        parse_relay_config('data_dir = "/x"\nunencrypted_key = true\n[budget]\nconnections_per_ip = -1\n', "r.toml")
