"""JSON-RPC 2.0 over lines: the local API's wire format. Pure.

One JSON object per line, UTF-8, at most MAX_LINE bytes. Requests carry an id and get
exactly one response; notifications (no id) get none. The server pushes subscription
events as notifications: {"jsonrpc": "2.0", "method": "event", "params": {...}}.
Batches (JSON arrays) are not supported and answered with an error.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

MAX_LINE = 1024 * 1024

PARSE_ERROR = -32700
INVALID_REQUEST = -32600
METHOD_NOT_FOUND = -32601
INVALID_PARAMS = -32602
INTERNAL_ERROR = -32603
# Application errors (JSON-RPC leaves -32000..-32099 to servers).
APP_ERROR = -32000          # the request was understood and refused (the message says why)
NOT_INITIALIZED = -32001
LOCKED = -32002             # the daemon's key is not unlocked


@dataclass(frozen=True)
class Request:
    id: int | str | None      # None for a notification
    method: str
    params: dict[str, Any]


@dataclass(frozen=True)
class RpcError(Exception):
    code: int
    message: str
    id: int | str | None = None

    def __str__(self) -> str:
        return self.message


def parse_request(line: bytes) -> Request:
    """Parse one line. Raises RpcError (with the request's id when it could be read)."""
    if len(line) > MAX_LINE:
        raise RpcError(INVALID_REQUEST, f"request over {MAX_LINE} bytes")
    try:
        value = json.loads(line)
    except (ValueError, UnicodeDecodeError) as e:
        raise RpcError(PARSE_ERROR, f"not JSON: {e}") from None
    except RecursionError:
        raise RpcError(PARSE_ERROR, "JSON nested too deeply") from None
    if not isinstance(value, dict):
        raise RpcError(INVALID_REQUEST, "a request is one JSON object (batches are not supported)")
    rid = value.get("id")
    if rid is not None and (isinstance(rid, bool) or not isinstance(rid, (int, str))):
        raise RpcError(INVALID_REQUEST, "id must be a number or a string")
    if value.get("jsonrpc") != "2.0":
        raise RpcError(INVALID_REQUEST, 'jsonrpc must be "2.0"', rid)
    method = value.get("method")
    if not isinstance(method, str) or not method:
        raise RpcError(INVALID_REQUEST, "method must be a string", rid)
    params = value.get("params", {})
    if not isinstance(params, dict):
        raise RpcError(INVALID_PARAMS, "params must be an object (named parameters)", rid)
    return Request(rid, method, params)


def encode_result(rid: int | str | None, result: Any) -> bytes:
    return _line({"jsonrpc": "2.0", "id": rid, "result": result})


def encode_error(rid: int | str | None, code: int, message: str, data: Any = None) -> bytes:
    error: dict[str, Any] = {"code": code, "message": message}
    if data is not None:
        error["data"] = data
    return _line({"jsonrpc": "2.0", "id": rid, "error": error})


def encode_notification(method: str, params: dict[str, Any]) -> bytes:
    return _line({"jsonrpc": "2.0", "method": method, "params": params})


def encode_request(rid: int | str, method: str, params: dict[str, Any]) -> bytes:
    return _line({"jsonrpc": "2.0", "id": rid, "method": method, "params": params})


# -- param readers ---------------------------------------------------------------------------
# Each method reads its params through these before doing anything, so a missing or
# wrong-typed param is an RpcError(INVALID_PARAMS) naming it, and a TypeError or KeyError
# further in is a bug (an internal error), never taken for the caller's mistake.

def text(params: dict[str, Any], name: str) -> str:
    """A required, non-empty string."""
    value = params.get(name)
    if not isinstance(value, str) or not value:
        raise RpcError(INVALID_PARAMS, f"param {name!r} must be a non-empty string")
    return value


def optional_text(params: dict[str, Any], name: str) -> str | None:
    """A string, or None when absent or null."""
    value = params.get(name)
    if value is not None and not isinstance(value, str):
        raise RpcError(INVALID_PARAMS, f"param {name!r} must be a string")
    return value


def integer(params: dict[str, Any], name: str, default: int, low: int, high: int) -> int:
    """An integer from low to high (booleans are not integers here)."""
    value = params.get(name, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise RpcError(INVALID_PARAMS, f"param {name!r} must be an integer from {low} to {high}")
    return value


def optional_integer(params: dict[str, Any], name: str, low: int, high: int) -> int | None:
    """An integer from low to high, or None when absent or null (the method's own default)."""
    if params.get(name) is None:
        return None
    return integer(params, name, low, low, high)  # present, so the default is never used


def boolean(params: dict[str, Any], name: str, default: bool) -> bool:
    value = params.get(name, default)
    if not isinstance(value, bool):
        raise RpcError(INVALID_PARAMS, f"param {name!r} must be true or false")
    return value


def optional_texts(params: dict[str, Any], name: str) -> list[str] | None:
    """A list of strings, or None when absent or null."""
    value = params.get(name)
    if value is not None and (not isinstance(value, list) or not all(isinstance(v, str) for v in value)):
        raise RpcError(INVALID_PARAMS, f"param {name!r} must be a list of strings")
    return value


def optional_object(params: dict[str, Any], name: str) -> dict[str, Any] | None:
    value = params.get(name)
    if value is not None and not isinstance(value, dict):
        raise RpcError(INVALID_PARAMS, f"param {name!r} must be an object")
    return value


def optional_objects(params: dict[str, Any], name: str) -> list[dict[str, Any]] | None:
    value = params.get(name)
    if value is not None and (not isinstance(value, list) or not all(isinstance(v, dict) for v in value)):
        raise RpcError(INVALID_PARAMS, f"param {name!r} must be a list of objects")
    return value


def absolute_path(params: dict[str, Any], name: str) -> str:
    """A path the server opens: absolute, since the server's working folder is not the caller's."""
    value = text(params, name)
    if not value.startswith("/"):
        raise RpcError(INVALID_PARAMS, f"param {name!r} must be an absolute path (the daemon's "
                                       "working folder is not yours)")
    return value


def _line(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"
