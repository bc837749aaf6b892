"""The node: pure cores (node/core) and the shells that do I/O around them."""

from typing import Any

from .errors import AlreadyInitializedError, NodeError, NotInitializedError, UsageError
from .home import Config, Home


def __getattr__(name: str) -> Any:
    # LocalNode (and with it the store and LMDB) loads on first use, so `murmurate.node.home`
    # stays cheap for the terminal client, which only needs to find the daemon's socket.
    if name == "LocalNode":
        from .service import LocalNode
        return LocalNode
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = ["AlreadyInitializedError", "NodeError", "NotInitializedError", "UsageError", "Config", "Home",
           "LocalNode"]
