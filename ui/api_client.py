"""A blocking client of the daemon's local API (JSON-RPC 2.0 lines on a Unix socket).

The command line uses it when a daemon runs for its home. Plain `socket`: the ui layer
never imports trio.
"""

from __future__ import annotations

import itertools
import json
import socket
from pathlib import Path
from typing import Any


class ApiError(Exception):
    """The daemon answered with an error (its message says why)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class ApiClient:
    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._file = sock.makefile("rb")
        self._ids = itertools.count(1)
        self.notifications: list[dict[str, Any]] = []

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
        rid = next(self._ids)
        request = {"jsonrpc": "2.0", "id": rid, "method": method,
                   "params": {k: v for k, v in params.items() if v is not None}}
        self._sock.sendall(json.dumps(request).encode() + b"\n")
        while True:
            line = self._file.readline()
            if not line:
                raise ApiError(-1, "the daemon closed the connection")
            message = json.loads(line)
            if "id" not in message:
                self.notifications.append(message)
                continue
            if message.get("id") != rid:
                continue
            if "error" in message:
                raise ApiError(message["error"].get("code", 0), message["error"].get("message", "error"))
            return message["result"]

    def next_notification(self) -> dict[str, Any]:
        if self.notifications:
            return self.notifications.pop(0)
        line = self._file.readline()
        if not line:
            raise ApiError(-1, "the daemon closed the connection")
        return json.loads(line)

    def close(self) -> None:
        self._file.close()
        self._sock.close()
