"""The node: pure cores (node/core) and the shells that do I/O around them."""

from .errors import AlreadyInitializedError, NodeError, NotInitializedError, UsageError
from .home import Config, Home
from .service import LocalNode

__all__ = ["AlreadyInitializedError", "NodeError", "NotInitializedError", "UsageError", "Config", "Home",
           "LocalNode"]
