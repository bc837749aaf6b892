"""The JSON-RPC client core (ui/rpc_client.py): bytes in, events out, no socket."""

from __future__ import annotations

import json

import pytest

from murmurate.ui.rpc_client import LINE_LIMIT, ApiError, ClientConnection, Event, Reply


def events(conn: ClientConnection) -> list[Reply | Event]:
    out = []
    while (event := conn.next_event()) is not None:
        out.append(event)
    return out


def test_requests_get_increasing_ids_and_leave_out_none_params() -> None:
    conn = ClientConnection()
    first, line = conn.request("log", {"author": None, "limit": 5})
    second, _ = conn.request("ping", {})
    assert (first, second) == (1, 2) and line.endswith(b"\n")
    assert json.loads(line) == {"jsonrpc": "2.0", "id": 1, "method": "log", "params": {"limit": 5}}


def test_replies_are_matched_and_errors_become_exceptions_in_any_split_of_the_bytes() -> None:
    stream = (b'{"jsonrpc":"2.0","method":"event","params":{"kind":"entry"}}\n'
              b'{"jsonrpc":"2.0","id":2,"error":{"code":-32602,"message":"param \'ref\' must be"}}\n'
              b'\n{"jsonrpc":"2.0","id":1,"result":"pong"}\n'
              b'{"jsonrpc":"2.0","id":7,"result":"not ours"}\n')
    for cut in range(len(stream) + 1):
        conn = ClientConnection()
        conn.request("ping", {})
        conn.request("thread", {})
        got = []
        for part in (stream[:cut], stream[cut:]):
            if part:  # b"" would mean the daemon hung up
                conn.receive_data(part)
                got += events(conn)
        assert got[0] == Event("event", {"kind": "entry"}), cut
        error, pong = got[1], got[2]
        assert pong == Reply(1, result="pong") and pong.unwrap() == "pong" and len(got) == 3
        with pytest.raises(ApiError) as raised:
            error.unwrap()
        assert raised.value.code == -32602 and "ref" in str(raised.value)
        assert conn.pending == set()


def test_a_closed_connection_fails_each_pending_request_once() -> None:
    conn = ClientConnection()
    conn.request("ping", {})
    conn.request("status", {})
    conn.receive_data(b'{"jsonrpc":"2.0","id":2,"result":{}}\n')
    conn.receive_data(b"")
    replies = events(conn)
    assert [r.id for r in replies] == [2, 1] and replies[1].error is not None and replies[1].error.code == -1
    with pytest.raises(ApiError):
        conn.request("ping", {})


@pytest.mark.parametrize("data", [b"{nope\n", b"[1,2]\n", b"x" * (LINE_LIMIT + 1)])
def test_garbage_from_the_daemon_is_an_api_error(data: bytes) -> None:
    conn = ClientConnection()
    conn.request("ping", {})
    conn.receive_data(data)
    with pytest.raises(ApiError):
        conn.next_event()
