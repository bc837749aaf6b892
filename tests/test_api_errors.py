"""The local API tells the caller's mistakes (bad params) from its own bugs (internal errors).

A real ApiServer on a real Unix socket, in front of a stand-in daemon: these tests are about
the server's answers, and never get as far as a store.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
import trio

from murmurate.node.api import VERB_PARAMS, ApiServer
from murmurate.node.core import rpc


class BuggyNode:
    """A node whose every verb has a bug (a KeyError, as a missed dict key would raise)."""

    def read(self, verb: str, params: dict[str, Any]) -> Any:
        raise KeyError("which")

    def log(self, author: str | None, *, limit: int) -> Any:
        raise KeyError("author")


async def ask(server: ApiServer, tmp_path: Path, *requests: dict[str, Any]) -> list[dict[str, Any]]:
    path = tmp_path / "api.sock"
    async with trio.open_nursery() as nursery:
        await nursery.start(server.serve, path)
        stream = await trio.open_unix_socket(str(path))
        replies = []
        async with stream:
            buf = b""
            for i, request in enumerate(requests, 1):
                await stream.send_all(json.dumps({"jsonrpc": "2.0", "id": i, **request}).encode() + b"\n")
                while b"\n" not in buf:
                    with trio.fail_after(10):
                        data = await stream.receive_some()
                    assert data, "the server hung up"
                    buf += data
                line, buf = buf.split(b"\n", 1)
                replies.append(json.loads(line))
        nursery.cancel_scope.cancel()
    return replies


def server(node: Any = None) -> ApiServer:
    return ApiServer(SimpleNamespace(node=node or BuggyNode(), request_stop=lambda: None))  # type: ignore[arg-type]


async def test_a_bug_inside_a_method_is_an_internal_error_with_its_traceback_logged(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.ERROR, logger="murmurate.api")
    replies = await ask(server(), tmp_path, {"method": "timeline", "params": {"limit": 5}},
                        {"method": "log", "params": {}}, {"method": "ping"})
    assert [r["error"]["code"] for r in replies[:2]] == [rpc.INTERNAL_ERROR] * 2, replies
    assert replies[2]["result"] == "pong"  # and the connection goes on
    logged = [r for r in caplog.records if r.name == "murmurate.api"]
    assert [r.getMessage() for r in logged] == ["method timeline failed", "method log failed"]
    assert all(r.exc_info and r.exc_info[0] is KeyError for r in logged)


async def test_a_bug_in_a_monkeypatched_method_is_internal_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    async def broken(self: ApiServer, params: dict[str, Any], conn: Any) -> str:
        return {}["missing"]
    monkeypatch.setattr(ApiServer, "ping", broken)
    caplog.set_level(logging.ERROR, logger="murmurate.api")
    (reply,) = await ask(server(), tmp_path, {"method": "ping"})
    assert reply["error"]["code"] == rpc.INTERNAL_ERROR
    assert "KeyError: 'missing'" in caplog.text


WRONG_PARAMS = [
    ("timeline", {"limit": "5"}), ("timeline", {"which": 5}), ("timeline", {"cursor": 5}),
    ("post", {}), ("post", {"text": 5}), ("post", {"text": "hi", "to": "mur_x"}),
    ("post", {"text": "hi", "media": [5]}), ("post", {"text": "hi", "reply_to": {"a": 1}}),
    ("edit", {"ref": "mur_x/1"}), ("boost", {"ref": [1, 2]}), ("follow", {"id": 5}), ("block", {}),
    ("set_profile", {"relays": "/ip4/1.2.3.4"}), ("set_profile", {"avatar": "x"}),
    ("thread", {}), ("search", {"query": ""}), ("mute", {"kind": "word"}), ("list_add", {"name": "x"}),
    ("profile", {"id": ["x"]}), ("log", {"author": 5}), ("log", {"limit": 0}),
    ("attach", {"path": "relative"}), ("blob", {"hash": "zz", "out": "/x"}), ("export", {"file": 5}),
    ("import", {}), ("connect", {}), ("relay_add", {}), ("unsubscribe", {"subscription": "x"}),
    ("notifications", {"limit": -5}), ("conversations", {"limit": True}),
]


async def test_wrong_params_are_invalid_params_and_reach_no_node(tmp_path: Path,
                                                                caplog: pytest.LogCaptureFixture) -> None:
    replies = await ask(server(), tmp_path, *({"method": m, "params": p} for m, p in WRONG_PARAMS))
    wrong = [(m, p, r) for (m, p), r in zip(WRONG_PARAMS, replies) if r.get("error", {}).get("code") != rpc.INVALID_PARAMS]
    assert wrong == []
    assert "failed" not in caplog.text


def test_every_api_method_is_in_the_table_and_every_social_verb_has_its_params() -> None:
    from murmurate.node.service import LocalNode
    table = server().methods
    assert set(VERB_PARAMS) <= set(table)
    social = (set(LocalNode.WRITE_VERBS) | set(LocalNode.READ_VERBS)) - {"log", "following", "whoami", "verify"}
    assert social <= set(VERB_PARAMS), social - set(VERB_PARAMS)
    assert not any(name.startswith("_") for name in table)
