"""A blocking client of the daemon's local API (JSON-RPC 2.0 lines on a Unix socket).

The command line uses it when a daemon runs for its home. Plain `socket`: the ui layer
never imports trio. The protocol (ids, encoding, matching replies) is ui/rpc_client.py's;
this only moves its bytes.
"""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

from .rpc_client import ApiError, ClientConnection, Event, Reply

__all__ = ["ApiClient", "ApiError"]


class ApiClient:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._rpc = ClientConnection()
        self.notifications: list[dict[str, Any]] = []  # pushed while waiting for a reply

    @classmethod
    def connect(cls, path: Path, timeout: float = 60.0) -> "ApiClient | None":
        """Connect to a running daemon, or None if none listens at `path` (a stale socket
        file counts as none)."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(timeout)
        try:
            sock.connect(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            return None
        return cls(sock)

    def call(self, method: str, **params: Any) -> Any:
        """The method's result. Raises ApiError when the daemon refuses or hangs up."""
        rid, line = self._rpc.request(method, params)
        self._sock.sendall(line)
        while True:
            event = self._next_event()
            if isinstance(event, Event):
                self.notifications.append(event.message())
            elif event.id == rid:
                return event.unwrap()

    def next_notification(self) -> dict[str, Any]:
        if self.notifications:
            return self.notifications.pop(0)
        while True:
            event = self._next_event()
            if isinstance(event, Event):
                return event.message()

    def _next_event(self) -> Reply | Event:
        while (event := self._rpc.next_event()) is None:
            if self._rpc.closed:
                raise ApiError(-1, "the daemon closed the connection")
            self._rpc.receive_data(self._sock.recv(65536))
        return event

    def close(self) -> None:
        self._sock.close()
