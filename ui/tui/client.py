"""An asyncio client of the daemon's local API (JSON-RPC 2.0 lines on a Unix socket).

Textual runs on asyncio, so one connection carries both the calls and the live `event`
notifications of a subscription: a reader task matches responses to their futures and
hands notifications to a callback.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..api_client import ApiError

LINE_LIMIT = 2 * 1024 * 1024  # the daemon's lines are at most 1 MiB


class AsyncApi:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self.on_event: Callable[[dict[str, Any]], None] | None = None
        self.on_close: Callable[[], None] | None = None
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, path: Path) -> "AsyncApi | None":
        """Connect, or None if no daemon listens at `path`."""
        try:
            reader, writer = await asyncio.open_unix_connection(str(path), limit=LINE_LIMIT)
        except (FileNotFoundError, ConnectionRefusedError):
            return None
        return cls(reader, writer)

    async def call(self, method: str, **params: Any) -> Any:
        """Raises ApiError when the daemon refuses or the connection is gone."""
        rid = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        request = {"jsonrpc": "2.0", "id": rid, "method": method,
                   "params": {k: v for k, v in params.items() if v is not None}}
        try:
            self._writer.write(json.dumps(request).encode() + b"\n")
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as e:
            self._pending.pop(rid, None)
            raise ApiError(-1, f"the daemon connection is gone: {e}") from None
        return await future

    async def subscribe(self) -> None:
        await self.call("subscribe")

    async def _read(self) -> None:
        try:
            while True:
                line = await self._reader.readline()
                if not line:
                    break
                message = json.loads(line)
                rid = message.get("id")
                if rid is None:
                    if message.get("method") == "event" and self.on_event is not None:
                        self.on_event(message.get("params", {}))
                    continue
                future = self._pending.pop(rid, None)
                if future is None or future.done():
                    continue
                if "error" in message:
                    err = message["error"]
                    future.set_exception(ApiError(err.get("code", 0), err.get("message", "error")))
                else:
                    future.set_result(message.get("result"))
        except (ConnectionError, ValueError, asyncio.IncompleteReadError):
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ApiError(-1, "the daemon closed the connection"))
            self._pending.clear()
            if self.on_close is not None:
                self.on_close()

    async def close(self) -> None:
        self.on_close = None
        self._task.cancel()
        self._writer.close()
        try:
            await self._writer.wait_closed()
        except (ConnectionError, OSError):
            pass
