"""An asyncio client of the daemon's local API (JSON-RPC 2.0 lines on a Unix socket).

Textual runs on asyncio, so one connection carries both the calls and the live `event`
notifications of a subscription: a reader task feeds the socket's bytes to the protocol
core (ui/rpc_client.py), settles each reply's future and hands notifications to a callback.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

from ..rpc_client import ApiError, ClientConnection, Event

READ_SIZE = 65536


class AsyncApi:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._rpc = ClientConnection()
        self._pending: dict[int, asyncio.Future[Any]] = {}
        self.on_event: Callable[[dict[str, Any]], None] | None = None
        self.on_close: Callable[[], None] | None = None
        self._task = asyncio.get_running_loop().create_task(self._read())

    @classmethod
    async def open(cls, path: Path) -> "AsyncApi | None":
        """Connect, or None if no daemon listens at `path`."""
        try:
            reader, writer = await asyncio.open_unix_connection(str(path))
        except (FileNotFoundError, ConnectionRefusedError):
            return None
        return cls(reader, writer)

    async def call(self, method: str, **params: Any) -> Any:
        """Raises ApiError when the daemon refuses or the connection is gone."""
        rid, line = self._rpc.request(method, params)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending[rid] = future
        try:
            self._writer.write(line)
            await self._writer.drain()
        except (ConnectionError, RuntimeError) as e:
            self._pending.pop(rid, None)
            raise ApiError(-1, f"the daemon connection is gone: {e}") from None
        return await future

    async def subscribe(self) -> None:
        await self.call("subscribe")

    async def _read(self) -> None:
        try:
            while not self._rpc.closed:
                self._rpc.receive_data(await self._reader.read(READ_SIZE))
                while (event := self._rpc.next_event()) is not None:
                    if isinstance(event, Event):
                        if event.method == "event" and self.on_event is not None:
                            self.on_event(event.params)
                        continue
                    future = self._pending.pop(event.id, None)
                    if future is None or future.done():
                        continue
                    if event.error is not None:
                        future.set_exception(event.error)
                    else:
                        future.set_result(event.result)
        except (ConnectionError, ApiError):
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
