"""The client side of the local API's JSON-RPC 2.0 lines, without I/O (after h11).

`ClientConnection` numbers requests and encodes them (`request` returns the bytes to send),
takes whatever bytes arrive (`receive_data`), and hands back one event at a time
(`next_event`): a `Reply` to a request, an `Event` notification, or None when it needs
more bytes. A refusal is a `Reply` whose `error` is an ApiError, which the caller raises.
The command line's blocking client (ui/api_client.py) and the terminal client's asyncio
one (ui/tui/client.py) are thin shells that move bytes between a socket and this object.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

LINE_LIMIT = 2 * 1024 * 1024  # the daemon's lines are at most 1 MiB
CONNECTION_LOST = -1  # the code of ApiErrors this side makes (no JSON-RPC code means "gone")


class ApiError(Exception):
    """The daemon answered with an error (its message says why), or the connection failed."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True)
class Reply:
    """The answer to request `id`: its result, or the error to raise."""

    id: int
    result: Any = None
    error: ApiError | None = None

    def unwrap(self) -> Any:
        """The result. Raises the ApiError the daemon answered with."""
        if self.error is not None:
            raise self.error
        return self.result


@dataclass(frozen=True)
class Event:
    """A notification the daemon pushed (no id): `event` for subscriptions."""

    method: str
    params: dict[str, Any]

    def message(self) -> dict[str, Any]:
        """The notification as the daemon sent it (a JSON-RPC object)."""
        return {"jsonrpc": "2.0", "method": self.method, "params": self.params}


class ClientConnection:
    def __init__(self) -> None:
        self._next_id = 1
        self._buffer = bytearray()
        self.pending: set[int] = set()  # ids sent and not yet answered
        self.closed = False

    def request(self, method: str, params: dict[str, Any]) -> tuple[int, bytes]:
        """Encode a call (params that are None are left out). Returns its id and the line to send."""
        if self.closed:
            raise ApiError(CONNECTION_LOST, "the daemon closed the connection")
        rid, self._next_id = self._next_id, self._next_id + 1
        line = json.dumps({"jsonrpc": "2.0", "id": rid, "method": method,
                           "params": {k: v for k, v in params.items() if v is not None}}).encode() + b"\n"
        self.pending.add(rid)
        return rid, line

    def receive_data(self, data: bytes) -> None:
        """Bytes from the daemon; b"" means it closed the connection."""
        if not data:
            self.closed = True
        self._buffer += data

    def next_event(self) -> Reply | Event | None:
        """The next complete message, or None until more bytes come. Replies to ids this side
        never sent (or already answered) are skipped. After the connection closed, each request
        still pending gets a Reply with an ApiError. Raises ApiError on a line that is not
        JSON-RPC or over LINE_LIMIT: the connection cannot be trusted after it."""
        while True:
            end = self._buffer.find(b"\n")
            if end < 0:
                if len(self._buffer) > LINE_LIMIT:
                    raise ApiError(CONNECTION_LOST, f"the daemon sent a line over {LINE_LIMIT} bytes")
                return self._lost() if self.closed else None
            line = bytes(self._buffer[:end])
            del self._buffer[:end + 1]
            if not line.strip():
                continue
            event = self._parse(line)
            if event is not None:
                return event

    def _parse(self, line: bytes) -> Reply | Event | None:
        try:
            message = json.loads(line)
        except ValueError:
            raise ApiError(CONNECTION_LOST, "the daemon sent a line that is not JSON") from None
        if not isinstance(message, dict):
            raise ApiError(CONNECTION_LOST, "the daemon sent something that is not a JSON-RPC message")
        rid = message.get("id")
        if rid is None:
            if "method" in message:
                params = message.get("params")
                return Event(str(message["method"]), params if isinstance(params, dict) else {})
            # An error without an id: the daemon could not read a request of ours (a parse
            # error). It cannot say which, so it is dropped here; that request's reply is lost.
            return None
        if rid not in self.pending:
            return None
        self.pending.discard(rid)
        error = message.get("error")
        if error is not None:
            if not isinstance(error, dict):
                error = {}
            return Reply(rid, error=ApiError(error.get("code", 0), str(error.get("message", "error"))))
        return Reply(rid, result=message.get("result"))

    def _lost(self) -> Reply | None:
        if not self.pending:
            return None
        rid = min(self.pending)
        self.pending.discard(rid)
        return Reply(rid, error=ApiError(CONNECTION_LOST, "the daemon closed the connection"))
