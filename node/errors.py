"""Errors of the node package.

`NodeError` is the base. `UsageError`: the user asked for something that cannot be done
(posting 600 characters, following oneself, an unknown post to reply to).
`NotInitializedError`: this home has no identity yet.
"""


class NodeError(Exception):
    """Base of every error raised by murmurate.node."""


class UsageError(NodeError):
    """A request from the user or a client that this node refuses, with the reason."""


class NotInitializedError(NodeError):
    """No identity in this home: run `murmurate init`."""


class AlreadyInitializedError(NodeError):
    """This home already has an identity; it is never overwritten."""
